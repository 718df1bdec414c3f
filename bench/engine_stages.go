package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/adapters/kafka"
	engineapp "github.com/incentives-platform/incentives/commands/engine"
	"github.com/incentives-platform/incentives/domain/engine"
)

// stage is one step of an engine batch, timed by the wrappers below.
type stage int

const (
	stDecode  stage = iota // poll's return to the handler: decode, DLQ check
	stHandle               // the handler (Engine.Process), every attempt
	stBegin                // inside the handler: BatchStore.Begin
	stLog                  // BatchTx.LogEvents (COPY into the event log)
	stMembers              // BatchTx.Members
	stLock                 // BatchTx.LockProgress
	stLimits               // Limiter.CheckAndIncr (Redis)
	stSave                 // BatchTx.SaveProgress
	stRecord               // BatchTx.Record
	stCommit               // BatchTx.Commit
	stSketch               // HotFilter.Observe (CMS_ADD, Redis)
	stHot                  // HotProgress: agg: hashes loaded, saved, settled, dropped (Redis)
	stPublish              // IncentivePublisher.PublishIncentives
	stMark                 // AfterPublish: PublishLog.MarkPublished
	stTotal                // poll's return to the offsets' commit
	nStages
)

// stageClock times the stages of the batch in hand. The consumer calls the
// handler, the publisher, AfterPublish and the observer one after the other
// from its one goroutine, so the current batch needs no lock; the finished
// batches do, as the bench reads them from another goroutine.
type stageClock struct {
	cur         [nStages]time.Duration
	handleStart time.Time
	onFirst     func() // runs when the first batch reaches the handler

	records, incentives atomic.Int64

	mu       sync.Mutex
	batches  []batchTimes
	first    time.Time // the first batch's poll
	last     time.Time // the last batch's commit
	attempts int       // handler calls beyond one per batch (retries)
}

// batchTimes is one committed batch.
type batchTimes struct {
	stats  kafka.BatchStats
	stages [nStages]time.Duration
}

func (c *stageClock) since(s stage, t0 time.Time) { c.cur[s] += time.Since(t0) }

// BatchCommitted implements kafka.EngineObserver.
func (c *stageClock) BatchCommitted(s kafka.BatchStats) {
	now := time.Now()
	polled := now.Add(-s.Total)
	b := batchTimes{stats: s, stages: c.cur}
	if !c.handleStart.IsZero() {
		b.stages[stDecode] = c.handleStart.Sub(polled)
	}
	b.stages[stTotal] = s.Total
	c.cur, c.handleStart = [nStages]time.Duration{}, time.Time{}
	c.mu.Lock()
	if c.first.IsZero() {
		c.first = polled
	}
	c.last = now
	c.batches = append(c.batches, b)
	if s.Attempts > 1 {
		c.attempts += s.Attempts - 1
	}
	c.mu.Unlock()
	c.incentives.Add(int64(s.Incentives))
	c.records.Add(int64(s.Records))
}

// handler wraps the batch handler to time it and mark where decoding ended.
func (c *stageClock) handler(h kafka.BatchHandler) kafka.BatchHandler {
	var once sync.Once
	return func(ctx context.Context, events []engine.ActionEvent) ([]engine.Incentive, error) {
		if c.onFirst != nil {
			once.Do(c.onFirst)
		}
		t0 := time.Now()
		if c.handleStart.IsZero() {
			c.handleStart = t0
		}
		defer c.since(stHandle, t0)
		return h(ctx, events)
	}
}

// waitFor waits until the consumer has committed n records.
func (c *stageClock) waitFor(ctx context.Context, n int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for c.records.Load() < n {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the consumer committed %d of %d records in %v", c.records.Load(), n, timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return nil
}

// snapshot returns the batches committed so far and the span from the first
// poll to the last commit.
func (c *stageClock) snapshot() ([]batchTimes, time.Duration, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]batchTimes(nil), c.batches...), c.last.Sub(c.first), c.attempts
}

// lastCommit returns when the last batch was committed.
func (c *stageClock) lastCommit() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// timedStore times every BatchTx call of the engine.
type timedStore struct {
	inner engineapp.BatchStore
	c     *stageClock
}

func (s timedStore) Begin(ctx context.Context) (engineapp.BatchTx, error) {
	t0 := time.Now()
	tx, err := s.inner.Begin(ctx)
	s.c.since(stBegin, t0)
	if err != nil {
		return nil, err
	}
	return timedTx{tx, s.c}, nil
}

type timedTx struct {
	inner engineapp.BatchTx
	c     *stageClock
}

func (t timedTx) LogEvents(ctx context.Context, events []engine.ActionEvent) ([]engine.ActionEvent, error) {
	defer t.c.since(stLog, time.Now())
	return t.inner.LogEvents(ctx, events)
}

