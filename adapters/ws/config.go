package ws

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/adapters/auth"
	"github.com/incentives-platform/incentives/domain/engine"
)

// Config configures a Server. Every field has a default; New applies them.
type Config struct {
	// AllowedOrigins are the origins ("https://app.example.com", as a
	// browser sends them in Origin) whose pages may open sockets, besides
	// pages served from the socket's own host; "*" allows every origin.
	// Requests without Origin (not from a browser) are always allowed: their
	// token is what authenticates them. Default none.
	AllowedOrigins []string
	// MaxConnectionsPerUser caps one user's open sockets on this instance;
	// the next handshake is refused with 429. Default 8.
	MaxConnectionsPerUser int
	// SendQueue is how many frames may wait for one connection. A client
	// that lets it fill is closed with CloseSlowClient and the frames are
	// dropped: it catches up when it reconnects. Default 256.
	SendQueue int
	// PingInterval is how often each connection is pinged. Default 20s.
	PingInterval time.Duration
	// PongWait is how long a connection may stay silent (no pong, no
	// message) before it is dropped. Default 60s; more than PingInterval.
	PongWait time.Duration
	// WriteWait bounds each write to a socket: a frame, a ping, a close.
	// Default 10s.
	WriteWait time.Duration
	// HandshakeTimeout bounds writing the upgrade response. Default 10s.
	HandshakeTimeout time.Duration
	// CatchUpLimit is the most incentives one connection replays after
	// `since`. If more were missed, the connection sends that many and closes
	// with CloseCatchUpIncomplete: the client reconnects with the last id it
	// got and receives the next ones. Default 1000.
	CatchUpLimit int
	// CatchUpTimeout bounds the catch-up query. Default 5s.
	CatchUpTimeout time.Duration
	// ReadLimit is the largest message a client may send (it is discarded
	// anyway); a larger one closes the connection with 1009. Default 4096.
	ReadLimit int64
	// ReadBufferSize and WriteBufferSize size each connection's I/O
	// buffers, in bytes. Write buffers are pooled, held only while writing.
	// Default 1024 each.
	ReadBufferSize, WriteBufferSize int
}

func (c *Config) setDefaults() {
	setDefault(&c.MaxConnectionsPerUser, 8)
	setDefault(&c.SendQueue, 256)
	setDefault(&c.PingInterval, 20*time.Second)
	setDefault(&c.PongWait, 60*time.Second)
	setDefault(&c.WriteWait, 10*time.Second)
	setDefault(&c.HandshakeTimeout, 10*time.Second)
	setDefault(&c.CatchUpLimit, 1000)
	setDefault(&c.CatchUpTimeout, 5*time.Second)
	setDefault(&c.ReadLimit, 4096)
	setDefault(&c.ReadBufferSize, 1024)
	setDefault(&c.WriteBufferSize, 1024)
}

func setDefault[T int | int64 | time.Duration](p *T, def T) {
	if *p == 0 {
		*p = def
	}
}

// Validate reports every problem of c.
func (c Config) Validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"MaxConnectionsPerUser", int64(c.MaxConnectionsPerUser)}, {"SendQueue", int64(c.SendQueue)},
		{"PingInterval", int64(c.PingInterval)}, {"PongWait", int64(c.PongWait)}, {"WriteWait", int64(c.WriteWait)},
		{"HandshakeTimeout", int64(c.HandshakeTimeout)}, {"CatchUpLimit", int64(c.CatchUpLimit)},
		{"CatchUpTimeout", int64(c.CatchUpTimeout)}, {"ReadLimit", c.ReadLimit},
		{"ReadBufferSize", int64(c.ReadBufferSize)}, {"WriteBufferSize", int64(c.WriteBufferSize)},
	} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative", f.name))
		}
	}
	if c.PongWait > 0 && c.PongWait <= c.PingInterval {
		errs = append(errs, fmt.Errorf("PongWait (%s) must be longer than PingInterval (%s)", c.PongWait, c.PingInterval))
	}
	for _, o := range c.AllowedOrigins {
		if _, err := normalizeOrigin(o); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// normalizeOrigin returns origin as a browser would send it, lower case:
// scheme://host[:port], or "*".
func normalizeOrigin(origin string) (string, error) {
	if origin == "*" {
		return origin, nil
	}
	u, err := url.Parse(origin)
	if err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return "", fmt.Errorf("allowed origin %q: want scheme://host[:port] or *", origin)
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

// Verifier checks tokens. Verify returns an error wrapping
// auth.ErrInvalidToken (and auth.ErrTokenExpired for an expired one) for
// every token it refuses. It must be safe for concurrent use.
type Verifier interface {
	Verify(token string) (auth.Principal, error)
}

// CatchUp reads what a reconnecting client missed from the incentive
// history. Both methods return the tenant's user's incentives in the order
// they were written (then issuedAt, then incentive id), at most limit of
// them, and an empty
// answer, not an error, for a cursor that is not the user's. They must be
// safe for concurrent use.
type CatchUp interface {
	// IncentivesAfter returns the incentives strictly after the incentive after.
	IncentivesAfter(ctx context.Context, tenantID uuid.UUID, userID string, after uuid.UUID, limit int) ([]engine.Incentive, error)
	// IncentivesSince returns the incentives issued at or after since.
	IncentivesSince(ctx context.Context, tenantID uuid.UUID, userID string, since time.Time, limit int) ([]engine.Incentive, error)
}

// Deps are a Server's collaborators.
type Deps struct {
	// Verifier checks tokens. Required.
	Verifier Verifier
	// CatchUp reads the incentive history. Optional: without it, a handshake
	// with since is refused with 400 (benchmarks and tests of live delivery
	// need no database).
	CatchUp CatchUp
	// Logger gets one line per refused handshake and closed connection, at
	// debug level, and failures at warn. Required.
	Logger *slog.Logger
}

// Validate reports every missing dependency.
func (d Deps) Validate() error {
	var errs []error
	if d.Verifier == nil {
		errs = append(errs, errors.New("Verifier is required"))
	}
	if d.Logger == nil {
		errs = append(errs, errors.New("Logger is required"))
	}
	return errors.Join(errs...)
}
