package kafka_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/incentives-platform/incentives/adapters/avro"
	"github.com/incentives-platform/incentives/adapters/kafka"
	"github.com/incentives-platform/incentives/adapters/kafka/kafkatest"
	"github.com/incentives-platform/incentives/domain/engine"
	"github.com/incentives-platform/incentives/domain/rules"
)

// sink remembers the incentives delivered to it.
type sink struct {
	mu  sync.Mutex
	got []engine.Incentive
}

func (s *sink) Deliver(inc engine.Incentive) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, inc)
}

func (s *sink) delivered() []engine.Incentive {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]engine.Incentive(nil), s.got...)
}

// Two instances, each in its own group, both get every incentive published
// after they are ready and none from before; garbage goes to the DLQ and
// the partition goes on.
func TestDCMConsumersEachGetEveryNewIncentive(t *testing.T) {
	t.Parallel()
	b := kafkatest.MustBroker(t)
	reg, _, err := avro.LoadPlatform()
	if err != nil {
		t.Fatal(err)
	}
	if err := kafka.EnsureTopics(context.Background(), b.Brokers(), []kafka.TopicSpec{{Name: kafka.IncentiveGeneratedTopic, Partitions: 2}}); err != nil {
		t.Fatal(err)
	}
	dlq, err := kafka.NewPublisher(b.Brokers(), logger())
	if err != nil {
		t.Fatal(err)
	}
	defer dlq.Close()
	publisher, err := kafka.NewIncentivePublisher(kafka.IncentivePublisherConfig{Brokers: b.Brokers(), Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer publisher.Close()
	newIncentive := func(user string) engine.Incentive {
		return engine.Incentive{ID: uuid.New(), TenantID: uuid.New(), CampaignID: uuid.New(), UserID: user, SourceEventID: uuid.New(),
			Reward:   engine.Reward{Type: rules.RewardPoints, Currency: "POINTS", Amount: decimal.RequireFromString("50")},
			IssuedAt: time.Now().UTC().Truncate(time.Millisecond)}
	}
	before := newIncentive("early")
	if err := publisher.PublishIncentives(context.Background(), []engine.Incentive{before}); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var sinks []*sink
	var wg sync.WaitGroup
	for _, instance := range []string{"a", "b"} {
		s := &sink{}
		c, err := kafka.NewDCMConsumer(kafka.DCMConsumerConfig{Brokers: b.Brokers(), Registry: reg, Group: kafka.DCMGroup(instance),
			Sink: s, DLQ: dlq, Logger: logger()})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Run(ctx); err != nil {
				t.Errorf("Run: %v", err)
			}
		}()
		select {
		case <-c.Ready():
		case <-time.After(20 * time.Second):
			t.Fatal("consumer not ready in 20s")
		}
		sinks = append(sinks, s)
	}
	defer func() { cancel(); wg.Wait() }()

	want := []engine.Incentive{newIncentive("u1"), newIncentive("u2"), newIncentive("u1")}
	if err := publisher.PublishIncentives(context.Background(), want[:2]); err != nil {
		t.Fatal(err)
	}
	kafkatest.Produce(t, b.Brokers(), kafka.IncentiveGeneratedTopic, [2][]byte{[]byte("u1"), []byte("not avro")})
	if err := publisher.PublishIncentives(context.Background(), want[2:]); err != nil {
		t.Fatal(err)
	}

	recs := kafkatest.ReadN(t, b.Brokers(), 2, 15*time.Second, kafka.DLQTopic(kafka.IncentiveGeneratedTopic))
	for _, r := range recs {
		if string(r.Value) != "not avro" || !strings.Contains(r.Headers["reason_poisoned"], "malformed") {
			t.Fatalf("DLQ record = %q with headers %v", r.Value, r.Headers)
		}
	}
	for i, s := range sinks {
		deadline := time.Now().Add(15 * time.Second)
		for len(s.delivered()) < len(want) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		got := map[uuid.UUID]engine.Incentive{}
		for _, inc := range s.delivered() {
			got[inc.ID] = inc
		}
		if len(s.delivered()) != len(want) || len(got) != len(want) {
			t.Fatalf("instance %d got %d incentives, want %d", i, len(s.delivered()), len(want))
		}
		for _, w := range want {
			g, ok := got[w.ID]
			if !ok || g.UserID != w.UserID || g.TenantID != w.TenantID || !g.Reward.Amount.Equal(w.Reward.Amount) || !g.IssuedAt.Equal(w.IssuedAt) {
				t.Fatalf("instance %d: incentive %s = %+v, want %+v", i, w.ID, g, w)
			}
		}
		if _, ok := got[before.ID]; ok {
			t.Fatalf("instance %d got the incentive published before it started", i)
		}
	}
}

func TestDCMConsumerConfigReportsEveryMissingField(t *testing.T) {
	t.Parallel()
	_, err := kafka.NewDCMConsumer(kafka.DCMConsumerConfig{})
	for _, field := range []string{"Brokers", "Registry", "Group", "Sink", "DLQ", "Logger"} {
		if err == nil || !strings.Contains(err.Error(), field+" is required") {
			t.Errorf("NewDCMConsumer({}) = %v, want it to name %s", err, field)
		}
	}
}
