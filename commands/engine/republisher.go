package engine

import (
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"
)

// Republisher publishes incentives that were committed but never marked
// published: a process that died between the commit and the publish, or
// whose publish failed. The consumer of incentive-generated sees such an
// incentive late, possibly twice, never not at all; it deduplicates by
// incentive id.
type Republisher struct {
	log       PublishLog
	publisher IncentivePublisher
	clock     func() time.Time
	every     time.Duration
	// grace leaves the consumer time to publish what it just committed.
	grace  time.Duration
	logger *slog.Logger
}

// NewRepublisher returns a republisher checking every interval for
// incentives unpublished for longer than grace. It panics on a nil dependency.
func NewRepublisher(log PublishLog, publisher IncentivePublisher, clock func() time.Time, every, grace time.Duration, logger *slog.Logger) *Republisher {
	if log == nil || publisher == nil || clock == nil || logger == nil || every <= 0 {
		panic("engine: NewRepublisher needs its dependencies and a positive interval")
	}
	return &Republisher{log: log, publisher: publisher, clock: clock, every: every, grace: grace, logger: logger}
}

// republishBatch bounds one pass.
const republishBatch = 1000

// Run republishes every interval until ctx ends.
func (r *Republisher) Run(ctx context.Context) error {
	t := time.NewTicker(r.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if n, err := r.RepublishDue(ctx); err != nil && ctx.Err() == nil {
			r.logger.WarnContext(ctx, "republishing incentives failed; will retry", "err", err)
		} else if n > 0 {
			r.logger.InfoContext(ctx, "republished incentives that were committed but not published", "count", n)
		}
	}
}

// RepublishDue publishes what is due now and returns how many.
func (r *Republisher) RepublishDue(ctx context.Context) (int, error) {
	total := 0
	for {
		due, err := r.log.Unpublished(ctx, r.clock().Add(-r.grace), republishBatch)
		if err != nil || len(due) == 0 {
			return total, err
		}
		if err := r.publisher.PublishIncentives(ctx, due); err != nil {
			return total, err
		}
		ids := make([]uuid.UUID, len(due))
		for i, inc := range due {
			ids[i] = inc.ID
		}
		if err := r.log.MarkPublished(ctx, ids, r.clock()); err != nil {
			return total, err
		}
		total += len(due)
		if len(due) < republishBatch {
			return total, nil
		}
	}
}
