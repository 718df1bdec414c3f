package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/incentives-platform/incentives/adapters/postgres"
	"github.com/incentives-platform/incentives/adapters/postgres/pgtest"
	enginecmd "github.com/incentives-platform/incentives/commands/engine"
	"github.com/incentives-platform/incentives/domain/engine"
	"github.com/incentives-platform/incentives/domain/incentive"
	"github.com/incentives-platform/incentives/domain/rules"
	"github.com/incentives-platform/incentives/projections"
)

type engineFixture struct {
	db     *postgres.DB
	events *postgres.EventStore
	store  *postgres.EngineStore
}

func newEngineFixture(t testing.TB) *engineFixture {
	t.Helper()
	db := pgtest.MustOpen(t)
	events := postgres.NewTestEventStore(t, db)
	return &engineFixture{db: db, events: events, store: postgres.NewEngineStore(db, events)}
}

func (f *engineFixture) begin(t testing.TB) enginecmd.BatchTx {
	t.Helper()
	tx, err := f.store.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	return tx
}

func (f *engineFixture) count(t testing.TB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := f.db.Pool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func mustCommit(t testing.TB, tx enginecmd.BatchTx) {
	t.Helper()
	if err := tx.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func newActionEvent(tenantID uuid.UUID, user, action string, ts time.Time) engine.ActionEvent {
	return engine.ActionEvent{EventID: uuid.New(), TenantID: tenantID, UserID: user, ActionCode: action, EventTs: ts,
		Payload: map[string]any{"amount": json.Number("120")}, RawPayload: []byte(`{"amount": 120}`)}
}

func ids(events []engine.ActionEvent) []uuid.UUID {
	out := make([]uuid.UUID, len(events))
	for i, e := range events {
		out[i] = e.EventID
	}
	return out
}

func TestLogEventsReturnsOnlyNewEventsInOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newEngineFixture(t)
	tenantID := uuid.New()
	ts := time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)
	a, b, c := newActionEvent(tenantID, "u1", "LOGIN", ts), newActionEvent(tenantID, "u2", "LOGIN", ts.Add(time.Second)), newActionEvent(tenantID, "u1", "PURCHASE", ts)

	tx := f.begin(t)
	got, err := tx.LogEvents(ctx, []engine.ActionEvent{c, a, b, a})
	if err != nil {
		t.Fatal(err)
	}
	if want := ids([]engine.ActionEvent{c, a, b}); !slices.Equal(ids(got), want) {
		t.Fatalf("first batch logged %v, want %v (input order, the repeated event once)", ids(got), want)
	}
	if !reflect.DeepEqual(got[0], c) {
		t.Errorf("LogEvents returned %+v, want the event as given %+v", got[0], c)
	}
	mustCommit(t, tx)

	d, e := newActionEvent(tenantID, "u3", "LOGIN", ts), newActionEvent(tenantID, "u3", "LOGIN", ts.AddDate(0, 0, 1))
	tx = f.begin(t)
	got, err = tx.LogEvents(ctx, []engine.ActionEvent{d, b, c, e})
	if err != nil {
		t.Fatal(err)
	}
	if want := ids([]engine.ActionEvent{d, e}); !slices.Equal(ids(got), want) {
		t.Fatalf("second batch logged %v, want only the new %v", ids(got), want)
	}
	mustCommit(t, tx)
	// A producer that re-sends an event with a new timestamp sends the same
	// event: it is not decided again.
	resent := a
	resent.EventTs = a.EventTs.Add(time.Millisecond)
	tx = f.begin(t)
	if got, err = tx.LogEvents(ctx, []engine.ActionEvent{resent}); err != nil || len(got) != 0 {
		t.Fatalf("an event re-sent with another eventTs was logged again: %v, %v", ids(got), err)
	}
	mustCommit(t, tx)
	if n := f.count(t, `SELECT count(*) FROM event`); n != 5 {
		t.Errorf("the log holds %d events, want 5", n)
	}
	var payload string
	if err := f.db.Pool.QueryRow(ctx, `SELECT payload::text FROM event WHERE event_id = $1`, a.EventID).Scan(&payload); err != nil || payload != `{"amount": 120}` {
		t.Errorf("logged payload %s (%v), want the raw payload", payload, err)
	}
}

