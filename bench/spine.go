package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/adapters/jsonschema"
	"github.com/incentives-platform/incentives/adapters/kafka"
	"github.com/incentives-platform/incentives/adapters/postgres"
	"github.com/incentives-platform/incentives/adapters/relay"
	"github.com/incentives-platform/incentives/commands"
	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/tenant"
)

type noRecorder struct{}

func (noRecorder) ObserveCommand(string, time.Duration, string) {}

// runSpine measures the event store and the outbox relay (issue #2).
func runSpine(ctx context.Context, o options) (string, error) {
	bs, err := openStore(ctx)
	if err != nil {
		return "", err
	}
	defer func() { _ = bs.close() }()
	db, codec, store := bs.db, bs.codec, bs.store
	messages := kafka.DomainMessages{Codec: codec}
	ruleSchema, err := jsonschema.LoadRuleSchema()
	if err != nil {
		return "", err
	}
	app := commands.NewApplication(commands.Dependencies{Store: store, Clock: commands.SystemClock{},
		TenantDefaults: commands.DefaultTenantDefaults(), Logger: o.logger, Recorder: noRecorder{}, RuleSchema: ruleSchema})

	now := time.Now().UTC().Truncate(time.Millisecond)
	_, payload, err := codec.EncodeJSON(tenant.Created{TenantID: uuid.New(), Name: "Benchmark tenant", CreatedAt: now})
	if err != nil {
		return "", err
	}
	if _, err := db.Pool.Exec(ctx, `CREATE TABLE bench_plain (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, payload jsonb NOT NULL)`); err != nil {
		return "", err
	}
	plainInsert := func(ctx context.Context, _ int) error {
		_, err := db.Pool.Exec(ctx, `INSERT INTO bench_plain (payload) VALUES ($1)`, string(payload))
		return err
	}
	appendNew := func(ctx context.Context, _ int) error {
		id := uuid.New()
		_, err := store.Append(ctx, domain.Metadata{TenantID: id}, domain.StreamAppend{Stream: tenant.Stream(id),
			Events: []domain.Event{tenant.Created{TenantID: id, Name: "Benchmark tenant", CreatedAt: now}}})
		return err
	}
	const (
		writers = 8
		// streamLength bounds the streams commands work on: each writer moves
		// to a fresh tenant after this many commands, so the figure measures
		// a command, not the length of an ever-growing stream.
		streamLength = 20
	)
	own := make([]uuid.UUID, writers)
	done := make([]int, writers)
	fresh := func(w int) error {
		own[w] = uuid.New()
		_, err := app.CreateTenant.Handle(ctx, commands.CreateTenant{TenantID: own[w], Name: fmt.Sprint("writer ", w)})
		return err
	}
	for w := range own {
		if err := fresh(w); err != nil {
			return "", err
		}
	}
	// A lifecycle command on the writer's own tenant: load, decide, append at
	// the loaded version.
	toggle := func(id uuid.UUID) error {
		_, err := app.SuspendTenant.Handle(ctx, commands.SuspendTenant{TenantID: id})
		if errors.Is(err, domain.ErrInvalidTransition) {
			_, err = app.ReactivateTenant.Handle(ctx, commands.ReactivateTenant{TenantID: id})
		}
		return err
	}
	ownCommand := func(_ context.Context, w int) error {
		if done[w]++; done[w]%streamLength == 0 {
			if err := fresh(w); err != nil {
				return err
			}
		}
		return toggle(own[w])
	}
	var (
		gaveUp, shared atomic.Int64
		sharedMu       sync.Mutex
		sharedID       uuid.UUID
	)
	contended := func(_ context.Context, _ int) error {
		if shared.Add(1)%streamLength == 0 {
			id := uuid.New()
			if _, err := app.CreateTenant.Handle(ctx, commands.CreateTenant{TenantID: id, Name: "shared"}); err != nil {
				return err
			}
			sharedMu.Lock()
			sharedID = id
			sharedMu.Unlock()
		}
		sharedMu.Lock()
		id := sharedID
		sharedMu.Unlock()
		err := toggle(id)
		if errors.Is(err, domain.ErrVersionConflict) || errors.Is(err, domain.ErrInvalidTransition) {
			gaveUp.Add(1) // lost the race three times in a row; a client would retry
			return nil
		}
		return err
	}

	t := &table{header: []string{"write", "writers", "rate", "p50", "p99"}}
	measure := func(name string, workers int, op func(context.Context, int) error) (result, error) {
		r, err := timed(ctx, workers, o.duration, op)
		if err != nil {
			return r, fmt.Errorf("%s: %w", name, err)
		}
		t.add(name, fmt.Sprint(workers), perSecond(r.rate()), ms(r.percentile(0.5)), ms(r.percentile(0.99)))
		return r, nil
	}
	var rates = map[string]float64{}
	for _, w := range []int{1, writers} {
		for _, s := range []struct {
			key, name string
			op        func(context.Context, int) error
		}{
			{"plain", "plain `INSERT` of the same payload (autocommit, the baseline)", plainInsert},
			{"append", "`Append`: new stream, version check + event + outbox row in one transaction", appendNew},
			{"command", fmt.Sprintf("command (suspend/reactivate) on the writer's own tenant: load (≤ %d events) + decide + append at the loaded version", streamLength), ownCommand},
		} {
			r, err := measure(s.name, w, s.op)
			if err != nil {
				return "", err
			}
			rates[fmt.Sprint(s.key, w)] = r.rate()
		}
	}
	sharedID = uuid.New()
	if _, err := app.CreateTenant.Handle(ctx, commands.CreateTenant{TenantID: sharedID, Name: "shared"}); err != nil {
		return "", err
	}
	c, err := timed(ctx, writers, o.duration, contended)
	if err != nil {
		return "", fmt.Errorf("contended: %w", err)
	}
	succeeded := c.ops - int(gaveUp.Load())
	t.add(fmt.Sprintf("command, all writers on **one** tenant at a time (≤ %d events; conflicts reloaded and retried), successes only", streamLength),
		fmt.Sprint(writers), perSecond(float64(succeeded)/c.elapsed.Seconds()), ms(c.percentile(0.5)), ms(c.percentile(0.99)))
	contendedNote := fmt.Sprintf("%s of the contended commands lost the race three times in a row and gave up (the API answers 409; a client would retry)",
		pct(float64(gaveUp.Load()), float64(c.ops)))

	relayed, err := measureRelay(ctx, o, db, messages)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "### Event store and outbox relay (issue #2)\n\n")
	fmt.Fprintf(&b, "Measured %s on %s, PostgreSQL on the same machine (synchronous commit), embedded kfake broker; "+
		"`make bench` (`go run ./bench -write BENCHMARKS.md`), %v per figure.\n\n", time.Now().UTC().Format("2006-01-02"), machine(), o.duration)
	b.WriteString(t.String())
	fmt.Fprintf(&b, "\nAppend rate as a share of plain INSERT: %s with 1 writer, %s with 8. Commands as a share of appends: %s with 1 writer, %s with 8. Contended: %s.\n\n",
		pct(rates["append1"], rates["plain1"]), pct(rates["append8"], rates["plain8"]),
		pct(rates["command1"], rates["append1"]), pct(rates["command8"], rates["append8"]), contendedNote)
	b.WriteString(relayed)
	return b.String(), nil
}

