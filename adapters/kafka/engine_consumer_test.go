package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
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

// recorder is a BatchHandler, IncentivePublisher, AfterPublishFunc and
// EngineObserver that remembers what it was given. fail, when set, decides
// whether a handler call fails.
type recorder struct {
	mu        sync.Mutex
	calls     int
	batches   [][]engine.ActionEvent
	published []engine.Incentive
	after     []engine.Incentive
	stats     []kafka.BatchStats
	fail      func(call int) bool
	// rewards maps an event to an incentive; nil issues none.
	rewards func(engine.ActionEvent) *engine.Incentive
}

func (r *recorder) Handle(_ context.Context, events []engine.ActionEvent) ([]engine.Incentive, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	r.batches = append(r.batches, events)
	if r.fail != nil && r.fail(r.calls) {
		return nil, fmt.Errorf("database down (call %d)", r.calls)
	}
	var out []engine.Incentive
	for _, e := range events {
		if r.rewards != nil {
			if inc := r.rewards(e); inc != nil {
				out = append(out, *inc)
			}
		}
	}
	return out, nil
}

func (r *recorder) PublishIncentives(_ context.Context, incentives []engine.Incentive) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.published = append(r.published, incentives...)
	return nil
}

func (r *recorder) afterPublish(_ context.Context, incentives []engine.Incentive) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.after = append(r.after, incentives...)
	return nil
}

func (r *recorder) BatchCommitted(s kafka.BatchStats) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats = append(r.stats, s)
}

// handled returns the ids of the events of the handler calls that succeeded
// (with fail unset, every call).
func (r *recorder) handled() []uuid.UUID {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []uuid.UUID
	for i, b := range r.batches {
		if r.fail != nil && r.fail(i+1) {
			continue
		}
		for _, e := range b {
			ids = append(ids, e.EventID)
		}
	}
	return ids
}

func (r *recorder) callCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

// engineTopics creates tenant-events, incentive-generated and their DLQs
// with 4 partitions, as serve does.
func engineTopics(t *testing.T, b *kafka.Embedded) {
	t.Helper()
	if err := kafka.EnsureTopics(context.Background(), b.Brokers(), []kafka.TopicSpec{
		{Name: kafka.TenantEventsTopic, Partitions: 4}, {Name: kafka.IncentiveGeneratedTopic, Partitions: 4},
	}); err != nil {
		t.Fatal(err)
	}
}