func (t timedTx) Members(ctx context.Context, keys []engineapp.MemberKey) (map[engineapp.MemberKey]bool, error) {
	defer t.c.since(stMembers, time.Now())
	return t.inner.Members(ctx, keys)
}

func (t timedTx) LockProgress(ctx context.Context, keys []engineapp.ProgressKey) (map[engineapp.ProgressKey]engineapp.StoredProgress, error) {
	defer t.c.since(stLock, time.Now())
	return t.inner.LockProgress(ctx, keys)
}

func (t timedTx) ReadProgress(ctx context.Context, keys []engineapp.ProgressKey) (map[engineapp.ProgressKey]engineapp.StoredProgress, error) {
	defer t.c.since(stLock, time.Now())
	return t.inner.ReadProgress(ctx, keys)
}

func (t timedTx) DecisionsRecorded(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]bool, error) {
	defer t.c.since(stLock, time.Now())
	return t.inner.DecisionsRecorded(ctx, ids)
}

func (t timedTx) SaveProgress(ctx context.Context, progress []engineapp.StoredProgress) error {
	defer t.c.since(stSave, time.Now())
	return t.inner.SaveProgress(ctx, progress)
}

func (t timedTx) Record(ctx context.Context, decisions []engineapp.RecordedDecision, incentives []engine.Incentive) ([]engine.Incentive, error) {
	defer t.c.since(stRecord, time.Now())
	return t.inner.Record(ctx, decisions, incentives)
}

func (t timedTx) Commit(ctx context.Context) error {
	defer t.c.since(stCommit, time.Now())
	return t.inner.Commit(ctx)
}

func (t timedTx) Rollback(ctx context.Context) error { return t.inner.Rollback(ctx) }

// timedLimiter times the Redis round trip of a batch.
type timedLimiter struct {
	inner engineapp.Limiter
	c     *stageClock
}

func (l timedLimiter) CheckAndIncr(ctx context.Context, reqs []engineapp.LimitRequest) ([]engineapp.LimitAnswer, error) {
	defer l.c.since(stLimits, time.Now())
	return l.inner.CheckAndIncr(ctx, reqs)
}

// timedPublisher times publishing a batch's incentives.
type timedPublisher struct {
	inner engineapp.IncentivePublisher
	c     *stageClock
}

func (p timedPublisher) PublishIncentives(ctx context.Context, incentives []engine.Incentive) error {
	defer p.c.since(stPublish, time.Now())
	return p.inner.PublishIncentives(ctx, incentives)
}

// noopPublisher stands in for the publisher when the handler issues nothing.
type noopPublisher struct{}

func (noopPublisher) PublishIncentives(context.Context, []engine.Incentive) error { return nil }

// consumerRun is an EngineConsumer running in the background.
type consumerRun struct {
	stop func()
	done chan error
}

// startConsumer runs cfg's consumer until stopped.
func startConsumer(ctx context.Context, cfg kafka.EngineConsumerConfig) (*consumerRun, error) {
	consumer, err := kafka.NewEngineConsumer(cfg)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	r := &consumerRun{stop: cancel, done: make(chan error, 1)}
	go func() { r.done <- consumer.Run(rctx) }()
	return r, nil
}

// close stops the consumer (it commits the batch in hand) and waits for it.
func (r *consumerRun) close() error {
	r.stop()
	return <-r.done
}

// incentiveIDs returns the ids of incentives, for the publish log.
func incentiveIDs(incentives []engine.Incentive) []uuid.UUID {
	ids := make([]uuid.UUID, len(incentives))
	for i, in := range incentives {
		ids[i] = in.ID
	}
	return ids
}

// timedFilter times the hot filter.
type timedFilter struct {
	inner engineapp.HotFilter
	c     *stageClock
}

func (f timedFilter) Observe(ctx context.Context, occ map[uuid.UUID][]uuid.UUID) (map[uuid.UUID]bool, error) {
	defer f.c.since(stSketch, time.Now())
	return f.inner.Observe(ctx, occ)
}

// timedHot times hot quest progress in Redis.
type timedHot struct {
	inner engineapp.HotProgress
	c     *stageClock
}

func (h timedHot) Load(ctx context.Context, keys []engineapp.ProgressKey) (map[engineapp.ProgressKey]engineapp.HotEntry, error) {
	defer h.c.since(stHot, time.Now())
	return h.inner.Load(ctx, keys)
}

func (h timedHot) Save(ctx context.Context, writes []engineapp.HotWrite) error {
	defer h.c.since(stHot, time.Now())
	return h.inner.Save(ctx, writes)
}

func (h timedHot) Settle(ctx context.Context, settles []engineapp.HotSettle) error {
	defer h.c.since(stHot, time.Now())
	return h.inner.Settle(ctx, settles)
}

func (h timedHot) Drop(ctx context.Context, drops []engineapp.HotDrop) error {
	defer h.c.since(stHot, time.Now())
	return h.inner.Drop(ctx, drops)
}
