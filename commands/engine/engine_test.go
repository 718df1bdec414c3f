package engine_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	engineapp "github.com/incentives-platform/incentives/commands/engine"
	"github.com/incentives-platform/incentives/domain/campaign"
	"github.com/incentives-platform/incentives/domain/engine"
	"github.com/incentives-platform/incentives/domain/limits"
	"github.com/incentives-platform/incentives/domain/rules"
	"github.com/incentives-platform/incentives/domain/tenant"
)

// fakeStore keeps one batch's writes in memory; what a committed batch
// logged stays logged, as in the action-event log.
type fakeStore struct {
	logged     map[uuid.UUID]bool
	progress   map[engineapp.ProgressKey]engineapp.StoredProgress
	decisions  []engineapp.RecordedDecision
	incentives []engine.Incentive
	members    map[engineapp.MemberKey]bool
}

func (s *fakeStore) Begin(context.Context) (engineapp.BatchTx, error) {
	return &fakeTx{s: s, logged: map[uuid.UUID]bool{}}, nil
}

type fakeTx struct {
	s          *fakeStore
	logged     map[uuid.UUID]bool
	progress   []engineapp.StoredProgress
	decisions  []engineapp.RecordedDecision
	incentives []engine.Incentive
}

func (t *fakeTx) LogEvents(_ context.Context, events []engine.ActionEvent) ([]engine.ActionEvent, error) {
	var fresh []engine.ActionEvent
	for _, e := range events {
		if !t.s.logged[e.EventID] && !t.logged[e.EventID] {
			t.logged[e.EventID] = true
			fresh = append(fresh, e)
		}
	}
	return fresh, nil
}

func (t *fakeTx) Members(_ context.Context, keys []engineapp.MemberKey) (map[engineapp.MemberKey]bool, error) {
	out := map[engineapp.MemberKey]bool{}
	for _, k := range keys {
		out[k] = t.s.members[k]
	}
	return out, nil
}

func (t *fakeTx) LockProgress(_ context.Context, keys []engineapp.ProgressKey) (map[engineapp.ProgressKey]engineapp.StoredProgress, error) {
	out := map[engineapp.ProgressKey]engineapp.StoredProgress{}
	for _, k := range keys {
		if p, ok := t.s.progress[k]; ok {
			out[k] = p
		}
	}
	return out, nil
}

func (t *fakeTx) ReadProgress(ctx context.Context, keys []engineapp.ProgressKey) (map[engineapp.ProgressKey]engineapp.StoredProgress, error) {
	return t.LockProgress(ctx, keys)
}

func (t *fakeTx) DecisionsRecorded(_ context.Context, ids []uuid.UUID) (map[uuid.UUID]bool, error) {
	out := map[uuid.UUID]bool{}
	for _, d := range t.s.decisions {
		if slices.Contains(ids, d.ID) {
			out[d.ID] = true
		}
	}
	return out, nil
}

func (t *fakeTx) SaveProgress(_ context.Context, p []engineapp.StoredProgress) error {
	t.progress = append(t.progress, p...)
	return nil
}

func (t *fakeTx) Record(_ context.Context, d []engineapp.RecordedDecision, in []engine.Incentive) ([]engine.Incentive, error) {
	t.decisions, t.incentives = append(t.decisions, d...), append(t.incentives, in...)
	return in, nil
}

func (t *fakeTx) Commit(context.Context) error {
	for id := range t.logged {
		t.s.logged[id] = true
	}
	for _, p := range t.progress {
		t.s.progress[engineapp.ProgressKey{CampaignID: p.CampaignID, UserID: p.UserID}] = p
	}
	t.s.decisions = append(t.s.decisions, t.decisions...)
	t.s.incentives = append(t.s.incentives, t.incentives...)
	return nil
}

func (t *fakeTx) Rollback(context.Context) error { return nil }

// fakeLimiter grants each user up to perUser rewards, once per decision id.
type fakeLimiter struct {
	perUser int
	granted map[string]int
	answers map[uuid.UUID]engineapp.LimitAnswer
}

