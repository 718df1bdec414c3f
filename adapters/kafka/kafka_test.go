package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/adapters/avro"
	"github.com/incentives-platform/incentives/adapters/kafka"
	"github.com/incentives-platform/incentives/adapters/kafka/kafkatest"
	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/tenant"
	"github.com/incentives-platform/incentives/projections"
)

func logger() watermill.LoggerAdapter {
	return watermill.NewSlogLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func codec(t *testing.T) *avro.EventCodec {
	t.Helper()
	_, c, err := avro.LoadPlatform()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestEmbeddedBrokerRefusesATakenAddress(t *testing.T) {
	b := kafkatest.MustBroker(t)
	_, err := kafka.StartEmbedded(kafka.EmbeddedConfig{Addr: b.Addr()})
	if !errors.Is(err, kafka.ErrAddrInUse) {
		t.Fatalf("second broker on %s: error = %v, want ErrAddrInUse", b.Addr(), err)
	}
}

func TestEnsureTopicsCreatesTopicsAndDLQs(t *testing.T) {
	b := kafkatest.MustBroker(t)
	ctx := context.Background()
	specs := []kafka.TopicSpec{{Name: "ic.domain.tenant", Partitions: 3}}
	for range 2 { // idempotent
		if err := kafka.EnsureTopics(ctx, b.Brokers(), specs); err != nil {
			t.Fatal(err)
		}
	}
	pub, err := kafka.NewPublisher(b.Brokers(), logger())
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	// Every key lands in one of exactly 3 partitions.
	for i := range 30 {
		m := message.NewMessage(watermill.NewUUID(), []byte("x"))
		kafka.SetKey(m, fmt.Sprint(i))
		if err := pub.Publish("ic.domain.tenant", m); err != nil {
			t.Fatal(err)
		}
	}
	parts := map[int32]bool{}
	for _, r := range kafkatest.ReadN(t, b.Brokers(), 30, 10*time.Second, "ic.domain.tenant") {
		parts[r.Partition] = true
	}
	if len(parts) != 3 {
		t.Fatalf("records spread over partitions %v, want 3 partitions", parts)
	}
	if err := kafka.Ping(ctx, b.Brokers()); err != nil {
		t.Fatal(err)
	}
}

func TestKeyedMessagesKeepTheirOrderAndKeyNotAHeader(t *testing.T) {
	b := kafkatest.MustBroker(t)
	pub, err := kafka.NewPublisher(b.Brokers(), logger())
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	for i := range 50 {
		m := message.NewMessage(watermill.NewUUID(), []byte(fmt.Sprint(i)))
		kafka.SetKey(m, "stream-"+fmt.Sprint(i%3))
		m.Metadata.Set("seq", fmt.Sprint(i))
		if err := pub.Publish("ordered", m); err != nil {
			t.Fatal(err)
		}
	}
	last := map[string]int{}
	partitionOf := map[string]int32{}
	for _, r := range kafkatest.ReadN(t, b.Brokers(), 50, 10*time.Second, "ordered") {
		if _, leaked := r.Headers["_kafka_key"]; leaked {
			t.Fatal("the key travelled as a header too")
		}
		var seq int
		fmt.Sscan(r.Headers["seq"], &seq)
		if p, seen := partitionOf[r.Key]; seen && p != r.Partition {
			t.Fatalf("key %s in partitions %d and %d", r.Key, p, r.Partition)
		}
		if prev, seen := last[r.Key]; seen && seq <= prev {
			t.Fatalf("key %s: seq %d after %d", r.Key, seq, prev)
		}
		partitionOf[r.Key], last[r.Key] = r.Partition, seq
	}
}

func TestDomainMessagesRoundTrip(t *testing.T) {
	dm := kafka.DomainMessages{Codec: codec(t)}
	id := uuid.New()
	rec := domain.RecordedEvent{
		Position: 42, Stream: tenant.Stream(id), Version: 1, EventID: domain.EventID(tenant.Stream(id), 1),
		Event:      tenant.Created{TenantID: id, Name: "Acme", CreatedAt: time.Date(2026, 11, 25, 1, 2, 3, 4e6, time.UTC)},
		Metadata:   domain.Metadata{TenantID: id, CorrelationID: "c", CausationID: "e", Actor: "a"},
		RecordedAt: time.Date(2026, 11, 25, 1, 2, 3, 456789000, time.UTC),
	}
	topic, msg, err := dm.OutboxMessage(rec)
	if err != nil || topic != "ic.domain.tenant" {
		t.Fatalf("OutboxMessage = %s, %v", topic, err)
	}
	got, err := dm.Decode(msg)
	if err != nil || got != rec {
		t.Fatalf("Decode = %+v, %v\nwant %+v", got, err, rec)
	}
	for name, mutate := range map[string]func(*message.Message){
		"missing version":      func(m *message.Message) { delete(m.Metadata, kafka.HeaderStreamVersion) },
		"bad aggregate id":     func(m *message.Message) { m.Metadata.Set(kafka.HeaderAggregateID, "x") },
		"wrong event type":     func(m *message.Message) { m.Metadata.Set(kafka.HeaderEventType, "tenant.suspended.v1") },
		"undecodable value":    func(m *message.Message) { m.Payload = []byte("{}") },
		"non-uuid message id":  func(m *message.Message) { m.UUID = "nope" },
		"bad recorded-at time": func(m *message.Message) { m.Metadata.Set(kafka.HeaderRecordedAt, "yesterday") },
	} {
		_, bad, _ := dm.OutboxMessage(rec)
		mutate(bad)
		if _, err := dm.Decode(bad); !errors.Is(err, kafka.ErrMalformed) {
			t.Errorf("%s: Decode error = %v, want ErrMalformed", name, err)
		}
	}
}

// recordingProjector counts what it was handed.
type recordingProjector struct {
	mu   sync.Mutex
	seen []domain.RecordedEvent
	cps  []projections.Checkpoint
}

func (*recordingProjector) Name() string         { return "recorder" }
func (*recordingProjector) Aggregates() []string { return []string{tenant.Aggregate} }
func (p *recordingProjector) Handle(_ context.Context, d projections.Delivery) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen = append(p.seen, d.Event)
	p.cps = append(p.cps, d.Checkpoint)
	return nil
}
func (p *recordingProjector) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.seen)
}

