// Package relay forwards the transactional outbox to Kafka: watermill's
// forwarder reads the envelopes commands wrote to the outbox in their own
// transaction and publishes each to the topic it names.
//
// Delivery is at least once: the outbox subscriber records its place after a
// batch is published, so a relay killed mid-batch publishes that batch again
// when it restarts. Order is kept per stream, because the outbox is read in
// commit order and a stream's events share a key (one partition). Consumers
// deduplicate by event id or stream version.
package relay

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
)

// Pruner deletes forwarded outbox rows older than keep.
type Pruner interface {
	PruneOutbox(ctx context.Context, keep time.Duration) (int64, error)
}

// Config configures a Relay.
type Config struct {
	// Outbox is the subscriber of the outbox table. Required.
	Outbox message.Subscriber
	// Publisher publishes to Kafka. Required.
	Publisher message.Publisher
	// OutboxTopic is the watermill topic of the outbox. Required.
	OutboxTopic string
	// Pruner deletes forwarded rows; nil keeps them forever.
	Pruner Pruner
	// Keep is how long forwarded rows stay for inspection. Default 1h.
	Keep time.Duration
	// PruneEvery is how often the pruner runs. Default 1m.
	PruneEvery time.Duration
	// Logger is required.
	Logger *slog.Logger
	// Middlewares wrap the forwarding handler (metrics, say).
	Middlewares []message.HandlerMiddleware
}

func (c *Config) setDefaults() {
	if c.Keep == 0 {
		c.Keep = time.Hour
	}
	if c.PruneEvery == 0 {
		c.PruneEvery = time.Minute
	}
}

// Validate reports every missing field.
func (c Config) Validate() error {
	var errs []error
	if c.Outbox == nil {
		errs = append(errs, errors.New("relay: Outbox is required"))
	}
	if c.Publisher == nil {
		errs = append(errs, errors.New("relay: Publisher is required"))
	}
	if c.OutboxTopic == "" {
		errs = append(errs, errors.New("relay: OutboxTopic is required"))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("relay: Logger is required"))
	}
	return errors.Join(errs...)
}

// Relay forwards outbox rows to Kafka until its context ends.
type Relay struct {
	cfg Config
	fwd *forwarder.Forwarder
}

// New returns a relay; Run starts it.
func New(cfg Config) (*Relay, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// A failed publish (the broker is down) is retried with backoff, and
	// after that the row is redelivered: nothing is skipped.
	// watermill narrates every subscription at info; that is debug detail here.
	wlog := watermill.NewSlogLoggerWithLevelMapping(cfg.Logger, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
	retry := middleware.Retry{MaxRetries: 5, InitialInterval: 100 * time.Millisecond, MaxInterval: 5 * time.Second, Multiplier: 2,
		Logger: wlog}
	fwd, err := forwarder.NewForwarder(cfg.Outbox, cfg.Publisher, wlog, forwarder.Config{
		ForwarderTopic: cfg.OutboxTopic,
		Middlewares:    append([]message.HandlerMiddleware{retry.Middleware}, cfg.Middlewares...),
	})
	if err != nil {
		return nil, err
	}
	return &Relay{cfg: cfg, fwd: fwd}, nil
}

// Run forwards until ctx ends, then waits for the message in flight.
func (r *Relay) Run(ctx context.Context) error {
	if r.cfg.Pruner != nil {
		go r.prune(ctx)
	}
	return r.fwd.Run(ctx)
}

// Running is closed once the relay is forwarding.
func (r *Relay) Running() chan struct{} { return r.fwd.Running() }

// Close stops forwarding.
func (r *Relay) Close() error { return r.fwd.Close() }

func (r *Relay) prune(ctx context.Context) {
	t := time.NewTicker(r.cfg.PruneEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := r.cfg.Pruner.PruneOutbox(ctx, r.cfg.Keep)
			if err != nil && ctx.Err() == nil {
				r.cfg.Logger.Warn("outbox prune failed", "err", err)
			} else if n > 0 {
				r.cfg.Logger.Debug("outbox pruned", "rows", n)
			}
		}
	}
}
