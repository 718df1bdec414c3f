package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/incentives-platform/incentives/adapters/auth"
	"github.com/incentives-platform/incentives/adapters/avro"
	"github.com/incentives-platform/incentives/adapters/kafka"
	"github.com/incentives-platform/incentives/adapters/ws"
	"github.com/incentives-platform/incentives/domain/engine"
	"github.com/incentives-platform/incentives/domain/rules"
)

// dcmLatencyRun is one paced run of notifications to the connected users.
type dcmLatencyRun struct {
	path     string
	rate     int     // asked, notifications/s
	achieved float64 // notifications/s the pacer kept
	sent     int
	dups     int64
	// latencies from handing a notification over to reading its frame,
	// sorted.
	latencies []time.Duration
	note      string
}

func (r dcmLatencyRun) percentile(p float64) time.Duration {
	return result{latencies: r.latencies}.percentile(p)
}

// frameClock notes when each notification of a run was handed over and
// when its frame was read. A notification's incentive id carries the run's
// prefix and its sequence number, so a reader finds its slot without a map.
type frameClock struct {
	prefix [8]byte
	base   time.Time
	sent   []atomic.Int64 // ns since base, plus 1; 0 is not yet
	recv   []atomic.Int64
	got    atomic.Int64
	dups   atomic.Int64
}

func newFrameClock(n int) *frameClock {
	f := &frameClock{base: time.Now(), sent: make([]atomic.Int64, n), recv: make([]atomic.Int64, n)}
	_, _ = rand.Read(f.prefix[:])
	return f
}

func (f *frameClock) id(seq int) uuid.UUID {
	var id uuid.UUID
	copy(id[:8], f.prefix[:])
	binary.BigEndian.PutUint64(id[8:], uint64(seq))
	return id
}

func (f *frameClock) stamp(seq int, at time.Time) { f.sent[seq].Store(int64(at.Sub(f.base)) + 1) }

// record notes a frame read at at; frames of another run are ignored.
func (f *frameClock) record(msg []byte, at time.Time) {
	var fr struct {
		IncentiveID uuid.UUID `json:"incentiveId"`
	}
	if json.Unmarshal(msg, &fr) != nil || [8]byte(fr.IncentiveID[:8]) != f.prefix {
		return
	}
	seq := binary.BigEndian.Uint64(fr.IncentiveID[8:])
	if seq >= uint64(len(f.recv)) {
		return
	}
	if f.recv[seq].CompareAndSwap(0, int64(at.Sub(f.base))+1) {
		f.got.Add(1)
	} else {
		f.dups.Add(1)
	}
}

