package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/adapters/auth"
	"github.com/incentives-platform/incentives/adapters/ws"
)

// The connection count runs in child processes of this binary, started
// with `-only dcm` and dcmChildEnv set to their role:
//
//   - a server holds one DCM instance's ws.Server on a loopback port. It
//     prints {"addr", "stats"} when it listens, answers each "stats" line on
//     its stdin with its memory, and exits when its stdin closes;
//   - a client opens its share of the connections to one server, prints
//     {"opened", ...} when done, and holds them until its stdin closes.
//
// Each process has its own RLIMIT_NOFILE, and a server's memory is only its
// own.
const (
	dcmChildEnv  = "INCENTIVES_BENCH_DCM_CHILD"
	dcmSecretEnv = "INCENTIVES_BENCH_DCM_SECRET" // hex HS256 secret
	dcmConnsEnv  = "INCENTIVES_BENCH_DCM_CONNS"  // connections a child handles
	dcmFromEnv   = "INCENTIVES_BENCH_DCM_FROM"   // a client's first user number
	dcmAddrEnv   = "INCENTIVES_BENCH_DCM_ADDR"   // a client's server
	dcmTenantEnv = "INCENTIVES_BENCH_DCM_TENANT" // the users' tenant
	// dcmDialers are each client process's concurrent handshakes.
	dcmDialers = 32
	// dcmPingInterval is ws.Config's default PingInterval: the hold lasts
	// through one round of pings, which the holding clients leave unanswered
	// (the server's PongWait, 60s by default, is longer than the hold).
	dcmPingInterval = 20 * time.Second
)

// holdRun is what the connection count measured.
type holdRun struct {
	target, instances      int
	fileLimit              uint64
	opened, failed, held   int
	firstErr               string
	openTime, holdFor      time.Duration
	heapPerConn            float64
	stackPerConn           float64
	goroutinesPerConn      float64
	rssPerConn             float64
	serverRSS              uint64
	clientRSSPerConn       float64
	serverBefore, serverAt []memStats
}

type serverReady struct {
	Addr  string   `json:"addr"`
	Stats memStats `json:"stats"`
}

type clientDone struct {
	Opened   int      `json:"opened"`
	Failed   int      `json:"failed"`
	FirstErr string   `json:"firstErr"`
	Before   memStats `json:"before"`
	After    memStats `json:"after"`
}