// Events of a month no partition was prepared for get one before they are
// inserted, so the default partition stays empty.
func TestLogEventsMakesTheMonthsPartitions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newEngineFixture(t)
	tenantID := uuid.New()
	far := time.Date(2031, 5, 31, 23, 30, 0, 0, time.UTC)
	tx := f.begin(t)
	if _, err := tx.LogEvents(ctx, []engine.ActionEvent{newActionEvent(tenantID, "u1", "LOGIN", far),
		newActionEvent(tenantID, "u1", "LOGIN", time.Date(1999, 12, 1, 0, 0, 0, 0, time.UTC))}); err != nil {
		t.Fatal(err)
	}
	mustCommit(t, tx)
	for _, part := range []string{"event_203104", "event_203105", "event_203106", "event_199911", "event_199912", "event_200001"} {
		if f.count(t, `SELECT count(*) FROM pg_class WHERE relname = $1`, part) != 1 {
			t.Errorf("partition %s was not created", part)
		}
	}
	if n := f.count(t, `SELECT count(*) FROM event_default`); n != 0 {
		t.Errorf("the default partition holds %d events, want 0", n)
	}
	if n := f.count(t, `SELECT count(*) FROM event`); n != 2 {
		t.Errorf("the log holds %d events, want 2", n)
	}
}

// waitForLockWait waits until some session of the test database waits for a lock.
func waitForLockWait(t *testing.T, f *engineFixture) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for f.count(t, `SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE NOT l.granted AND a.datname = current_database()`) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no session waits for a lock after 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type logResult struct {
	events []engine.ActionEvent
	err    error
}

func TestLogEventsWaitsForAConcurrentBatchThenSkipsItsEvents(t *testing.T) {
	t.Parallel()
	for _, firstCommits := range []bool{true, false} {
		t.Run(fmt.Sprintf("first commits %v", firstCommits), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			f := newEngineFixture(t)
			tenantID := uuid.New()
			ts := time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)
			a, b, c := newActionEvent(tenantID, "u1", "LOGIN", ts), newActionEvent(tenantID, "u1", "LOGIN", ts), newActionEvent(tenantID, "u2", "LOGIN", ts)

			first := f.begin(t)
			if got, err := first.LogEvents(ctx, []engine.ActionEvent{a, b}); err != nil || len(got) != 2 {
				t.Fatalf("first batch: %v, %v", ids(got), err)
			}
			second := f.begin(t)
			done := make(chan logResult, 1)
			go func() {
				got, err := second.LogEvents(ctx, []engine.ActionEvent{b, c})
				done <- logResult{got, err}
			}()
			waitForLockWait(t, f)
			select {
			case r := <-done:
				t.Fatalf("the second batch did not wait for the first: %v, %v", ids(r.events), r.err)
			default:
			}
			if firstCommits {
				mustCommit(t, first)
			} else if err := first.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
			var r logResult
			select {
			case r = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("the second batch still waits 10s after the first ended")
			}
			if r.err != nil {
				t.Fatal(r.err)
			}
			want := []uuid.UUID{c.EventID}
			if !firstCommits {
				want = []uuid.UUID{b.EventID, c.EventID}
			}
			if !slices.Equal(ids(r.events), want) {
				t.Fatalf("the second batch logged %v, want %v", ids(r.events), want)
			}
			mustCommit(t, second)
		})
	}
}

// insertCampaign writes a campaign read-model row, as the campaigns
// projection would.
func insertCampaign(t testing.TB, db *postgres.DB, id, tenantID uuid.UUID, status, typ, rule string, version int64, cohortID *uuid.UUID) {
	t.Helper()
	now := time.Now().UTC()
	_, err := db.Pool.Exec(context.Background(), `
		INSERT INTO campaign (campaign_id, tenant_id, name, type, start_at, end_at, status, rule_json, cohort_id, created_at, updated_at, version)
		VALUES ($1, $2, 'c', $3, $4, NULL, $5, $6, $7, $8, $8, $9)
		ON CONFLICT (campaign_id) DO UPDATE SET status = excluded.status, rule_json = excluded.rule_json, version = excluded.version`,
		id, tenantID, typ, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), status, rule, cohortID, now, version)
	if err != nil {
		t.Fatal(err)
	}
}