func TestProjectionsSendPoisonToTheDLQAndGoOn(t *testing.T) {
	b := kafkatest.MustBroker(t)
	c := codec(t)
	dm := kafka.DomainMessages{Codec: c}
	if err := kafka.EnsureTopics(context.Background(), b.Brokers(), []kafka.TopicSpec{{Name: "ic.domain.tenant", Partitions: 1}}); err != nil {
		t.Fatal(err)
	}
	pub, err := kafka.NewPublisher(b.Brokers(), logger())
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	publish := func(i int, poison bool) {
		id := uuid.New()
		_, msg, err := dm.OutboxMessage(domain.RecordedEvent{Position: int64(i), Stream: tenant.Stream(id), Version: 1,
			EventID: uuid.New(), Event: tenant.Created{TenantID: id, Name: fmt.Sprint(i), CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}})
		if err != nil {
			t.Fatal(err)
		}
		if poison {
			msg.Payload = []byte("not avro")
		}
		if err := pub.Publish("ic.domain.tenant", msg); err != nil {
			t.Fatal(err)
		}
	}
	publish(1, false)
	publish(2, true)
	publish(3, false)

	router, err := message.NewRouter(message.RouterConfig{}, logger())
	if err != nil {
		t.Fatal(err)
	}
	p := &recordingProjector{}
	if err := kafka.AddProjections(router, kafka.ProjectionsConfig{Brokers: b.Brokers(), Messages: dm, DLQ: pub, Logger: logger()}, p); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- router.Run(ctx) }()
	defer func() { cancel(); <-done }()

	dlq := kafkatest.ReadN(t, b.Brokers(), 1, 15*time.Second, "ic.domain.tenant.dlq")
	if string(dlq[0].Value) != "not avro" || !strings.Contains(dlq[0].Headers["reason_poisoned"], "malformed") {
		t.Fatalf("DLQ record = %q with headers %v", dlq[0].Value, dlq[0].Headers)
	}
	deadline := time.Now().Add(15 * time.Second)
	for p.count() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if p.count() != 2 || p.seen[0].Position != 1 || p.seen[1].Position != 3 {
		t.Fatalf("projector saw %d events (%+v); want positions 1 and 3", p.count(), p.seen)
	}
	if p.cps[1].Projection != "recorder" || p.cps[1].Topic != "ic.domain.tenant" || p.cps[1].Offset != 2 {
		t.Fatalf("checkpoint of the third record = %+v", p.cps[1])
	}
}