func (l *fakeLimiter) CheckAndIncr(_ context.Context, reqs []engineapp.LimitRequest) ([]engineapp.LimitAnswer, error) {
	out := make([]engineapp.LimitAnswer, len(reqs))
	for i, r := range reqs {
		if a, ok := l.answers[r.DecisionID]; ok {
			out[i] = a
			continue
		}
		a := engineapp.LimitAnswer{Granted: l.granted[r.UserID] < l.perUser}
		if a.Granted {
			l.granted[r.UserID]++
		} else {
			a.RefusedBy = &engineapp.LimitCounter{Scope: "USER", Kind: "DAY", Cap: int64(l.perUser), Seen: int64(l.perUser)}
		}
		l.answers[r.DecisionID], out[i] = a, a
	}
	return out, nil
}

type staticSource struct{ snap engineapp.Snapshot }

func (s staticSource) LoadSnapshot(context.Context) (engineapp.Snapshot, error) { return s.snap, nil }

var (
	tenantID = uuid.MustParse("7e4a0000-0000-4000-8000-000000000002")
	t0       = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
)

func mustRule(t *testing.T, kind rules.Kind, doc string) rules.Rule {
	t.Helper()
	r, err := rules.Parse(kind, []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func event(user, code string, at time.Duration) engine.ActionEvent {
	return engine.ActionEvent{EventID: uuid.New(), TenantID: tenantID, UserID: user, ActionCode: code, EventTs: t0.Add(at), Payload: map[string]any{}}
}

func newEngine(t *testing.T, status tenant.Status, perUser int, campaigns ...engine.Campaign) (*engineapp.Engine, *fakeStore) {
	t.Helper()
	store := &fakeStore{logged: map[uuid.UUID]bool{}, progress: map[engineapp.ProgressKey]engineapp.StoredProgress{}, members: map[engineapp.MemberKey]bool{}}
	catalog := engineapp.NewCatalog(staticSource{engineapp.Snapshot{Campaigns: campaigns,
		Tenants: map[uuid.UUID]engineapp.TenantState{tenantID: {Status: status, Tenant: limits.Caps{}, User: limits.Caps{}}}}},
		time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := catalog.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	return engineapp.New(store, catalog, &fakeLimiter{perUser: perUser, granted: map[string]int{}, answers: map[uuid.UUID]engineapp.LimitAnswer{}}), store
}

func TestProcessDecidesOnceAndRetriesARefusedQuestCompletion(t *testing.T) {
	login := engine.Campaign{ID: uuid.New(), TenantID: tenantID, Version: 2, Status: campaign.StatusActive,
		Rule: mustRule(t, rules.Simple, `{"action":"LOGIN","reward":{"type":"POINTS","currency":"POINTS","amount":"1"}}`)}
	quest := engine.Campaign{ID: uuid.New(), TenantID: tenantID, Version: 1, Status: campaign.StatusActive,
		Rule: mustRule(t, rules.Quest, `{"steps":[{"action":"LOGIN","count":2}],"reward":{"type":"POINTS","currency":"POINTS","amount":"50"}}`)}
	e, store := newEngine(t, tenant.StatusActive, 2, login, quest)
	ctx := context.Background()

	// Two logins: two SIMPLE rewards (the user's cap), and the quest's
	// completion refused by the same cap.
	batch := []engine.ActionEvent{event("u1", "LOGIN", 0), event("u1", "LOGIN", time.Minute)}
	issued, err := e.Process(ctx, batch)
	if err != nil || len(issued) != 2 {
		t.Fatalf("first batch issued %d (%v), want the two login rewards", len(issued), err)
	}
	var limited int
	for _, d := range store.decisions {
		if d.Outcome == engine.OutcomeLimited {
			limited++
			if d.CampaignID != quest.ID || d.Limits == nil || d.Reason == "" {
				t.Fatalf("limited decision %+v", d)
			}
		}
	}
	if limited != 1 {
		t.Fatalf("%d limited decisions, want the quest's completion", limited)
	}
	if p := store.progress[engineapp.ProgressKey{CampaignID: quest.ID, UserID: "u1"}]; !p.Completed.IsZero() || p.Counts[0] != 2 {
		t.Fatalf("quest progress after a refused completion: %+v", p)
	}

	// The same batch again: nothing new.
	if again, err := e.Process(ctx, batch); err != nil || len(again) != 0 || len(store.decisions) != 4 {
		t.Fatalf("redelivered batch issued %d and recorded %d decisions in all (%v)", len(again), len(store.decisions), err)
	}
}

func TestProcessPaysNothingForASuspendedTenant(t *testing.T) {
	login := engine.Campaign{ID: uuid.New(), TenantID: tenantID, Version: 1, Status: campaign.StatusActive,
		Rule: mustRule(t, rules.Simple, `{"action":"LOGIN","reward":{"type":"POINTS","currency":"POINTS","amount":"1"}}`)}
	e, store := newEngine(t, tenant.StatusSuspended, 10, login)
	issued, err := e.Process(context.Background(), []engine.ActionEvent{event("u1", "LOGIN", 0), event("u1", "PURCHASE", 0)})
	if err != nil || len(issued) != 0 || len(store.decisions) != 1 || store.decisions[0].Outcome != engine.OutcomeTenantSuspended {
		t.Fatalf("issued %v, decisions %+v, %v", issued, store.decisions, err)
	}
}

// refusingLimiter refuses the requests of events before a time: the
// day's cap was reached, tomorrow's is free.
type refusingLimiter struct{ before time.Time }

func (l refusingLimiter) CheckAndIncr(_ context.Context, reqs []engineapp.LimitRequest) ([]engineapp.LimitAnswer, error) {
	out := make([]engineapp.LimitAnswer, len(reqs))
	for i, r := range reqs {
		out[i].Granted = !r.At.Before(l.before)
		if !out[i].Granted {
			out[i].RefusedBy = &engineapp.LimitCounter{Scope: "USER", Kind: "DAY", Cap: 1, Seen: 1}
		}
	}
	return out, nil
}

// A quest completion the limits refuse is retried by the user's next event
// of the quest in the same batch, as it would be one event per batch: the
// logins at 23:57 and 23:58 meet today's exhausted cap, the one at 00:01
// tomorrow's free one, and it pays.
func TestARefusedQuestCompletionIsRetriedWithinTheBatch(t *testing.T) {
	quest := engine.Campaign{ID: uuid.New(), TenantID: tenantID, Version: 1, Status: campaign.StatusActive,
		Rule: mustRule(t, rules.Quest, `{"steps":[{"action":"LOGIN","count":1}],"reward":{"type":"POINTS","currency":"POINTS","amount":"50"}}`)}
	store := &fakeStore{logged: map[uuid.UUID]bool{}, progress: map[engineapp.ProgressKey]engineapp.StoredProgress{}, members: map[engineapp.MemberKey]bool{}}
	catalog := engineapp.NewCatalog(staticSource{engineapp.Snapshot{Campaigns: []engine.Campaign{quest},
		Tenants: map[uuid.UUID]engineapp.TenantState{tenantID: {Status: tenant.StatusActive}}}}, time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := catalog.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	midnight := t0.Truncate(24 * time.Hour).Add(24 * time.Hour)
	e := engineapp.New(store, catalog, refusingLimiter{before: midnight})
	batch := []engine.ActionEvent{event("u1", "LOGIN", 0), event("u1", "LOGIN", 0), event("u1", "LOGIN", 0)}
	for i, at := range []time.Duration{-3 * time.Minute, -2 * time.Minute, time.Minute} {
		batch[i].EventTs = midnight.Add(at)
	}
	issued, err := e.Process(context.Background(), batch)
	if err != nil || len(issued) != 1 || issued[0].SourceEventID != batch[2].EventID {
		t.Fatalf("issued %+v (%v), want the 00:01 login's completion", issued, err)
	}
	var outcomes []engine.Outcome
	for _, d := range store.decisions {
		outcomes = append(outcomes, d.Outcome)
	}
	if want := []engine.Outcome{engine.OutcomeLimited, engine.OutcomeLimited, engine.OutcomeIssued}; !slices.Equal(outcomes, want) {
		t.Fatalf("outcomes %v, want %v", outcomes, want)
	}
	if p := store.progress[engineapp.ProgressKey{CampaignID: quest.ID, UserID: "u1"}]; p.Completed.IsZero() {
		t.Fatalf("the paid quest is not completed: %+v", p)
	}
}