const (
	simpleRule = `{"action":"PURCHASE","reward":{"type":"CASHBACK","currency":"INR","amount":"50"}}`
	questRule  = `{"steps":[{"action":"LOGIN","count":2},{"action":"PURCHASE","count":1}],"reward":{"type":"POINTS","currency":"POINTS","amount":"100"}}`
)

func TestQuestProgressLockAndSaveRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newEngineFixture(t)
	tenantID, campaignID := uuid.New(), uuid.New()
	insertCampaign(t, f.db, campaignID, tenantID, "ACTIVE", "QUEST", questRule, 1, nil)
	k1, k2 := enginecmd.ProgressKey{CampaignID: campaignID, UserID: "u1"}, enginecmd.ProgressKey{CampaignID: campaignID, UserID: "u2"}
	ws := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

	tx := f.begin(t)
	got, err := tx.LockProgress(ctx, []enginecmd.ProgressKey{k2, k1, k1})
	if err != nil || len(got) != 0 {
		t.Fatalf("LockProgress with no progress = %v, %v; want an empty map", got, err)
	}
	p1 := engine.QuestProgress{CampaignID: campaignID, UserID: "u1", Counts: []int{2, 0}, WindowStart: ws}
	if err := tx.SaveProgress(ctx, []enginecmd.StoredProgress{{QuestProgress: p1, Version: 1}}); err != nil {
		t.Fatal(err)
	}
	mustCommit(t, tx)

	tx = f.begin(t)
	got, err = tx.LockProgress(ctx, []enginecmd.ProgressKey{k1, k2})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[enginecmd.ProgressKey]enginecmd.StoredProgress{k1: {QuestProgress: p1, Version: 1}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("LockProgress = %+v, want %+v (u2's placeholder reads as no progress)", got, want)
	}
	p1.Counts, p1.Completed = []int{2, 1}, ws.Add(time.Hour)
	p2 := engine.QuestProgress{CampaignID: campaignID, UserID: "u2", Counts: []int{1, 0}, WindowStart: ws}
	stale := p2
	stale.Counts = []int{0, 0}
	if err := tx.SaveProgress(ctx, []enginecmd.StoredProgress{{QuestProgress: stale, Version: 1}, {QuestProgress: p1, Version: 2}, {QuestProgress: p2, Version: 2}}); err != nil {
		t.Fatal(err)
	}
	mustCommit(t, tx)

	tx = f.begin(t)
	got, err = tx.LockProgress(ctx, []enginecmd.ProgressKey{k1, k2})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[enginecmd.ProgressKey]enginecmd.StoredProgress{k1: {QuestProgress: p1, Version: 2}, k2: {QuestProgress: p2, Version: 2}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("LockProgress = %+v, want %+v (the last save of a key wins)", got, want)
	}
	var tenant uuid.UUID
	if err := f.db.Pool.QueryRow(ctx, `SELECT DISTINCT tenant_id FROM user_aggregation`).Scan(&tenant); err != nil || tenant != tenantID {
		t.Errorf("user_aggregation tenant = %v (%v), want the campaign's %v", tenant, err, tenantID)
	}
}

// Two batches wanting the progress of a key that has none yet take turns:
// the second reads what the first saved.
func TestLockProgressOfANewKeyWaitsForTheBatchHoldingIt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newEngineFixture(t)
	tenantID, campaignID := uuid.New(), uuid.New()
	insertCampaign(t, f.db, campaignID, tenantID, "ACTIVE", "QUEST", questRule, 1, nil)
	k := enginecmd.ProgressKey{CampaignID: campaignID, UserID: "u1"}

	first := f.begin(t)
	if got, err := first.LockProgress(ctx, []enginecmd.ProgressKey{k}); err != nil || len(got) != 0 {
		t.Fatalf("first LockProgress = %v, %v", got, err)
	}
	second := f.begin(t)
	type result struct {
		progress map[enginecmd.ProgressKey]enginecmd.StoredProgress
		err      error
	}
	done := make(chan result, 1)
	go func() {
		got, err := second.LockProgress(ctx, []enginecmd.ProgressKey{k})
		done <- result{got, err}
	}()
	waitForLockWait(t, f)
	saved := engine.QuestProgress{CampaignID: campaignID, UserID: "u1", Counts: []int{1, 0}, WindowStart: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	if err := first.SaveProgress(ctx, []enginecmd.StoredProgress{{QuestProgress: saved, Version: 1}}); err != nil {
		t.Fatal(err)
	}
	mustCommit(t, first)
	r := <-done
	if r.err != nil || !reflect.DeepEqual(r.progress, map[enginecmd.ProgressKey]enginecmd.StoredProgress{k: {QuestProgress: saved, Version: 1}}) {
		t.Fatalf("second LockProgress = %+v, %v; want the first batch's %+v", r.progress, r.err, saved)
	}
	mustCommit(t, second)
}

