package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"
)

const (
	// dcmTarget is the target of connections held on this machine.
	dcmTarget = 50_000
	// dcmRate is the notification rate for the latency figure.
	dcmRate = 10_000
	// dcmLatencyUsers have one connection each and share the notifications.
	dcmLatencyUsers = 1000
	// dcmSourceIPs are the loopback addresses the clients dial from,
	// 127.0.0.2 and on: one source address has only the ~28k ports of
	// ip_local_port_range to open connections from.
	dcmSourceIPs = 8
	// dcmFDReserve is what a process keeps of its file limit for everything
	// but sockets (binary, listeners, epoll, pipes).
	dcmFDReserve = 200
)

// runDCM measures the DCM's WebSocket server (issue #6): how many
// connections this machine holds, with their memory, and the latency from
// incentive-generated to the frame on the socket at 10,000 notifications/s.
// It needs no database, only loopback. The connection count runs the
// servers and the clients in child processes of this binary (dcm_procs.go),
// so a server's memory is its own; the latency runs in this process.
func runDCM(ctx context.Context, o options) (string, error) {
	if role := os.Getenv(dcmChildEnv); role != "" {
		return "", runDCMChild(ctx, role)
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	hold, err := measureHold(ctx, o, hex.EncodeToString(secret))
	if err != nil {
		return "", fmt.Errorf("connections held: %w", err)
	}
	lat, err := measureDCMLatency(ctx, o)
	if err != nil {
		return "", fmt.Errorf("latency: %w", err)
	}
	return dcmReport(o, hold, lat), nil
}

// raiseNoFile raises this process's RLIMIT_NOFILE to want if it may, and
// otherwise as far as the hard limit; it returns the soft limit in force.
// Raising the hard limit needs CAP_SYS_RESOURCE.
func raiseNoFile(want uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("getrlimit: %w", err)
	}
	if lim.Cur >= want {
		return lim.Cur, nil
	}
	if lim.Max < want {
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: want, Max: want}); err == nil {
			return want, nil
		} else if !errors.Is(err, syscall.EPERM) {
			return 0, fmt.Errorf("setrlimit: %w", err)
		}
	}
	lim.Cur = min(want, lim.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("setrlimit: %w", err)
	}
	return lim.Cur, nil
}

// noFileHard returns the hard RLIMIT_NOFILE.
func noFileHard() uint64 {
	var lim syscall.Rlimit
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	return lim.Max
}

// memStats is one process's memory, after a GC.
type memStats struct {
	Connections int    `json:"connections"`
	HeapInuse   uint64 `json:"heapInuse"`
	StackInuse  uint64 `json:"stackInuse"`
	RSS         uint64 `json:"rss"` // VmRSS, bytes
	Goroutines  int    `json:"goroutines"`
}

func readMemStats(connections int) memStats {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return memStats{Connections: connections, HeapInuse: m.HeapInuse, StackInuse: m.StackInuse, RSS: vmRSS(),
		Goroutines: runtime.NumGoroutine()}
}

// vmRSS returns this process's resident set from /proc/self/status, or 0.
func vmRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb uint64
			_, _ = fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb)
			return kb << 10
		}
	}
	return 0
}

func kib(bytes float64) string { return fmt.Sprintf("%.1f KiB", bytes/1024) }

func mib(bytes uint64) string { return fmt.Sprintf("%d MiB", bytes>>20) }

// dcmReport renders the section.
func dcmReport(o options, h holdRun, l []dcmLatencyRun) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### DCM: WebSocket notifications (issue #6)\n\n")
	fmt.Fprintf(&b, "Measured %s on %s; `go run ./bench %s`, all on loopback.\n\n",
		time.Now().UTC().Format("2006-01-02"), machine(), strings.Join(os.Args[1:], " "))

	fmt.Fprintf(&b, "**Connections held.** %s clients open a WebSocket each (a user token in the Authorization header, "+
		"%d at a time per client process, from %d source addresses 127.0.0.2 and on) and hold it, unread, for %v: "+
		"through a round of the server's pings (every %v), within its pong wait. ",
		thousands(int64(h.target)), dcmDialers, dcmSourceIPs, h.holdFor.Round(time.Second), dcmPingInterval)
	if h.instances > 1 {
		fmt.Fprintf(&b, "A process may open %s files here (RLIMIT_NOFILE's hard limit, which this machine does not let even root raise: "+
			"no CAP_SYS_RESOURCE), so the target is spread over %d DCM instances, each a server process of its own with its own client process, "+
			"as several DCM instances would be deployed. ", thousands(int64(h.fileLimit)), h.instances)
	} else {
		fmt.Fprintf(&b, "One DCM server process holds them all (RLIMIT_NOFILE raised to %s); the clients run in another process. ",
			thousands(int64(h.fileLimit)))
	}
	fmt.Fprintf(&b, "Memory per connection is the server processes' growth from before the first client to after the hold, "+
		"after a GC, divided by the connections they hold: the Go heap and the goroutine stacks in use (%.1f goroutines per connection), "+
		"and the resident set (VmRSS), which adds what the Go runtime keeps but does not use. Socket buffers are kernel memory, in neither. "+
		"Time to open runs from starting the client processes to the last handshake answered.\n\n", h.goroutinesPerConn)
	t := &table{header: []string{"DCM instances", "connections asked", "opened", fmt.Sprintf("held after %v", h.holdFor.Round(time.Second)),
		"time to open", "opened/s", "heap per connection", "stacks per connection", "RSS per connection", "servers' RSS",
		"client RSS per connection"}}
	t.add(fmt.Sprint(h.instances), thousands(int64(h.target)), thousands(int64(h.opened)), thousands(int64(h.held)),
		h.openTime.Round(time.Millisecond).String(), perSecond(float64(h.opened)/h.openTime.Seconds()),
		kib(h.heapPerConn), kib(h.stackPerConn), kib(h.rssPerConn), mib(h.serverRSS), kib(h.clientRSSPerConn))
	b.WriteString(t.String())
	if h.failed > 0 {
		fmt.Fprintf(&b, "\n%s handshakes failed; the first: %s.\n", thousands(int64(h.failed)), h.firstErr)
	}

	fmt.Fprintf(&b, "\n**Latency at %s notifications/s.** %s users hold a connection each to one DCM server in this process, "+
		"each read by a client goroutine that answers pings. Incentives for them, round robin, are paced in 1 ms steps for %v, "+
		"a step's incentives in one call. The first row hands them straight to `Server.Deliver`: the hub, the send queues and the sockets alone. "+
		"The second publishes them with the engine's `IncentivePublisher` (acknowledged by the embedded broker), and the DCM consumer "+
		"(`kafka.DCMConsumer`, a group of its own) reads them off `incentive-generated` into the same server. Latency runs from handing "+
		"an incentive over to the client having read its frame; clients, server, consumer and broker share this process's %d cores.\n\n",
		thousands(dcmRate), thousands(dcmLatencyUsers), o.duration, runtime.NumCPU())
	lt := &table{header: []string{"path", "asked", "achieved", "notifications", "frames read", "p50", "p90", "p99", "max"}}
	for _, r := range l {
		lt.add(r.path, perSecond(float64(r.rate)), perSecond(r.achieved), thousands(int64(r.sent)), thousands(int64(len(r.latencies))),
			ms(r.percentile(0.5)), ms(r.percentile(0.9)), ms(r.percentile(0.99)), ms(r.percentile(1)))
	}
	b.WriteString(lt.String())
	for _, r := range l {
		if r.note != "" {
			fmt.Fprintf(&b, "\n%s\n", r.note)
		}
	}
	return b.String()
}