// latencies returns every read frame's latency, sorted.
func (f *frameClock) latencies() []time.Duration {
	var out []time.Duration
	for i := range f.sent {
		s, r := f.sent[i].Load(), f.recv[i].Load()
		if s != 0 && r != 0 {
			out = append(out, time.Duration(r-s))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// dcmLatencyBench is the DCM of the latency runs: one ws.Server fed by the
// real DCM consumer from an embedded broker, and its connected users.
type dcmLatencyBench struct {
	o         options
	srv       *ws.Server
	broker    *kafka.Embedded
	registry  *avro.Registry
	tenant    uuid.UUID
	campaign  uuid.UUID
	users     []string
	clock     atomic.Pointer[frameClock]
	readers   sync.WaitGroup
	clients   []*wsClient
	consumed  chan error
	cleanups  []func()
	readerErr atomic.Pointer[string]
}

func (b *dcmLatencyBench) close() {
	for i := len(b.cleanups) - 1; i >= 0; i-- {
		b.cleanups[i]()
	}
}

// measureDCMLatency delivers dcmRate notifications/s for o.duration, first
// straight into the server (its hub and sockets alone), then through
// incentive-generated and the DCM consumer, as the engine publishes them.
func measureDCMLatency(ctx context.Context, o options) (_ []dcmLatencyRun, err error) {
	if _, err := raiseNoFile(uint64(4*dcmLatencyUsers + dcmFDReserve)); err != nil {
		return nil, err
	}
	b := &dcmLatencyBench{o: o, tenant: uuid.New(), campaign: uuid.New()}
	defer b.close()
	if err := b.setup(ctx); err != nil {
		return nil, err
	}
	publisher, err := kafka.NewIncentivePublisher(kafka.IncentivePublisherConfig{Brokers: b.broker.Brokers(), Registry: b.registry})
	if err != nil {
		return nil, err
	}
	defer publisher.Close()

	var runs []dcmLatencyRun
	deliver, err := b.measure(ctx, "hub alone: `Server.Deliver` → frame read", func(_ context.Context, batch []engine.Incentive) error {
		for _, inc := range batch {
			b.srv.Deliver(inc)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	runs = append(runs, deliver)
	full, err := b.measure(ctx, "the engine's `IncentivePublisher` → `incentive-generated` → DCM consumer → frame read", publisher.PublishIncentives)
	if err != nil {
		return nil, err
	}
	runs = append(runs, full)
	if p := b.readerErr.Load(); p != nil {
		return runs, fmt.Errorf("a client stopped reading: %s", *p)
	}
	return runs, nil
}

func (b *dcmLatencyBench) setup(ctx context.Context) error {
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	authn, err := auth.New(secret, time.Now)
	if err != nil {
		return err
	}
	if b.srv, err = ws.New(ws.Config{}, ws.Deps{Verifier: authn, Logger: b.o.logger}); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: b.srv.Handler(), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(b.o.logger.Handler(), slog.LevelWarn)}
	go func() { _ = hs.Serve(ln) }()
	b.cleanups = append(b.cleanups, func() { _ = hs.Close() }, func() { _ = b.srv.Close() })

	if b.broker, err = kafka.StartEmbedded(kafka.EmbeddedConfig{Addr: "127.0.0.1:0", Partitions: 8}); err != nil {
		return err
	}
	b.cleanups = append(b.cleanups, b.broker.Close)
	if err := kafka.EnsureTopics(ctx, b.broker.Brokers(), []kafka.TopicSpec{{Name: kafka.IncentiveGeneratedTopic, Partitions: 8}}); err != nil {
		return err
	}
	if b.registry, _, err = avro.LoadPlatform(); err != nil {
		return err
	}
	dlq, err := kafka.NewPublisher(b.broker.Brokers(), watermill.NopLogger{})
	if err != nil {
		return err
	}
	b.cleanups = append(b.cleanups, func() { _ = dlq.Close() })
	consumer, err := kafka.NewDCMConsumer(kafka.DCMConsumerConfig{Brokers: b.broker.Brokers(), Registry: b.registry,
		Group: kafka.DCMGroup("bench-" + uuid.NewString()), Sink: b.srv, DLQ: dlq, Logger: watermill.NopLogger{}})
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	b.consumed = make(chan error, 1)
	go func() { b.consumed <- consumer.Run(runCtx) }()
	b.cleanups = append(b.cleanups, func() { stop(); <-b.consumed })
	select {
	case <-consumer.Ready():
	case err := <-b.consumed:
		b.consumed <- err
		return fmt.Errorf("dcm consumer: %w", err)
	case <-time.After(time.Minute):
		return errors.New("dcm consumer: not ready within a minute")
	}

	// The users connect as apps would: a token each, one connection each,
	// and a reader that answers pings.
	b.cleanups = append(b.cleanups, func() {
		for _, c := range b.clients {
			_ = c.close()
		}
		b.readers.Wait()
	})
	for n := range dcmLatencyUsers {
		c, err := dialUser(ctx, authn, ln.Addr().String(), b.tenant, n)
		if err != nil {
			return err
		}
		b.clients = append(b.clients, c)
		b.users = append(b.users, "bench-user-"+strconv.Itoa(n))
		b.readers.Add(1)
		go b.read(c)
	}
	for b.srv.Connections() < dcmLatencyUsers {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

func (b *dcmLatencyBench) read(c *wsClient) {
	defer b.readers.Done()
	for {
		msg, err := c.next()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s := err.Error()
				b.readerErr.CompareAndSwap(nil, &s)
			}
			return
		}
		at := time.Now()
		if f := b.clock.Load(); f != nil {
			f.record(msg, at)
		}
	}
}

// measure hands dcmRate notifications/s for o.duration to send, paced in
// 1 ms steps (a step's notifications go in one call, as the engine
// publishes a batch), users round robin, and waits for their frames.
func (b *dcmLatencyBench) measure(ctx context.Context, path string, send func(context.Context, []engine.Incentive) error) (dcmLatencyRun, error) {
	run := dcmLatencyRun{path: path, rate: dcmRate}
	total := int(float64(dcmRate) * b.o.duration.Seconds())
	clock := newFrameClock(total)
	b.clock.Store(clock)
	defer b.clock.Store(nil)
	reward := engine.Reward{Type: rules.RewardCashback, Currency: "INR", Amount: decimal.RequireFromString("12.50")}
	batch := make([]engine.Incentive, 0, 64)
	start := time.Now()
	var last time.Time
	for i := 0; i < total; {
		due := min(total, int(time.Since(start).Seconds()*float64(dcmRate))+1)
		batch = batch[:0]
		now := time.Now()
		for ; i < due; i++ {
			batch = append(batch, engine.Incentive{ID: clock.id(i), TenantID: b.tenant, CampaignID: b.campaign,
				UserID: b.users[i%len(b.users)], SourceEventID: clock.id(i), Reward: reward, IssuedAt: now})
		}
		if len(batch) > 0 {
			last = time.Now()
			for j := range batch {
				clock.stamp(i-len(batch)+j, last)
			}
			if err := send(ctx, batch); err != nil {
				return run, err
			}
		}
		time.Sleep(time.Millisecond)
	}
	run.sent = total
	run.achieved = float64(total) / last.Sub(start).Seconds()
	// Wait for the frames until none has come for five seconds.
	seen, quiet := clock.got.Load(), time.Now()
	for clock.got.Load() < int64(total) && time.Since(quiet) < 5*time.Second {
		if ctx.Err() != nil {
			return run, ctx.Err()
		}
		time.Sleep(5 * time.Millisecond)
		if n := clock.got.Load(); n != seen {
			seen, quiet = n, time.Now()
		}
	}
	run.latencies = clock.latencies()
	run.dups = clock.dups.Load()
	if missing := total - len(run.latencies); missing > 0 || run.dups > 0 {
		run.note = fmt.Sprintf("%s: %s frames never arrived, %d arrived twice (slow clients closed so far: %d).",
			path, thousands(int64(missing)), run.dups, b.srv.Stats().SlowClientsClosed)
	}
	return run, nil
}