func TestMembersAnswersInOneQuery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newEngineFixture(t)
	g1, g2 := uuid.New(), uuid.New()
	sets := postgres.NewMemberSets(f.db)
	if _, err := sets.Add(ctx, g1, []string{"alice", "bob"}); err != nil {
		t.Fatal(err)
	}
	if _, err := sets.Add(ctx, g2, []string{"carol"}); err != nil {
		t.Fatal(err)
	}
	tx := f.begin(t)
	keys := []enginecmd.MemberKey{{Generation: g1, UserID: "alice"}, {Generation: g1, UserID: "carol"}, {Generation: g2, UserID: "carol"}, {Generation: g2, UserID: "bob"}}
	got, err := tx.Members(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[enginecmd.MemberKey]bool{keys[0]: true, keys[2]: true}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Members = %v, want %v", got, want)
	}
}

// recordFixture is one batch's decisions: a SIMPLE reward, the same
// refused by a limit, a condition that did not hold, and a quest completion.
type recordFixture struct {
	tenantID, simple, quest uuid.UUID
	decisions               []enginecmd.RecordedDecision
	incentives              []engine.Incentive
	completion              engine.QuestProgress
}

func newRecordFixture(t *testing.T, f *engineFixture) recordFixture {
	t.Helper()
	r := recordFixture{tenantID: uuid.New(), simple: uuid.New(), quest: uuid.New()}
	insertCampaign(t, f.db, r.simple, r.tenantID, "ACTIVE", "SIMPLE", simpleRule, 3, nil)
	insertCampaign(t, f.db, r.quest, r.tenantID, "ACTIVE", "QUEST", questRule, 1, nil)
	at := time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)
	decide := func(campaignID uuid.UUID, version int64, user string, outcome engine.Outcome, reward *engine.Reward, at time.Time) engine.Decision {
		ev := uuid.New()
		return engine.Decision{ID: engine.DecisionID(campaignID, user, ev), TenantID: r.tenantID, UserID: user, CampaignID: campaignID,
			CampaignVer: version, SourceEventID: ev, Outcome: outcome, Reward: reward, DecidedAt: at,
			Inputs: map[string]any{"payload": map[string]any{"amount": json.Number("120.50")}, "countsAfter": []int{2, 1}}}
	}
	cash := &engine.Reward{Type: rules.RewardCashback, Currency: "INR", Amount: decimal.RequireFromString("12.75")}
	points := &engine.Reward{Type: rules.RewardPoints, Currency: "POINTS", Amount: decimal.NewFromInt(100)}
	issued := decide(r.simple, 3, "u1", engine.OutcomeIssued, cash, at)
	limited := decide(r.simple, 3, "u1", engine.OutcomeLimited, cash, at.Add(time.Second))
	limited.Reason = "USER DAY limit of 1 reached"
	falsy := decide(r.simple, 3, "u2", engine.OutcomeConditionFalse, nil, at)
	falsy.Inputs = nil
	quest := decide(r.quest, 1, "u1", engine.OutcomeIssued, points, at.Add(2*time.Second))
	granted := &enginecmd.LimitAnswer{Granted: true, Counters: []enginecmd.LimitCounter{{Scope: "USER", Kind: "DAY", Cap: 1, Seen: 0}}}
	refusedBy := enginecmd.LimitCounter{Scope: "USER", Kind: "DAY", Cap: 1, Seen: 1}
	refused := &enginecmd.LimitAnswer{RefusedBy: &refusedBy, Counters: []enginecmd.LimitCounter{refusedBy}}
	r.decisions = []enginecmd.RecordedDecision{{Decision: issued, Limits: granted}, {Decision: limited, Limits: refused},
		{Decision: falsy}, {Decision: quest, Limits: granted}}
	r.incentives = []engine.Incentive{engine.NewIncentive(issued), engine.NewIncentive(quest)}
	r.completion = engine.QuestProgress{CampaignID: r.quest, UserID: "u1", Counts: []int{2, 1}, WindowStart: at, Completed: quest.DecidedAt}
	return r
}

