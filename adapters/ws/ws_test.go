package ws_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/shopspring/decimal"

	"github.com/incentives-platform/incentives/adapters/auth"
	"github.com/incentives-platform/incentives/adapters/ws"
	"github.com/incentives-platform/incentives/domain/engine"
	"github.com/incentives-platform/incentives/domain/rules"
)

const testSecret = "a-test-secret-of-at-least-32-bytes!!"

// syncBuffer is a log sink tests read while the server writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testServer is a Server behind httptest, with its token issuer and log.
type testServer struct {
	t    *testing.T
	srv  *ws.Server
	http *httptest.Server
	auth *auth.Authenticator
	log  *syncBuffer
	url  string // ws://host/ws
}

func startServer(t *testing.T, cfg ws.Config, history ws.CatchUp) *testServer {
	t.Helper()
	a, err := auth.New([]byte(testSecret), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	log := &syncBuffer{}
	srv, err := ws.New(cfg, ws.Deps{Verifier: a, CatchUp: history,
		Logger: slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	h := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		h.Close()
	})
	return &testServer{t: t, srv: srv, http: h, auth: a, log: log, url: "ws" + strings.TrimPrefix(h.URL, "http") + "/ws"}
}

func (s *testServer) token(role auth.Role, tenant uuid.UUID, user string) string {
	s.t.Helper()
	tok, err := s.auth.Issue(auth.Principal{Subject: user, TenantID: tenant, Role: role}, time.Hour)
	if err != nil {
		s.t.Fatal(err)
	}
	return tok
}

// dial opens a socket with token in the Authorization header.
func (s *testServer) dial(token string, query string) *websocket.Conn {
	s.t.Helper()
	c, resp, err := s.dialWith(nil, http.Header{"Authorization": {"Bearer " + token}}, query)
	if err != nil {
		s.t.Fatalf("dial: %v (%s)", err, describe(resp))
	}
	return c
}

func (s *testServer) dialWith(d *websocket.Dialer, header http.Header, query string) (*websocket.Conn, *http.Response, error) {
	if d == nil {
		d = &websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	}
	u := s.url
	if query != "" {
		u += "?" + query
	}
	c, resp, err := d.Dial(u, header)
	if err == nil {
		s.t.Cleanup(func() { _ = c.Close() })
	}
	return c, resp, err
}

func describe(resp *http.Response) string {
	if resp == nil {
		return "no response"
	}
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.Status + " " + b.String()
}

// waitFor retries cond until it holds or 10s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var issuedBase = time.Date(2026, 6, 27, 12, 34, 56, 789_000_000, time.UTC)

func newIncentive(tenant uuid.UUID, user string, n int) engine.Incentive {
	return engine.Incentive{ID: uuid.New(), TenantID: tenant, CampaignID: uuid.New(), UserID: user, SourceEventID: uuid.New(),
		Reward:   engine.Reward{Type: rules.RewardCashback, Currency: "INR", Amount: decimal.RequireFromString("12.75")},
		IssuedAt: issuedBase.Add(time.Duration(n) * time.Second)}
}

// readFrame reads the next frame within 5s.
func readFrame(t *testing.T, c *websocket.Conn) ws.Frame {
	t.Helper()
	f, err := tryReadFrame(c, 5*time.Second)
	if err != nil {
		t.Fatalf("read frame: %v", err)
	}
	return f
}

func tryReadFrame(c *websocket.Conn, wait time.Duration) (ws.Frame, error) {
	if err := c.SetReadDeadline(time.Now().Add(wait)); err != nil {
		return ws.Frame{}, err
	}
	typ, data, err := c.ReadMessage()
	if err != nil {
		return ws.Frame{}, err
	}
	if typ != websocket.TextMessage {
		return ws.Frame{}, errors.New("not a text frame")
	}
	var f ws.Frame
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return ws.Frame{}, err
	}
	return f, nil
}

