package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/incentives-platform/incentives/adapters/avro"
	cengine "github.com/incentives-platform/incentives/commands/engine"
	"github.com/incentives-platform/incentives/domain/engine"
)

// EngineGroup is the engine's consumer group (DESIGN.md §4). Renaming it
// starts a new group, which re-reads tenant-events from its start.
const EngineGroup = "incentive-engine"

// BatchHandler decides a batch of valid action events and returns the
// incentives it issued, once they are durable. A batch mixes partitions
// (and so tenants); each partition's events are in offset order, so one
// tenant's events arrive in the order they were produced. It must be
// idempotent: a batch whose offsets were not committed is handed over
// again, to this process after a failure or to another one after a crash
// or rebalance.
type BatchHandler func(ctx context.Context, events []engine.ActionEvent) ([]engine.Incentive, error)

// AfterPublishFunc runs once a batch's incentives are on incentive-generated
// and before the batch's offsets are committed (the engine marks them
// published there). It must be idempotent too.
type AfterPublishFunc func(ctx context.Context, incentives []engine.Incentive) error

// BatchStats describes one committed batch, for metrics.
type BatchStats struct {
	// Records is how many records the batch held, Invalid how many of them
	// went to the DLQ, Incentives how many incentives the handler issued.
	Records, Invalid, Incentives int
	// Attempts is how many times the handler was called (1 without failures).
	Attempts int
	// Handle is the time spent in the handler's successful attempt; Total
	// runs from the poll's return to the commit.
	Handle, Total time.Duration
}

// EngineObserver is told about every committed batch. Its method is called
// from the consumer's goroutine and must not block.
type EngineObserver interface {
	BatchCommitted(BatchStats)
}

// EngineConsumerConfig configures NewEngineConsumer.
type EngineConsumerConfig struct {
	// Brokers is the Kafka broker list. Required.
	Brokers []string
	// Registry decodes ActionEvent values. Required.
	Registry *avro.Registry
	// Handler decides each batch. Required.
	Handler BatchHandler
	// Publisher publishes the incentives the handler returns. Required.
	Publisher cengine.IncentivePublisher
	// AfterPublish is optional.
	AfterPublish AfterPublishFunc
	// Logger is required.
	Logger *slog.Logger
	// Observer is optional.
	Observer EngineObserver

	// Topic is the topic consumed. Default tenant-events.
	Topic string
	// Group is the consumer group. Default incentive-engine.
	Group string
	// DLQTopic receives records that can never be processed. Default
	// Topic + ".dlq".
	DLQTopic string
	// ClientID names the client to the brokers. Default incentives-engine.
	ClientID string
	// MaxPollRecords caps a batch. Default 5000: large enough to amortise a
	// database transaction and a Redis round trip, small enough to finish
	// well within the rebalance timeout.
	MaxPollRecords int
	// RetryMin and RetryMax bound the doubling wait between attempts of a
	// failed step (handler, publish, DLQ). Defaults 100ms and 5s.
	RetryMin, RetryMax time.Duration
	// StopTimeout is how long the batch in hand may still take once the
	// context of Run ends. Default 10s.
	StopTimeout time.Duration
	// HeartbeatInterval is how often the member heartbeats, which is how
	// soon it notices a rebalance (a new engine joining). Default 3s.
	HeartbeatInterval time.Duration
	// SessionTimeout is how long the group waits for a silent member (a
	// killed process) before its partitions move to the others. Default 10s.
	SessionTimeout time.Duration
	// RebalanceTimeout is how long a rebalance waits for every member to
	// rejoin: a member killed mid-rebalance holds the group that long, so
	// it bounds the pause a crash causes, and it must outlast a batch (a
	// member finishes its batch before it rejoins). Default 3 × SessionTimeout.
	RebalanceTimeout time.Duration
}

func (c *EngineConsumerConfig) setDefaults() {
	if c.Topic == "" {
		c.Topic = TenantEventsTopic
	}
	if c.Group == "" {
		c.Group = EngineGroup
	}
	if c.DLQTopic == "" {
		c.DLQTopic = DLQTopic(c.Topic)
	}
	if c.ClientID == "" {
		c.ClientID = "incentives-engine"
	}
	if c.MaxPollRecords == 0 {
		c.MaxPollRecords = 5000
	}
	if c.RetryMin == 0 {
		c.RetryMin = 100 * time.Millisecond
	}
	if c.RetryMax == 0 {
		c.RetryMax = 5 * time.Second
	}
	if c.StopTimeout == 0 {
		c.StopTimeout = 10 * time.Second
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = 10 * time.Second
	}
	if c.RebalanceTimeout == 0 {
		c.RebalanceTimeout = 3 * c.SessionTimeout
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = min(3*time.Second, c.SessionTimeout/3)
	}
}