func (r recordFixture) record(t *testing.T, tx enginecmd.BatchTx) {
	t.Helper()
	ctx := context.Background()
	if _, err := tx.LockProgress(ctx, []enginecmd.ProgressKey{{CampaignID: r.quest, UserID: "u1"}}); err != nil {
		t.Fatal(err)
	}
	if err := tx.SaveProgress(ctx, []enginecmd.StoredProgress{{QuestProgress: r.completion, Version: 1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Record(ctx, r.decisions, r.incentives); err != nil {
		t.Fatal(err)
	}
}

func (f *engineFixture) tableCounts(t *testing.T) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, table := range []string{"decision", "incentive", "incentive_unpublished", "event_store", "watermill_outbox"} {
		out[table] = f.count(t, `SELECT count(*) FROM `+table)
	}
	return out
}

func TestRecordWritesEverythingInTheBatchTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newEngineFixture(t)
	r := newRecordFixture(t, f)

	tx := f.begin(t)
	r.record(t, tx)
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.tableCounts(t); !reflect.DeepEqual(got, map[string]int{"decision": 0, "incentive": 0, "incentive_unpublished": 0, "event_store": 0, "watermill_outbox": 0}) {
		t.Fatalf("after a rollback: %v, want nothing anywhere", got)
	}

	tx = f.begin(t)
	r.record(t, tx)
	mustCommit(t, tx)
	want := map[string]int{"decision": 4, "incentive": 2, "incentive_unpublished": 2, "event_store": 2, "watermill_outbox": 2}
	if got := f.tableCounts(t); !reflect.DeepEqual(got, want) {
		t.Fatalf("after a commit: %v, want %v", got, want)
	}

	// The stored decisions read back as recorded.
	got, err := postgres.NewDecisions(f.db).UserDecisions(ctx, r.tenantID, "u1", uuid.Nil, "", projections.TenantKey{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	wantU1 := []enginecmd.RecordedDecision{r.decisions[3], r.decisions[1], r.decisions[0]}
	if diff := compareDecisions(got, wantU1); diff != "" {
		t.Fatal(diff)
	}
	var incentiveOfDecision uuid.UUID
	if err := f.db.Pool.QueryRow(ctx, `SELECT incentive_id FROM decision WHERE decision_id = $1`, r.decisions[0].ID).Scan(&incentiveOfDecision); err != nil ||
		incentiveOfDecision != r.incentives[0].ID {
		t.Errorf("decision's incentive_id = %v (%v), want %v", incentiveOfDecision, err, r.incentives[0].ID)
	}

	// Each incentive: its row, its stream with one IncentiveIssued event, its outbox message.
	for _, inc := range r.incentives {
		var (
			decisionID uuid.UUID
			version    int64
			amount     string
		)
		if err := f.db.Pool.QueryRow(ctx, `SELECT decision_id, campaign_version, reward_amount::text FROM incentive WHERE incentive_id = $1`, inc.ID).
			Scan(&decisionID, &version, &amount); err != nil {
			t.Fatal(err)
		}
		if decisionID != inc.DecisionID || version != inc.CampaignVersion || !decimal.RequireFromString(amount).Equal(inc.Reward.Amount) {
			t.Errorf("incentive row %s: decision %s, version %d, amount %s; want %+v", inc.ID, decisionID, version, amount, inc)
		}
		events, v, err := f.events.Load(ctx, incentive.Stream(inc.ID))
		if err != nil || v != 1 || len(events) != 1 {
			t.Fatalf("stream %s: %d events at version %d (%v), want one", incentive.Stream(inc.ID), len(events), v, err)
		}
		issued, ok := events[0].(incentive.Issued)
		if !ok || issued.IncentiveID != inc.ID || issued.CampaignVersion != inc.CampaignVersion || !issued.RewardAmount.Equal(inc.Reward.Amount) {
			t.Errorf("stream %s holds %+v", incentive.Stream(inc.ID), events[0])
		}
	}
	outbox := outboxRows(t, f.db)
	for i, e := range outbox {
		if e.DestinationTopic != "ic.domain.incentive" || e.Metadata["event-type"] != incentive.IssuedType ||
			e.Metadata["tenant-id"] != r.tenantID.String() || e.Metadata["actor"] != "system:engine" ||
			e.Metadata["causation-id"] != r.incentives[i].DecisionID.String() && e.Metadata["causation-id"] != r.incentives[1-i].DecisionID.String() {
			t.Errorf("outbox row %d = %+v", i, e)
		}
	}
	var linked uuid.UUID
	if err := f.db.Pool.QueryRow(ctx, `SELECT incentive_id FROM user_aggregation WHERE campaign_id = $1 AND user_id = 'u1'`, r.quest).Scan(&linked); err != nil ||
		linked != r.incentives[1].ID {
		t.Errorf("the completed quest links incentive %v (%v), want %v", linked, err, r.incentives[1].ID)
	}

	// Recording the same decisions again (their events logged under another
	// event_ts, say) keeps the first copy and issues nothing twice.
	tx = f.begin(t)
	if _, err := tx.Record(ctx, r.decisions, r.incentives); err != nil {
		t.Fatalf("Record of decisions already recorded: %v", err)
	}
	mustCommit(t, tx)
	if got := f.tableCounts(t); !reflect.DeepEqual(got, want) {
		t.Fatalf("after recording again: %v, want still %v", got, want)
	}
}

// compareDecisions reports how got differs from want, with inputs compared
// as JSON (they are stored as jsonb and read back with json.Number).
func compareDecisions(got, want []enginecmd.RecordedDecision) string {
	norm := func(ds []enginecmd.RecordedDecision) []string {
		out := make([]string, len(ds))
		for i, d := range ds {
			inputs, _ := json.Marshal(d.Inputs)
			if len(d.Inputs) == 0 {
				inputs = []byte("{}")
			}
			d.Inputs = nil
			reward := "<nil>"
			if d.Reward != nil {
				reward = fmt.Sprintf("%s %s %s", d.Reward.Type, d.Reward.Currency, d.Reward.Amount.StringFixed(4))
				d.Reward = nil
			}
			limits := "<nil>"
			if d.Limits != nil {
				b, _ := json.Marshal(d.Limits)
				limits = string(b)
				d.Limits = nil
			}
			d.DecidedAt = d.DecidedAt.UTC()
			out[i] = fmt.Sprintf("%+v reward=%s inputs=%s limits=%s", d, reward, inputs, limits)
		}
		return out
	}
	g, w := norm(got), norm(want)
	if !slices.Equal(g, w) {
		return fmt.Sprintf("decisions read back:\n%v\nwant:\n%v", g, w)
	}
	return ""
}

func TestPublishLogQueuesIssuedIncentivesUntilMarked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newEngineFixture(t)
	r := newRecordFixture(t, f)
	tx := f.begin(t)
	r.record(t, tx)
	mustCommit(t, tx)
	log := postgres.NewPublishLog(f.db)

	if got, err := log.Unpublished(ctx, time.Now().Add(-time.Hour), 10); err != nil || len(got) != 0 {
		t.Fatalf("Unpublished before any is an hour old = %v, %v; want none", got, err)
	}
	got, err := log.Unpublished(ctx, time.Now().Add(time.Minute), 10)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[uuid.UUID]engine.Incentive{}
	for _, inc := range got {
		byID[inc.ID] = inc
	}
	if len(got) != 2 {
		t.Fatalf("Unpublished = %d incentives, want 2", len(got))
	}
	for _, want := range r.incentives {
		inc := byID[want.ID]
		if !inc.Reward.Amount.Equal(want.Reward.Amount) {
			t.Errorf("unpublished amount %s, want %s", inc.Reward.Amount, want.Reward.Amount)
		}
		inc.Reward.Amount, want.Reward.Amount = decimal.Zero, decimal.Zero
		if !reflect.DeepEqual(inc, want) {
			t.Errorf("unpublished %+v\nwant %+v", inc, want)
		}
	}

	at := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	if err := log.MarkPublished(ctx, []uuid.UUID{r.incentives[0].ID}, at); err != nil {
		t.Fatal(err)
	}
	if got, err := log.Unpublished(ctx, time.Now().Add(time.Minute), 10); err != nil || len(got) != 1 || got[0].ID != r.incentives[1].ID {
		t.Fatalf("Unpublished after marking one = %v, %v; want the other", got, err)
	}
	if err := log.MarkPublished(ctx, []uuid.UUID{r.incentives[0].ID, r.incentives[1].ID}, at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, err := log.Unpublished(ctx, time.Now().Add(time.Minute), 10); err != nil || len(got) != 0 {
		t.Fatalf("Unpublished after marking both = %v, %v; want none", got, err)
	}
	var (
		user        string
		publishedAt time.Time
	)
	if err := f.db.Pool.QueryRow(ctx, `SELECT user_id, published_at FROM incentive_event_log WHERE incentive_id = $1`, r.incentives[0].ID).
		Scan(&user, &publishedAt); err != nil || user != "u1" || !publishedAt.Equal(at) {
		t.Errorf("log row: %s %v (%v), want u1 published at %v (marking again keeps the first)", user, publishedAt, err, at)
	}
}

// A hot quest's row is read, not locked, and gets no placeholder: while
// another batch holds the row, the read answers at once, and a key without
// a row stays without one.
func TestReadProgressNeitherLocksNorInserts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newEngineFixture(t)
	tenantID, campaignID := uuid.New(), uuid.New()
	insertCampaign(t, f.db, campaignID, tenantID, "ACTIVE", "QUEST", questRule, 1, nil)
	held, absent := enginecmd.ProgressKey{CampaignID: campaignID, UserID: "u1"}, enginecmd.ProgressKey{CampaignID: campaignID, UserID: "u2"}
	saved := enginecmd.StoredProgress{QuestProgress: engine.QuestProgress{CampaignID: campaignID, UserID: "u1", Counts: []int{1, 0},
		WindowStart: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}, Version: 7}
	tx := f.begin(t)
	if err := tx.SaveProgress(ctx, []enginecmd.StoredProgress{saved}); err != nil {
		t.Fatal(err)
	}
	mustCommit(t, tx)

	holder := f.begin(t)
	if _, err := holder.LockProgress(ctx, []enginecmd.ProgressKey{held}); err != nil {
		t.Fatal(err)
	}
	reader := f.begin(t)
	readCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	got, err := reader.ReadProgress(readCtx, []enginecmd.ProgressKey{held, absent})
	if err != nil {
		t.Fatalf("ReadProgress while another batch holds the row: %v", err)
	}
	if want := map[enginecmd.ProgressKey]enginecmd.StoredProgress{held: saved}; !reflect.DeepEqual(got, want) {
		t.Fatalf("ReadProgress = %+v, want %+v", got, want)
	}
	mustCommit(t, reader)
	mustCommit(t, holder)
	if n := f.count(t, `SELECT count(*) FROM user_aggregation WHERE user_id = 'u2'`); n != 0 {
		t.Fatalf("ReadProgress left %d rows for a key without progress", n)
	}
}

// DecisionsRecorded tells a committed batch's decisions from a rolled-back
// one's: what resolves a pending hot-progress write.
func TestDecisionsRecordedSeesOnlyCommittedDecisions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newEngineFixture(t)
	r := newRecordFixture(t, f)
	rolledBack := newRecordFixture(t, f)

	tx := f.begin(t)
	r.record(t, tx)
	mustCommit(t, tx)
	tx = f.begin(t)
	rolledBack.record(t, tx)
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	tx = f.begin(t)
	defer func() { _ = tx.Rollback(ctx) }()
	ids := []uuid.UUID{r.decisions[0].ID, rolledBack.decisions[0].ID, r.decisions[3].ID, uuid.New()}
	got, err := tx.DecisionsRecorded(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[uuid.UUID]bool{r.decisions[0].ID: true, r.decisions[3].ID: true}; !reflect.DeepEqual(got, want) {
		t.Fatalf("DecisionsRecorded = %v, want %v", got, want)
	}
}