// expectFrames reads len(want) frames and checks their incentive ids, in order.
func expectFrames(t *testing.T, c *websocket.Conn, want ...engine.Incentive) {
	t.Helper()
	for i, w := range want {
		f := readFrame(t, c)
		if f.IncentiveID != w.ID.String() {
			t.Fatalf("frame %d is incentive %s, want %s", i, f.IncentiveID, w.ID)
		}
	}
}

// expectClose reads until the server closes, and checks the close code.
func expectClose(t *testing.T, c *websocket.Conn, code int) *websocket.CloseError {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != code {
			t.Fatalf("read ended with %v, want close code %d", err, code)
		}
		return ce
	}
}

// collector reads frames from a socket in the background.
type collector struct {
	mu      sync.Mutex
	frames  []ws.Frame
	done    chan error
	arrived chan struct{}
}

func collect(c *websocket.Conn) *collector {
	col := &collector{done: make(chan error, 1), arrived: make(chan struct{}, 1)}
	go func() {
		for {
			f, err := tryReadFrame(c, time.Minute)
			if err != nil {
				col.done <- err
				return
			}
			col.mu.Lock()
			col.frames = append(col.frames, f)
			col.mu.Unlock()
			select {
			case col.arrived <- struct{}{}:
			default:
			}
		}
	}()
	return col
}

// await waits until n frames have arrived.
func (c *collector) await(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		c.mu.Lock()
		got := len(c.frames)
		c.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-c.arrived:
		case err := <-c.done:
			t.Fatalf("%d of %d frames, then %v", got, n, err)
		case <-timeout:
			t.Fatalf("%d of %d frames after 10s", got, n)
		}
	}
}

func (c *collector) ids() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, len(c.frames))
	for i, f := range c.frames {
		out[i] = f.IncentiveID
	}
	return out
}

func incentiveIDs(incs ...engine.Incentive) []string {
	out := make([]string, len(incs))
	for i, inc := range incs {
		out[i] = inc.ID.String()
	}
	return out
}

// history is a CatchUp over one slice, oldest first. A query waits for gate
// when it is set, after saying so on asked.
type history struct {
	mu    sync.Mutex
	items []engine.Incentive
	err   error
	gate  chan struct{}
	asked chan string
}

func (h *history) wait(ctx context.Context, call string) error {
	if h.asked != nil {
		h.asked <- call
	}
	if h.gate != nil {
		select {
		case <-h.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return h.err
}

func (h *history) IncentivesAfter(ctx context.Context, tenant uuid.UUID, user string, after uuid.UUID, limit int) ([]engine.Incentive, error) {
	if err := h.wait(ctx, "after "+after.String()); err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	i := slices.IndexFunc(h.items, func(inc engine.Incentive) bool { return inc.ID == after })
	if i < 0 {
		return nil, nil
	}
	return h.mine(h.items[i+1:], tenant, user, limit), nil
}

func (h *history) IncentivesSince(ctx context.Context, tenant uuid.UUID, user string, since time.Time, limit int) ([]engine.Incentive, error) {
	if err := h.wait(ctx, "since "+since.Format(time.RFC3339Nano)); err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	i := slices.IndexFunc(h.items, func(inc engine.Incentive) bool { return !inc.IssuedAt.Before(since) })
	if i < 0 {
		return nil, nil
	}
	return h.mine(h.items[i:], tenant, user, limit), nil
}

func (h *history) mine(items []engine.Incentive, tenant uuid.UUID, user string, limit int) []engine.Incentive {
	var out []engine.Incentive
	for _, inc := range items {
		if inc.TenantID == tenant && inc.UserID == user && len(out) < limit {
			out = append(out, inc)
		}
	}
	return out
}

// smallReadBuffer dials with a tiny socket receive buffer, so a client that
// does not read backs the server up after little data.
func smallReadBuffer() *websocket.Dialer {
	return &websocket.Dialer{HandshakeTimeout: 5 * time.Second,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			if tc, ok := c.(*net.TCPConn); ok {
				if err := tc.SetReadBuffer(128 << 10); err != nil {
					return nil, err
				}
			}
			return c, nil
		}}
}
