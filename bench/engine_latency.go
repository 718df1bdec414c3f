package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/incentives-platform/incentives/adapters/avro"
	"github.com/incentives-platform/incentives/adapters/kafka"
	"github.com/incentives-platform/incentives/bench/loadgen"
	"github.com/incentives-platform/incentives/domain/engine"
)

// measureWatermill reads topic with the platform's watermill subscriber in
// group, decoding each message as the engine does, handing it to handle
// (when set), and acking it, from eight goroutines (one per partition, as a
// router's handlers would run), for d from the first message.
func measureWatermill(ctx context.Context, brokers []string, registry *avro.Registry, topic, group string, d time.Duration,
	handle func(context.Context, engine.ActionEvent) error) (int64, time.Duration, error) {
	sub, err := kafka.NewSubscriber(brokers, group, watermill.NopLogger{})
	if err != nil {
		return 0, 0, err
	}
	defer sub.Close()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	messages, err := sub.Subscribe(sctx, topic)
	if err != nil {
		return 0, 0, err
	}
	var (
		read     atomic.Int64
		first    = make(chan time.Time, 1)
		once     sync.Once
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range messages {
				once.Do(func() { first <- time.Now() })
				e, err := kafka.DecodeActionEvent(registry, nil, m.Payload)
				if err == nil && handle != nil {
					err = handle(sctx, e)
				}
				if err != nil && sctx.Err() == nil {
					mu.Lock()
					firstErr = errors.Join(firstErr, err)
					mu.Unlock()
					cancel()
				}
				m.Ack()
				read.Add(1)
			}
		}()
	}
	var start time.Time
	select {
	case start = <-first:
	case <-time.After(time.Minute):
		cancel()
		wg.Wait()
		return 0, 0, errors.New("no message within a minute")
	case <-ctx.Done():
		cancel()
		wg.Wait()
		return 0, 0, ctx.Err()
	}
	time.Sleep(time.Until(start.Add(d)))
	n, took := read.Load(), time.Since(start)
	cancel()
	wg.Wait()
	return n, took, firstErr
}

// latencyRun is one paced run: events produced at a rate to the engine,
// which has caught up with tenant-events, and the incentives they caused
// read back from incentive-generated.
type latencyRun struct {
	rate     int     // asked, events/s
	produced int     // events produced
	achieved float64 // events/s the paced producer kept
	rewarded int     // incentives matched to a produced event
	// latencies from handing an event to the producer to reading its
	// incentive from incentive-generated, sorted.
	latencies []time.Duration
	// drain is how long after the last event was produced the engine
	// committed it: a rate the engine keeps up with leaves about one batch.
	drain     time.Duration
	sustained bool
}

func (r latencyRun) percentile(p float64) time.Duration {
	return result{latencies: r.latencies}.percentile(p)
}

// incentiveReader reads incentive-generated from its start and notes when
// each incentive's source event was seen.
type incentiveReader struct {
	client   *kgo.Client
	registry *avro.Registry
	mu       sync.Mutex
	read     int64
	seen     map[uuid.UUID]time.Time
	err      error
	done     chan struct{}
}

func startIncentiveReader(ctx context.Context, brokers []string, registry *avro.Registry) (*incentiveReader, error) {
	client, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(kafka.IncentiveGeneratedTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return nil, err
	}
	r := &incentiveReader{client: client, registry: registry, seen: map[uuid.UUID]time.Time{}, done: make(chan struct{})}
	go r.loop(ctx)
	return r, nil
}

func (r *incentiveReader) loop(ctx context.Context) {
	defer close(r.done)
	for {
		fetches := r.client.PollFetches(ctx)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			return
		}
		at := time.Now() // the whole fetch arrived together
		r.mu.Lock()
		fetches.EachRecord(func(rec *kgo.Record) {
			r.read++
			inc, err := kafka.DecodeIncentiveEvent(r.registry, rec.Value)
			if err != nil {
				if r.err == nil {
					r.err = err
				}
				return
			}
			if _, ok := r.seen[inc.SourceEventID]; !ok {
				r.seen[inc.SourceEventID] = at
			}
		})
		r.mu.Unlock()
	}
}

// waitFor waits until the reader has read n records.
func (r *incentiveReader) waitFor(ctx context.Context, n int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		r.mu.Lock()
		read, err := r.read, r.err
		r.mu.Unlock()
		switch {
		case err != nil:
			return err
		case read >= n:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case time.Now().After(deadline):
			return fmt.Errorf("incentive-generated: read %d of %d records in %v", read, n, timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// take returns what the reader saw and forgets it.
func (r *incentiveReader) take() map[uuid.UUID]time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := r.seen
	r.seen = map[uuid.UUID]time.Time{}
	return seen
}

func (r *incentiveReader) close() {
	r.client.Close()
	<-r.done
}

// measureLatency produces rate events/s for d, paced in 1 ms steps, to an
// engine that has committed base records so far, waits for the engine to
// commit them all, and matches the incentives read back to the events.
func measureLatency(ctx context.Context, brokers []string, registry *avro.Registry, gen *loadgen.Generator,
	clock *stageClock, reader *incentiveReader, base int64, rate int, d time.Duration) (latencyRun, error) {
	run := latencyRun{rate: rate}
	ends, err := kafka.EndOffsets(ctx, brokers, kafka.IncentiveGeneratedTopic)
	if err != nil {
		return run, err
	}
	// Everything published before this run is read (and forgotten) first.
	if err := reader.waitFor(ctx, ends, time.Minute); err != nil {
		return run, err
	}
	reader.take()
	producer, err := kafka.NewActionEventProducer(brokers, registry, "")
	if err != nil {
		return run, err
	}
	defer producer.Close()
	total := int(float64(rate) * d.Seconds())
	sent := make(map[uuid.UUID]time.Time, total)
	start := time.Now()
	var last time.Time
	for i := 0; i < total; {
		due := min(total, int(time.Since(start).Seconds()*float64(rate))+1)
		for ; i < due; i++ {
			e := gen.Next(time.Now())
			last = time.Now()
			sent[e.EventID] = last
			if err := producer.Produce(ctx, e); err != nil {
				return run, err
			}
		}
		time.Sleep(time.Millisecond)
	}
	run.produced = total
	run.achieved = float64(total) / last.Sub(start).Seconds()
	if err := producer.Flush(ctx); err != nil {
		return run, err
	}
	if err := clock.waitFor(ctx, base+int64(total), 10*time.Minute); err != nil {
		return run, err
	}
	run.drain = clock.lastCommit().Sub(last)
	run.sustained = run.drain <= max(time.Second, d/5)
	if ends, err = kafka.EndOffsets(ctx, brokers, kafka.IncentiveGeneratedTopic); err != nil {
		return run, err
	}
	if err := reader.waitFor(ctx, ends, time.Minute); err != nil {
		return run, err
	}
	for id, at := range reader.take() {
		if t0, ok := sent[id]; ok {
			run.latencies = append(run.latencies, at.Sub(t0))
		}
	}
	sort.Slice(run.latencies, func(i, j int) bool { return run.latencies[i] < run.latencies[j] })
	run.rewarded = len(run.latencies)
	return run, nil
}
