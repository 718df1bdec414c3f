package ws

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/gorilla/websocket"

	"github.com/incentives-platform/incentives/domain/engine"
)

// Subprotocol is the WebSocket subprotocol that carries a token: a browser
// opens new WebSocket(url, ["access_token", token]) and the server answers
// with this one.
const Subprotocol = "access_token"

// Server is the WebSocket endpoint of one DCM instance: an http.Handler for
// /ws and /ws/demo, and the sink of the incentives its consumer reads. It is
// safe for concurrent use.
type Server struct {
	cfg      Config
	deps     Deps
	logger   *slog.Logger
	upgrader websocket.Upgrader
	hub      *hub
	origins  map[string]bool
	anyOrig  bool
	handler  http.Handler

	// ctx ends with Close; catch-up queries run under it.
	ctx    context.Context
	cancel context.CancelFunc
	// closing is closed by Close: every writer closes its socket.
	closing chan struct{}

	mu     sync.Mutex // guards closed and wg.Add
	closed bool
	wg     sync.WaitGroup

	stats struct {
		connections   atomic.Int64
		notifications atomic.Uint64
		framesSent    atomic.Uint64
		catchUpFrames atomic.Uint64
		slowClosed    atomic.Uint64
		refused       atomic.Uint64
	}
}

// New returns a server for cfg (defaults applied) and deps.
func New(cfg Config, deps Deps) (*Server, error) {
	cfg.setDefaults()
	if err := errors.Join(cfg.Validate(), deps.Validate()); err != nil {
		return nil, fmt.Errorf("websocket server: %w", err)
	}
	s := &Server{cfg: cfg, deps: deps, logger: deps.Logger, hub: newHub(cfg.MaxConnectionsPerUser),
		origins: map[string]bool{}, closing: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	for _, o := range cfg.AllowedOrigins {
		o, _ = normalizeOrigin(o) // Validate checked it
		if o == "*" {
			s.anyOrig = true
		}
		s.origins[o] = true
	}
	s.upgrader = websocket.Upgrader{
		HandshakeTimeout: cfg.HandshakeTimeout,
		ReadBufferSize:   cfg.ReadBufferSize,
		WriteBufferSize:  cfg.WriteBufferSize,
		WriteBufferPool:  &sync.Pool{},
		Subprotocols:     []string{Subprotocol},
		// serveWS checked the origin already, answering problem+json.
		CheckOrigin: func(*http.Request) bool { return true },
		Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
			writeProblem(w, r, status, typeMalformed, "Malformed request", reason.Error())
		},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", s.serveWS)
	mux.HandleFunc("/ws/demo", serveDemo)
	mux.HandleFunc("/ws/demo/{file...}", serveDemo)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, http.StatusNotFound, typeNotFound, "Not found", "no such route")
	})
	s.handler = mux
	return s, nil
}

// Handler serves GET /ws (the socket) and GET /ws/demo (the demo page).
func (s *Server) Handler() http.Handler { return s.handler }

// Deliver queues inc's frame on every open connection of its user in its
// tenant, on this instance. It never blocks: a connection whose queue is
// full is closed instead. It implements adapters/kafka.IncentiveSink.
func (s *Server) Deliver(inc engine.Incentive) {
	s.stats.notifications.Add(1)
	s.hub.deliver(userKey{tenant: inc.TenantID, user: inc.UserID}, func() *frame { return encodeFrame(inc) })
}

// Connections returns how many sockets are open.
func (s *Server) Connections() int { return int(s.stats.connections.Load()) }

// Stats are a Server's counters since New.
type Stats struct {
	// Connections are the sockets open now.
	Connections int
	// Notifications counts Deliver calls; FramesSent the frames written,
	// live and catch-up; CatchUpFrames those of catch-ups.
	Notifications, FramesSent, CatchUpFrames uint64
	// SlowClientsClosed counts connections closed because their send queue
	// filled.
	SlowClientsClosed uint64
	// HandshakesRefused counts handshakes answered with an HTTP error.
	HandshakesRefused uint64
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	return Stats{
		Connections:       s.Connections(),
		Notifications:     s.stats.notifications.Load(),
		FramesSent:        s.stats.framesSent.Load(),
		CatchUpFrames:     s.stats.catchUpFrames.Load(),
		SlowClientsClosed: s.stats.slowClosed.Load(),
		HandshakesRefused: s.stats.refused.Load(),
	}
}

// Close refuses new handshakes (503), closes every connection with
// CloseGoingAway, and returns once they are all gone: after at most
// WriteWait plus a second for a client that does not answer. The
// http.Server in front must be shut down too; it does not track upgraded
// connections. Calling Close again does nothing.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.closing)
	s.cancel()
	s.wg.Wait()
	return nil
}

// track counts a handshake in progress, so Close waits for it; false once
// the server is closed.
func (s *Server) track() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}