// measureHold opens dcmTarget connections across as many DCM instances as
// the file limit needs, holds them through a round of pings (or for
// o.duration, if longer), and reads the servers' memory before and after.
func measureHold(ctx context.Context, o options, secret string) (holdRun, error) {
	h := holdRun{target: dcmTarget, holdFor: max(o.duration, dcmPingInterval+5*time.Second)}
	limit, err := raiseNoFile(uint64(dcmTarget + dcmFDReserve))
	if err != nil {
		return h, err
	}
	h.fileLimit = limit
	perProcess := int(limit) - dcmFDReserve
	if perProcess <= 0 {
		return h, fmt.Errorf("RLIMIT_NOFILE is %d: no room for connections", limit)
	}
	h.instances = (dcmTarget + perProcess - 1) / perProcess
	shares := make([]int, h.instances)
	for i := range shares {
		shares[i] = dcmTarget / h.instances
		if i < dcmTarget%h.instances {
			shares[i]++
		}
	}
	var children []*child
	defer func() {
		for i := len(children) - 1; i >= 0; i-- {
			children[i].stop()
		}
	}()

	servers := make([]*child, h.instances)
	addrs := make([]string, h.instances)
	for i, n := range shares {
		c, err := startChild(ctx, "server", dcmSecretEnv+"="+secret, dcmConnsEnv+"="+strconv.Itoa(n))
		if err != nil {
			return h, err
		}
		children = append(children, c)
		servers[i] = c
		var ready serverReady
		if err := c.read(&ready, time.Minute); err != nil {
			return h, err
		}
		addrs[i] = ready.Addr
		h.serverBefore = append(h.serverBefore, ready.Stats)
	}

	tenant := uuid.New()
	start := time.Now()
	clients := make([]*child, h.instances)
	from := 0
	for i, n := range shares {
		c, err := startChild(ctx, "client", dcmSecretEnv+"="+secret, dcmConnsEnv+"="+strconv.Itoa(n),
			dcmFromEnv+"="+strconv.Itoa(from), dcmAddrEnv+"="+addrs[i], dcmTenantEnv+"="+tenant.String())
		if err != nil {
			return h, err
		}
		from += n
		children = append(children, c)
		clients[i] = c
	}
	var clientRSS float64
	for _, c := range clients {
		var done clientDone
		if err := c.read(&done, 10*time.Minute); err != nil {
			return h, err
		}
		h.opened += done.Opened
		h.failed += done.Failed
		if h.firstErr == "" {
			h.firstErr = done.FirstErr
		}
		clientRSS += float64(done.After.RSS) - float64(done.Before.RSS)
	}
	h.openTime = time.Since(start)
	o.logger.Info("dcm: connections open", "opened", h.opened, "failed", h.failed, "took", h.openTime)

	select {
	case <-time.After(h.holdFor):
	case <-ctx.Done():
		return h, ctx.Err()
	}
	var heap, stack, goroutines, rss float64
	for i, s := range servers {
		if err := s.send("stats"); err != nil {
			return h, err
		}
		var at memStats
		if err := s.read(&at, time.Minute); err != nil {
			return h, err
		}
		h.serverAt = append(h.serverAt, at)
		before := h.serverBefore[i]
		h.held += at.Connections
		heap += float64(at.HeapInuse) - float64(before.HeapInuse)
		stack += float64(at.StackInuse) - float64(before.StackInuse)
		goroutines += float64(at.Goroutines - before.Goroutines)
		rss += float64(at.RSS) - float64(before.RSS)
		h.serverRSS += at.RSS
	}
	if h.held > 0 {
		h.heapPerConn = heap / float64(h.held)
		h.stackPerConn = stack / float64(h.held)
		h.goroutinesPerConn = goroutines / float64(h.held)
		h.rssPerConn = rss / float64(h.held)
	}
	if h.opened > 0 {
		h.clientRSSPerConn = clientRSS / float64(h.opened)
	}
	return h, nil
}

// child is a running child process of this binary.
type child struct {
	role   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan []byte
	stderr *lockedBuffer
}

// startChild starts this binary as a dcm child with role and env.
func startChild(ctx context.Context, role string, env ...string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe, "-only", "dcm")
	cmd.Env = append(os.Environ(), append([]string{dcmChildEnv + "=" + role}, env...)...)
	c := &child{role: role, cmd: cmd, lines: make(chan []byte, 4), stderr: &lockedBuffer{}}
	cmd.Stderr = c.stderr
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", role, err)
	}
	go func() {
		defer close(c.lines)
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			if line := bytes.TrimSpace(s.Bytes()); len(line) > 0 {
				c.lines <- bytes.Clone(line)
			}
		}
	}()
	return c, nil
}

// read decodes the child's next line into v.
func (c *child) read(v any, timeout time.Duration) error {
	select {
	case line, ok := <-c.lines:
		if !ok {
			return fmt.Errorf("dcm %s process ended: %s", c.role, c.stderr.tail())
		}
		return json.Unmarshal(line, v)
	case <-time.After(timeout):
		return fmt.Errorf("dcm %s process: no answer in %v: %s", c.role, timeout, c.stderr.tail())
	}
}

func (c *child) send(line string) error {
	_, err := io.WriteString(c.stdin, line+"\n")
	return err
}

// stop closes the child's stdin, which ends it, and kills it if it does not
// end within a minute.
func (c *child) stop() {
	_ = c.stdin.Close()
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		_ = c.cmd.Process.Kill()
		<-done
	}
}

// lockedBuffer is a child's stderr, written by os/exec's copier.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.b.String()
	if len(s) > 2000 {
		s = "…" + s[len(s)-2000:]
	}
	return s
}