// startConsumer runs a consumer until the test ends or stop is called; stop
// waits for Run to return.
func startConsumer(t *testing.T, b *kafka.Embedded, r *recorder, mutate ...func(*kafka.EngineConsumerConfig)) (stop func()) {
	t.Helper()
	cfg := kafka.EngineConsumerConfig{
		Brokers: b.Brokers(), Registry: registry(t), Handler: r.Handle, Publisher: r, AfterPublish: r.afterPublish,
		Observer: r, Logger: slog.New(slog.DiscardHandler),
		RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond, HeartbeatInterval: 100 * time.Millisecond,
		StopTimeout: 2 * time.Second,
	}
	for _, m := range mutate {
		m(&cfg)
	}
	c, err := kafka.NewEngineConsumer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run = %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("Run did not return 10s after its context ended")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// produceEvents writes events to tenant-events, keyed by tenant.
func produceEvents(t *testing.T, b *kafka.Embedded, events ...engine.ActionEvent) {
	t.Helper()
	reg := registry(t)
	records := make([][2][]byte, len(events))
	for i, e := range events {
		v, err := kafka.EncodeActionEvent(reg, e)
		if err != nil {
			t.Fatal(err)
		}
		records[i] = [2][]byte{[]byte(e.TenantID.String()), v}
	}
	kafkatest.Produce(t, b.Brokers(), kafka.TenantEventsTopic, records...)
}

// someEvents returns n events spread over three tenants and many users.
func someEvents(n int) []engine.ActionEvent {
	tenants := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	events := make([]engine.ActionEvent, n)
	for i := range events {
		action := "LOGIN"
		if i%3 == 0 {
			action = "PURCHASE"
		}
		events[i] = actionEvent(tenants[i%3], "user-"+strconv.Itoa(i%7), action, fmt.Sprintf(`{"amount": %d.50}`, 100+i))
	}
	return events
}

func ids(events []engine.ActionEvent) []uuid.UUID {
	out := make([]uuid.UUID, len(events))
	for i, e := range events {
		out[i] = e.EventID
	}
	return out
}

// sameSet reports whether a and b hold the same ids, each once.
func sameSet(a, b []uuid.UUID) bool {
	sa, sb := slices.Clone(a), slices.Clone(b)
	cmp := func(x, y uuid.UUID) int { return slices.Compare(x[:], y[:]) }
	slices.SortFunc(sa, cmp)
	slices.SortFunc(sb, cmp)
	return slices.Equal(sa, sb)
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// purchaseReward issues an incentive for every PURCHASE, like a SIMPLE campaign.
func purchaseReward(campaign uuid.UUID) func(engine.ActionEvent) *engine.Incentive {
	return func(e engine.ActionEvent) *engine.Incentive {
		if e.ActionCode != "PURCHASE" {
			return nil
		}
		d := engine.DecisionID(campaign, e.UserID, e.EventID)
		return &engine.Incentive{ID: engine.IncentiveID(d), DecisionID: d, TenantID: e.TenantID, CampaignID: campaign,
			UserID: e.UserID, SourceEventID: e.EventID, IssuedAt: e.EventTs,
			Reward: engine.Reward{Type: rules.RewardCashback, Currency: "INR", Amount: decimal.RequireFromString("12.75")}}
	}
}

func TestEngineConsumerHandsOverBatchesPublishesThenCommits(t *testing.T) {
	t.Parallel()
	b := kafkatest.MustBroker(t)
	engineTopics(t, b)
	events := someEvents(60)
	produceEvents(t, b, events...)

	r := &recorder{rewards: purchaseReward(uuid.New())}
	pub, err := kafka.NewIncentivePublisher(kafka.IncentivePublisherConfig{Brokers: b.Brokers(), Registry: registry(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	stop := startConsumer(t, b, r, func(c *kafka.EngineConsumerConfig) { c.Publisher = pub; c.MaxPollRecords = 25 })
	eventually(t, "every event is handled", func() bool { return len(r.handled()) >= len(events) })
	stop()

	if got := r.handled(); !sameSet(got, ids(events)) {
		t.Fatalf("handled %d events, want each of the %d once", len(got), len(events))
	}
	for _, batch := range r.batches {
		if len(batch) > 25 {
			t.Fatalf("a batch of %d events, MaxPollRecords is 25", len(batch))
		}
	}
	wantIncentives := 20 // every third event is a PURCHASE
	records := kafkatest.ReadN(t, b.Brokers(), wantIncentives, 10*time.Second, kafka.IncentiveGeneratedTopic)
	reg := registry(t)
	for _, rec := range records {
		inc, err := kafka.DecodeIncentiveEvent(reg, rec.Value)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Key != inc.UserID || rec.Headers[kafka.HeaderIncentiveID] != inc.ID.String() {
			t.Fatalf("incentive %s keyed %q with headers %v", inc.ID, rec.Key, rec.Headers)
		}
	}
	if len(records) != wantIncentives || len(r.after) != wantIncentives {
		t.Fatalf("%d incentives published, %d marked after publishing; want %d", len(records), len(r.after), wantIncentives)
	}
	var committed, withIncentives int
	for _, s := range r.stats {
		committed += s.Records
		withIncentives += s.Incentives
		if s.Attempts != 1 || s.Total < s.Handle {
			t.Fatalf("batch stats %+v", s)
		}
	}
	if committed != len(events) || withIncentives != wantIncentives {
		t.Fatalf("observer saw %d records and %d incentives committed, want %d and %d", committed, withIncentives, len(events), wantIncentives)
	}

	// Everything was committed: the group's next member starts after it.
	later := someEvents(5)
	produceEvents(t, b, later...)
	r2 := &recorder{}
	startConsumer(t, b, r2)
	eventually(t, "the new events are handled", func() bool { return len(r2.handled()) >= len(later) })
	time.Sleep(200 * time.Millisecond) // room for a redelivery, which must not come
	if got := r2.handled(); !sameSet(got, ids(later)) {
		t.Fatalf("the next member handled %d events, want only the %d produced after the commit", len(got), len(later))
	}
}

func TestEngineConsumerRetriesAFailedBatchUntilTheHandlerSucceeds(t *testing.T) {
	t.Parallel()
	b := kafkatest.MustBroker(t)
	engineTopics(t, b)
	// One tenant: one partition, so the first poll holds every event.
	events := someEvents(1)
	for range 9 {
		events = append(events, actionEvent(events[0].TenantID, "user-x", "PURCHASE", `{}`))
	}
	produceEvents(t, b, events...)
	r := &recorder{fail: func(call int) bool { return call <= 2 }, rewards: purchaseReward(uuid.New())}
	startConsumer(t, b, r)
	eventually(t, "the third attempt succeeds", func() bool { return len(r.handled()) >= len(events) })
	eventually(t, "the batch is committed", func() bool { r.mu.Lock(); defer r.mu.Unlock(); return len(r.stats) == 1 })

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.calls != 3 {
		t.Fatalf("handler called %d times, want 3 (two failures, one success)", r.calls)
	}
	for i := 1; i < 3; i++ {
		if !slices.Equal(ids(r.batches[i]), ids(r.batches[0])) {
			t.Fatalf("attempt %d got another batch: the same batch must be retried", i+1)
		}
	}
	if s := r.stats[0]; s.Attempts != 3 || s.Records != len(events) || len(r.published) != len(events) {
		t.Fatalf("stats %+v, %d published; want 3 attempts and %d records published once", s, len(r.published), len(events))
	}
}

func TestEngineConsumerKilledBeforeTheHandlerSucceedsLeavesTheBatchUncommitted(t *testing.T) {
	t.Parallel()
	b := kafkatest.MustBroker(t)
	engineTopics(t, b)
	events := someEvents(30)
	produceEvents(t, b, events...)

	failing := &recorder{fail: func(int) bool { return true }}
	stop := startConsumer(t, b, failing)
	eventually(t, "the handler has failed and been retried", func() bool { return failing.callCount() >= 3 })
	stop() // the process dies with its batch undecided

	calls := failing.callCount()
	time.Sleep(100 * time.Millisecond)
	if failing.callCount() != calls {
		t.Fatal("the handler was retried after Run returned")
	}
	r := &recorder{}
	startConsumer(t, b, r)
	eventually(t, "the batch is delivered again", func() bool { return len(r.handled()) >= len(events) })
	if got := r.handled(); !sameSet(got, ids(events)) {
		t.Fatalf("the next member handled %d events, want the %d never committed", len(got), len(events))
	}
}

func TestEngineConsumerFinishesTheBatchInHandWhenStopped(t *testing.T) {
	t.Parallel()
	b := kafkatest.MustBroker(t)
	engineTopics(t, b)
	events := someEvents(1)
	produceEvents(t, b, events...)

	entered, release := make(chan struct{}), make(chan struct{})
	r := &recorder{}
	slow := func(ctx context.Context, evs []engine.ActionEvent) ([]engine.Incentive, error) {
		close(entered)
		<-release // the handler outlives the stop signal
		return r.Handle(ctx, evs)
	}
	stop := startConsumer(t, b, r, func(c *kafka.EngineConsumerConfig) { c.Handler = slow })
	<-entered
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	time.Sleep(50 * time.Millisecond)
	close(release)
	<-stopped
	if len(r.stats) != 1 {
		t.Fatalf("%d batches committed, want the one in hand", len(r.stats))
	}
	r2 := &recorder{}
	startConsumer(t, b, r2)
	produceEvents(t, b, someEvents(1)...)
	eventually(t, "the next member handles the new event", func() bool { return len(r2.handled()) >= 1 })
	time.Sleep(200 * time.Millisecond)
	if n := len(r2.handled()); n != 1 {
		t.Fatalf("the next member handled %d events, want only the new one", n)
	}
}

func TestEngineConsumerSendsPoisonToTheDLQAndGoesOn(t *testing.T) {
	t.Parallel()
	b := kafkatest.MustBroker(t)
	engineTopics(t, b)
	reg := registry(t)
	tenant := uuid.New()
	key := []byte(tenant.String())
	first := actionEvent(tenant, "alice", "LOGIN", `{"channel":"web"}`)
	last := actionEvent(tenant, "bob", "PURCHASE", `{"amount": 10}`)
	encode := func(e engine.ActionEvent) []byte {
		v, err := kafka.EncodeActionEvent(reg, e)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	wrongSchema, err := kafka.EncodeIncentiveEvent(reg, engine.Incentive{ID: uuid.New(), TenantID: tenant, UserID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	poison := [][2][]byte{
		{key, []byte("\x00\x01garbage")},
		{key, wrongSchema},
		{key, encode(actionEvent(tenant, "alice", "login", `{}`))},
		{key, encode(actionEvent(tenant, "alice", "LOGIN", `[1, 2]`))},
		{key, encode(actionEvent(uuid.New(), "alice", "LOGIN", `{}`))}, // another tenant's event under this key
	}
	// All under one key: one partition, in this order.
	records := append([][2][]byte{{key, encode(first)}}, poison...)
	records = append(records, [2][]byte{key, encode(last)})
	kafkatest.Produce(t, b.Brokers(), kafka.TenantEventsTopic, records...)

	r := &recorder{}
	startConsumer(t, b, r)
	eventually(t, "both valid events are handled", func() bool { return len(r.handled()) >= 2 })
	if got := r.handled(); !sameSet(got, []uuid.UUID{first.EventID, last.EventID}) {
		t.Fatalf("handled %v, want the two valid events", got)
	}
	dlq := kafkatest.ReadN(t, b.Brokers(), len(poison), 10*time.Second, kafka.DLQTopic(kafka.TenantEventsTopic))
	if len(dlq) != len(poison) {
		t.Fatalf("%d records in the DLQ, want %d", len(dlq), len(poison))
	}
	slices.SortFunc(dlq, func(a, b kafkatest.Record) int {
		x, _ := strconv.Atoi(a.Headers[kafka.HeaderOriginalOffset])
		y, _ := strconv.Atoi(b.Headers[kafka.HeaderOriginalOffset])
		return x - y
	})
	wantErr := []error{avro.ErrUndecodable, avro.ErrUndecodable, kafka.ErrInvalidActionEvent, kafka.ErrInvalidActionEvent, kafka.ErrInvalidActionEvent}
	for i, rec := range dlq {
		h := rec.Headers
		if rec.Key != string(poison[i][0]) || string(rec.Value) != string(poison[i][1]) {
			t.Errorf("DLQ record %d is not the poisoned record as it arrived", i)
		}
		if h[kafka.HeaderError] == "" || h["reason_poisoned"] != h[kafka.HeaderError] ||
			h[kafka.HeaderOriginalTopic] != kafka.TenantEventsTopic || h[kafka.HeaderConsumerGroup] != kafka.EngineGroup {
			t.Errorf("DLQ record %d headers %v", i, h)
		}
		if h[kafka.HeaderOriginalOffset] != strconv.Itoa(i+1) {
			t.Errorf("DLQ record %d came from offset %s, want %d", i, h[kafka.HeaderOriginalOffset], i+1)
		}
		// The reason says what the decoder said.
		_, err := kafka.DecodeActionEvent(reg, poison[i][0], poison[i][1])
		if !errors.Is(err, wantErr[i]) || h[kafka.HeaderError] != err.Error() {
			t.Errorf("DLQ record %d: error header %q, want %v", i, h[kafka.HeaderError], err)
		}
	}
	eventually(t, "the batch is committed", func() bool { r.mu.Lock(); defer r.mu.Unlock(); return len(r.stats) > 0 })
	r.mu.Lock()
	defer r.mu.Unlock()
	var invalid int
	for _, s := range r.stats {
		invalid += s.Invalid
	}
	if invalid != len(poison) {
		t.Fatalf("observer counted %d invalid records, want %d", invalid, len(poison))
	}
}

func TestTwoEngineConsumersInOneGroupShareThePartitions(t *testing.T) {
	t.Parallel()
	b := kafkatest.MustBroker(t)
	engineTopics(t, b)
	a, c := &recorder{}, &recorder{}
	small := func(cfg *kafka.EngineConsumerConfig) { cfg.MaxPollRecords = 10 }
	startConsumer(t, b, a, small)
	startConsumer(t, b, c, small)

	// Keep producing (many tenants: every partition) until both members
	// have work, so the test does not depend on how fast the group forms.
	var produced []uuid.UUID
	deadline := time.Now().Add(15 * time.Second)
	for len(a.handled()) == 0 || len(c.handled()) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("after %d events, members handled %d and %d: the partitions are not shared", len(produced), len(a.handled()), len(c.handled()))
		}
		batch := make([]engine.ActionEvent, 40)
		for i := range batch {
			batch[i] = actionEvent(uuid.New(), "u", "LOGIN", `{}`)
		}
		produceEvents(t, b, batch...)
		produced = append(produced, ids(batch)...)
		time.Sleep(50 * time.Millisecond)
	}
	eventually(t, "every event is handled", func() bool { return len(a.handled())+len(c.handled()) >= len(produced) })
	time.Sleep(200 * time.Millisecond) // room for a duplicate, which must not come
	both := append(a.handled(), c.handled()...)
	if !sameSet(both, produced) {
		t.Fatalf("members handled %d + %d events, want each of the %d by exactly one of them", len(a.handled()), len(c.handled()), len(produced))
	}
}

func TestIncentivePublisherWritesDecodableIncentivesKeyedByUser(t *testing.T) {
	t.Parallel()
	b := kafkatest.MustBroker(t)
	engineTopics(t, b)
	reg := registry(t)
	pub, err := kafka.NewIncentivePublisher(kafka.IncentivePublisherConfig{Brokers: b.Brokers(), Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	reward := purchaseReward(uuid.New())
	var want []engine.Incentive
	for i := range 30 {
		e := actionEvent(uuid.New(), "user-"+strconv.Itoa(i%4), "PURCHASE", `{}`)
		inc := reward(e)
		inc.DecisionID = uuid.Nil // not on the wire
		want = append(want, *inc)
	}
	if err := pub.PublishIncentives(context.Background(), want); err != nil {
		t.Fatal(err)
	}
	if err := pub.PublishIncentives(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	got := map[uuid.UUID]engine.Incentive{}
	for _, rec := range kafkatest.ReadN(t, b.Brokers(), len(want), 10*time.Second, kafka.IncentiveGeneratedTopic) {
		inc, err := kafka.DecodeIncentiveEvent(reg, rec.Value)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Key != inc.UserID || rec.Headers[kafka.HeaderContentType] != kafka.ContentTypeAvro {
			t.Fatalf("incentive keyed %q, headers %v", rec.Key, rec.Headers)
		}
		got[inc.ID] = inc
	}
	for _, w := range want {
		g := got[w.ID]
		if !g.Reward.Amount.Equal(w.Reward.Amount) || g.Reward.Amount.String() != "12.75" {
			t.Fatalf("amount %s, want %s", g.Reward.Amount, w.Reward.Amount)
		}
		g.Reward.Amount = w.Reward.Amount
		if g != w {
			t.Fatalf("decoded %+v\nwant    %+v", g, w)
		}
	}
	if _, err := kafka.NewIncentivePublisher(kafka.IncentivePublisherConfig{}); err == nil {
		t.Fatal("a publisher without brokers and registry was created")
	}
}

func TestEngineConsumerConfigReportsEveryProblem(t *testing.T) {
	_, err := kafka.NewEngineConsumer(kafka.EngineConsumerConfig{MaxPollRecords: -1})
	for _, want := range []string{"Brokers", "Registry", "Handler", "Publisher", "Logger", "MaxPollRecords"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %s", err, want)
		}
	}
}

func TestActionEventProducerAndRawConsume(t *testing.T) {
	t.Parallel()
	b := kafkatest.MustBroker(t)
	engineTopics(t, b)
	reg := registry(t)
	p, err := kafka.NewActionEventProducer(b.Brokers(), reg, "")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	events := someEvents(500)
	for _, e := range events {
		if err := p.Produce(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(ctx); err != nil || p.Acked() != int64(len(events)) {
		t.Fatalf("Flush = %v with %d acked, want %d", err, p.Acked(), len(events))
	}
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	took, err := kafka.MeasureRawConsume(tctx, b.Brokers(), kafka.TenantEventsTopic, int64(len(events)))
	if err != nil || took <= 0 {
		t.Fatalf("MeasureRawConsume = %v, %v", took, err)
	}
	for _, rec := range kafkatest.ReadN(t, b.Brokers(), 1, 10*time.Second, kafka.TenantEventsTopic)[:1] {
		if _, err := kafka.DecodeActionEvent(reg, []byte(rec.Key), rec.Value); err != nil {
			t.Fatal(err)
		}
	}
}