// Validate reports every problem of c.
func (c EngineConsumerConfig) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("Brokers is required"))
	}
	if c.Registry == nil {
		errs = append(errs, errors.New("Registry is required"))
	} else if _, ok := c.Registry.Schema(ActionEventSchema); !ok {
		errs = append(errs, fmt.Errorf("Registry has no schema %s", ActionEventSchema))
	}
	if c.Handler == nil {
		errs = append(errs, errors.New("Handler is required"))
	}
	if c.Publisher == nil {
		errs = append(errs, errors.New("Publisher is required"))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("Logger is required"))
	}
	if c.DLQTopic == c.Topic {
		errs = append(errs, errors.New("DLQTopic must differ from Topic"))
	}
	if c.MaxPollRecords < 1 {
		errs = append(errs, errors.New("MaxPollRecords must be positive"))
	}
	if c.RetryMin <= 0 || c.RetryMax < c.RetryMin {
		errs = append(errs, errors.New("RetryMin must be positive and at most RetryMax"))
	}
	if c.StopTimeout <= 0 || c.HeartbeatInterval <= 0 {
		errs = append(errs, errors.New("StopTimeout and HeartbeatInterval must be positive"))
	}
	if c.SessionTimeout <= c.HeartbeatInterval {
		errs = append(errs, errors.New("SessionTimeout must be longer than HeartbeatInterval"))
	}
	return errors.Join(errs...)
}

// EngineConsumer feeds the engine from tenant-events in batches (DESIGN.md
// §4): poll up to MaxPollRecords, send the records that can never be
// processed to the DLQ, hand the rest to the handler, publish the
// incentives, run AfterPublish, and only then commit the batch's offsets.
// Nothing is acknowledged before its effect is durable, so a crash at any
// point redelivers the batch, and the idempotent handler absorbs it.
//
// Partitions are never revoked mid-batch (kgo's BlockRebalanceOnPoll): a
// rebalance waits until the batch in hand is committed, so the member that
// takes a partition over starts exactly after it. A batch must therefore
// finish within the group's rebalance timeout (60s) to avoid stalling the
// group; retries of a failing step are the one way it can take longer.
type EngineConsumer struct {
	cfg EngineConsumerConfig
	log *slog.Logger
}

// NewEngineConsumer checks cfg. The consumer connects in Run.
func NewEngineConsumer(cfg EngineConsumerConfig) (*EngineConsumer, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("engine consumer: %w", err)
	}
	return &EngineConsumer{cfg: cfg, log: cfg.Logger.With("topic", cfg.Topic, "group", cfg.Group)}, nil
}

// errStopped ends a batch without committing it: Run's context ended before
// the batch could be finished. Its records are delivered again.
var errStopped = errors.New("stopped before the batch was committed")

// Run joins the group and processes batches until ctx ends. It then finishes
// the batch in hand (within StopTimeout), commits it and leaves the group, so
// the partitions move to the other members at once. It returns nil after a
// stop and an error only if the client cannot be created. Call it once.
func (c *EngineConsumer) Run(ctx context.Context) error {
	client, err := kgo.NewClient(
		kgo.SeedBrokers(c.cfg.Brokers...),
		kgo.ClientID(c.cfg.ClientID),
		kgo.ConsumerGroup(c.cfg.Group),
		kgo.ConsumeTopics(c.cfg.Topic),
		// A new group starts at the beginning: an engine deployed today
		// still decides yesterday's unprocessed events.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.HeartbeatInterval(c.cfg.HeartbeatInterval),
		kgo.SessionTimeout(c.cfg.SessionTimeout),
		kgo.RebalanceTimeout(c.cfg.RebalanceTimeout),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
			c.log.Info("partitions assigned", "partitions", assigned[c.cfg.Topic])
		}),
		// Everything processed is committed before a rebalance can run,
		// so there is nothing left to commit on revocation.
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
			if len(revoked[c.cfg.Topic]) > 0 {
				c.log.Info("partitions revoked", "partitions", revoked[c.cfg.Topic])
			}
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
			c.log.Warn("partitions lost; their uncommitted records go to the next owner", "partitions", lost[c.cfg.Topic])
		}),
		// The DLQ is produced by the same client: idempotent, acks from
		// all in-sync replicas (kgo's defaults), and an existing topic.
		kgo.RequiredAcks(kgo.AllISRAcks()),
	)
	if err != nil {
		return fmt.Errorf("engine consumer: %w", err)
	}
	// The batch in hand runs on work, which outlives ctx by StopTimeout.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stopTimer := context.AfterFunc(ctx, func() { time.AfterFunc(c.cfg.StopTimeout, cancelWork) })
	defer stopTimer()

	c.loop(ctx, work, client)
	// Close leaves the group, which lets the rebalance that hands our
	// partitions to the other members start now rather than after the
	// session timeout.
	client.AllowRebalance()
	client.Close()
	c.log.Info("engine consumer stopped")
	return nil
}