// measureRelay relays the whole outbox the writes above left behind and
// compares the rate with producing to the same broker directly.
func measureRelay(ctx context.Context, o options, db *postgres.DB, messages kafka.DomainMessages) (string, error) {
	backlog, err := db.OutboxBacklog(ctx)
	if err != nil {
		return "", err
	}
	broker, err := kafka.StartEmbedded(kafka.EmbeddedConfig{Addr: "127.0.0.1:0", Partitions: 8})
	if err != nil {
		return "", err
	}
	defer broker.Close()
	topics := []kafka.TopicSpec{{Name: "ic.domain.tenant", Partitions: 8}, {Name: "ic.domain.limits", Partitions: 8},
		{Name: "bench.sync", Partitions: 8}, {Name: "bench.batched", Partitions: 8}}
	if err := kafka.EnsureTopics(ctx, broker.Brokers(), topics); err != nil {
		return "", err
	}
	wlog := watermill.NopLogger{}
	pub, err := kafka.NewPublisher(broker.Brokers(), wlog)
	if err != nil {
		return "", err
	}
	defer pub.Close()
	outbox, err := postgres.NewOutboxSubscriber(db, postgres.OutboxSubscriberConfig{}, wlog)
	if err != nil {
		return "", err
	}
	r, err := relay.New(relay.Config{Outbox: outbox, Publisher: pub, OutboxTopic: postgres.OutboxTopic, Logger: o.logger})
	if err != nil {
		return "", err
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- r.Run(rctx) }()
	for {
		n, err := kafka.EndOffsets(ctx, broker.Brokers(), "ic.domain.tenant", "ic.domain.limits")
		if err != nil {
			stop()
			return "", err
		}
		if n >= backlog {
			break
		}
		if time.Since(start) > 10*time.Minute {
			stop()
			return "", fmt.Errorf("relay: %d of %d events in 10 minutes", n, backlog)
		}
		time.Sleep(5 * time.Millisecond)
	}
	relayTook := time.Since(start)
	stop()
	if err := <-done; err != nil {
		return "", err
	}
	relayRate := float64(backlog) / relayTook.Seconds()

	// The same publisher the relay uses, one message at a time, the same values.
	now := time.Now().UTC().Truncate(time.Millisecond)
	id := uuid.New()
	_, sample, err := messages.OutboxMessage(domain.RecordedEvent{Stream: tenant.Stream(id), Version: 1, EventID: uuid.New(),
		Event: tenant.Created{TenantID: id, Name: "Benchmark tenant", CreatedAt: now}, RecordedAt: now})
	if err != nil {
		return "", err
	}
	syncRes, err := timed(ctx, 1, o.duration, func(context.Context, int) error {
		m := message.NewMessage(watermill.NewUUID(), sample.Payload)
		m.Metadata = sample.Metadata
		return pub.Publish("bench.sync", m)
	})
	if err != nil {
		return "", err
	}
	batch := make([]kafka.Record, backlog)
	for i := range batch {
		batch[i] = kafka.Record{Key: []byte(uuid.NewString()), Value: sample.Payload}
	}
	bstart := time.Now()
	if err := kafka.ProduceAll(ctx, broker.Brokers(), "bench.batched", batch); err != nil {
		return "", err
	}
	batchRate := float64(backlog) / time.Since(bstart).Seconds()

	t := &table{header: []string{"to the same broker", "messages", "rate"}}
	t.add("outbox → Kafka relay (watermill-sql subscriber + forwarder, sync idempotent producer)", thousands(backlog), perSecond(relayRate))
	t.add("raw produce, the relay's publisher, one message at a time", thousands(int64(syncRes.ops)), perSecond(syncRes.rate()))
	t.add("raw produce, franz-go batching producer", thousands(backlog), perSecond(batchRate))
	return fmt.Sprintf("%s\nThe relay forwards at %s of its publisher's raw one-at-a-time rate and %s of the broker's batched rate: "+
		"watermill's forwarder publishes each message synchronously and acks it before the next, which keeps per-stream order "+
		"and loses nothing, at the price of a round trip per event.\n", t, pct(relayRate, syncRes.rate()), pct(relayRate, batchRate)), nil
}