// runDCMChild is the life of a child process.
func runDCMChild(ctx context.Context, role string) error {
	secret, err := hex.DecodeString(os.Getenv(dcmSecretEnv))
	if err != nil {
		return fmt.Errorf("%s: %w", dcmSecretEnv, err)
	}
	conns, err := strconv.Atoi(os.Getenv(dcmConnsEnv))
	if err != nil {
		return fmt.Errorf("%s: %w", dcmConnsEnv, err)
	}
	if _, err := raiseNoFile(uint64(conns + dcmFDReserve)); err != nil {
		return err
	}
	authn, err := auth.New(secret, time.Now)
	if err != nil {
		return err
	}
	out := json.NewEncoder(os.Stdout)
	switch role {
	case "server":
		return serveHold(ctx, authn, out)
	case "client":
		return dialHold(ctx, authn, conns, out)
	default:
		return fmt.Errorf("%s: unknown role %q", dcmChildEnv, role)
	}
}

// serveHold runs one DCM instance's ws.Server with the platform's defaults.
func serveHold(ctx context.Context, authn *auth.Authenticator, out *json.Encoder) error {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := ws.New(ws.Config{}, ws.Deps{Verifier: authn, Logger: logger})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 30 * time.Second,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	go func() { _ = hs.Serve(ln) }()
	if err := out.Encode(serverReady{Addr: ln.Addr().String(), Stats: readMemStats(0)}); err != nil {
		return err
	}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() == "stats" {
			if err := out.Encode(readMemStats(srv.Connections())); err != nil {
				return err
			}
		}
	}
	// Closing with 50,000 sockets open would take a while: the process
	// exits and the kernel closes them.
	_ = ln.Close()
	return ctx.Err()
}

// dialHold opens conns connections to the server at dcmAddrEnv, one user
// each, and holds them without reading until stdin closes.
func dialHold(ctx context.Context, authn *auth.Authenticator, conns int, out *json.Encoder) error {
	from, err := strconv.Atoi(os.Getenv(dcmFromEnv))
	if err != nil {
		return fmt.Errorf("%s: %w", dcmFromEnv, err)
	}
	tenant, err := uuid.Parse(os.Getenv(dcmTenantEnv))
	if err != nil {
		return fmt.Errorf("%s: %w", dcmTenantEnv, err)
	}
	addr := os.Getenv(dcmAddrEnv)
	done := clientDone{Before: readMemStats(0)}
	held := make([]net.Conn, conns)
	var (
		next, failed atomic.Int64
		errOnce      sync.Once
		wg           sync.WaitGroup
	)
	for range dcmDialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= conns || ctx.Err() != nil {
					return
				}
				c, err := dialUser(ctx, authn, addr, tenant, from+i)
				if err != nil {
					failed.Add(1)
					errOnce.Do(func() { done.FirstErr = err.Error() })
					continue
				}
				held[i] = c.hold()
			}
		}()
	}
	wg.Wait()
	done.Failed = int(failed.Load())
	done.Opened = conns - done.Failed
	done.After = readMemStats(done.Opened)
	if err := out.Encode(done); err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	// An unreachable net.Conn is closed by its finalizer.
	runtime.KeepAlive(held)
	return ctx.Err()
}

// dialUser opens user n's connection from 127.0.0.(2 + n % dcmSourceIPs).
func dialUser(ctx context.Context, authn *auth.Authenticator, addr string, tenant uuid.UUID, n int) (*wsClient, error) {
	token, err := authn.Issue(auth.Principal{Subject: "bench-user-" + strconv.Itoa(n), TenantID: tenant, Role: auth.RoleUser}, time.Hour)
	if err != nil {
		return nil, err
	}
	d := &net.Dialer{Timeout: 30 * time.Second,
		LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+n%dcmSourceIPs))}}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	c, err := dialWS(ctx, d, addr, "/ws", token)
	if err != nil {
		return nil, fmt.Errorf("connection %d: %w", n, err)
	}
	return c, nil
}