func (c *EngineConsumer) loop(ctx, work context.Context, client *kgo.Client) {
	for ctx.Err() == nil {
		fetches := client.PollRecords(ctx, c.cfg.MaxPollRecords)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			// Records polled but not processed are simply not committed.
			return
		}
		polled := time.Now()
		var fetchErr error
		fetches.EachError(func(topic string, partition int32, err error) {
			fetchErr = fmt.Errorf("fetch %s[%d]: %w", topic, partition, err)
		})
		records := fetches.Records()
		if fetchErr != nil {
			c.log.Warn("fetch failed; kgo retries it", "err", fetchErr)
		}
		if len(records) > 0 {
			err := c.process(ctx, work, client, records, polled)
			if errors.Is(err, errStopped) {
				return
			}
		} else if fetchErr != nil {
			// A fetch that keeps failing without records must not spin.
			sleep(ctx, c.cfg.RetryMin)
		}
		// Only now may a rebalance take partitions away: the batch is
		// committed.
		client.AllowRebalance()
	}
}

// process takes one batch from poll to commit. It returns errStopped if ctx
// ended before the batch could be committed.
func (c *EngineConsumer) process(ctx, work context.Context, client *kgo.Client, records []*kgo.Record, polled time.Time) error {
	stats := BatchStats{Records: len(records)}
	events := make([]engine.ActionEvent, 0, len(records))
	var dead []*kgo.Record
	for _, r := range records {
		e, err := DecodeActionEvent(c.cfg.Registry, r.Key, r.Value)
		if err != nil {
			dead = append(dead, c.dlqRecord(r, err))
			continue
		}
		events = append(events, e)
	}
	stats.Invalid = len(dead)
	if len(dead) > 0 {
		pending := dead
		err := c.retry(ctx, work, "produce to the DLQ", func(ctx context.Context) error {
			var tooLarge []*kgo.Record
			for _, res := range client.ProduceSync(ctx, pending...) {
				switch {
				case errors.Is(res.Err, kerr.MessageTooLarge):
					// Never retried as it is: sent again without its value.
					tooLarge = append(tooLarge, withoutValue(res.Record))
				case res.Err != nil:
					return res.Err
				}
			}
			pending = tooLarge
			return nil
		})
		if err == nil && len(pending) > 0 {
			err = c.retry(ctx, work, "produce stubs to the DLQ", func(ctx context.Context) error {
				return client.ProduceSync(ctx, pending...).FirstErr()
			})
		}
		if err != nil {
			return err
		}
		// One line per batch, not per record: a flood of garbage must not
		// flood the log too. The reasons are in the DLQ's headers.
		c.log.Warn("invalid action events sent to the DLQ", "count", len(dead), "dlq", c.cfg.DLQTopic,
			"first", string(headerValue(dead[0], HeaderError)))
	}

	var incentives []engine.Incentive
	if len(events) > 0 {
		err := c.retry(ctx, work, "handle batch", func(ctx context.Context) error {
			stats.Attempts++
			start := time.Now()
			var err error
			incentives, err = c.cfg.Handler(ctx, events)
			stats.Handle = time.Since(start)
			return err
		})
		if err != nil {
			return err
		}
	}
	stats.Incentives = len(incentives)
	// Publishing and AfterPublish are retried on their own: the handler has
	// committed, and called again it would find the events already logged
	// and return no incentives to publish.
	if len(incentives) > 0 {
		if err := c.retry(ctx, work, "publish incentives", func(ctx context.Context) error {
			return c.cfg.Publisher.PublishIncentives(ctx, incentives)
		}); err != nil {
			return err
		}
		if c.cfg.AfterPublish != nil {
			if err := c.retry(ctx, work, "after publish", func(ctx context.Context) error {
				return c.cfg.AfterPublish(ctx, incentives)
			}); err != nil {
				return err
			}
		}
	}
	if err := client.CommitRecords(work, records...); err != nil {
		// The batch's effects are durable and idempotent: whoever gets
		// these records again (after a rebalance) decides nothing twice.
		// kgo has already retried what was retryable.
		c.log.Warn("commit failed; the batch will be redelivered and deduplicated", "records", len(records), "err", err)
		if work.Err() != nil {
			return errStopped
		}
		return nil
	}
	stats.Total = time.Since(polled)
	if c.cfg.Observer != nil {
		c.cfg.Observer.BatchCommitted(stats)
	}
	return nil
}

// retry runs fn on work until it succeeds, waiting RetryMin, doubling up to
// RetryMax, between attempts. It gives up with errStopped when ctx has ended
// (a failure after a stop is not retried) or work has been cancelled.
func (c *EngineConsumer) retry(ctx, work context.Context, step string, fn func(context.Context) error) error {
	wait := c.cfg.RetryMin
	for attempt := 1; ; attempt++ {
		err := fn(work)
		if err == nil {
			if attempt > 1 {
				c.log.Info(step+" succeeded after retries", "attempts", attempt)
			}
			return nil
		}
		if ctx.Err() != nil || work.Err() != nil {
			c.log.Warn(step+" failed while stopping; the batch is not committed", "attempt", attempt, "err", err)
			return errStopped
		}
		c.log.Error(step+" failed; retrying the same batch", "attempt", attempt, "retry_in", wait, "err", err)
		if !sleep(ctx, wait) {
			return errStopped
		}
		wait = min(2*wait, c.cfg.RetryMax)
	}
}

// sleep waits d or until ctx ends, and reports whether it waited d.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
