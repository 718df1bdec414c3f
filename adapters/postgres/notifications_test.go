package postgres_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/incentives-platform/incentives/adapters/postgres"
	"github.com/incentives-platform/incentives/adapters/postgres/pgtest"
	"github.com/incentives-platform/incentives/domain/engine"
	"github.com/incentives-platform/incentives/domain/rules"
)

// insertIncentive writes an incentive row as the engine does, written (its
// recorded_at) at recordedAt, with only the columns the catch-up reads
// meaningful.
func insertIncentive(t *testing.T, db *postgres.DB, inc engine.Incentive, recordedAt time.Time) {
	t.Helper()
	_, err := db.Pool.Exec(context.Background(), `
		INSERT INTO incentive (incentive_id, decision_id, tenant_id, campaign_id, campaign_version, user_id, source_event_id,
		                       type, reward_currency, reward_amount, issued_at, recorded_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::numeric, $11, $12)`,
		inc.ID, inc.DecisionID, inc.TenantID, inc.CampaignID, inc.CampaignVersion, inc.UserID, inc.SourceEventID.String(),
		string(inc.Reward.Type), inc.Reward.Currency, inc.Reward.Amount.String(), inc.IssuedAt, recordedAt)
	if err != nil {
		t.Fatal(err)
	}
}

func TestNotificationsCatchUpAfterAnIncentiveOrATime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.MustOpen(t)
	acme, globex := uuid.New(), uuid.New()
	base := time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)
	// at is when the engine wrote it; the action that earned it happened a
	// minute before, but for late ones.
	written := func(tenant uuid.UUID, user string, at, action time.Time) engine.Incentive {
		inc := engine.Incentive{ID: uuid.New(), DecisionID: uuid.New(), TenantID: tenant, CampaignID: uuid.New(), CampaignVersion: 3,
			UserID: user, SourceEventID: uuid.New(), IssuedAt: action,
			Reward: engine.Reward{Type: rules.RewardCashback, Currency: "INR", Amount: decimal.RequireFromString("12.75")}}
		insertIncentive(t, db, inc, at)
		return inc
	}
	newIncentive := func(tenant uuid.UUID, user string, at time.Time) engine.Incentive {
		return written(tenant, user, at, at.Add(-time.Minute))
	}
	// The user "a/b ü" of acme: four incentives, two of them from one event
	// (the same instant), inserted out of order.
	i2 := newIncentive(acme, "a/b ü", base.Add(2*time.Minute))
	i0 := newIncentive(acme, "a/b ü", base)
	tieA := newIncentive(acme, "a/b ü", base.Add(time.Minute))
	tieB := newIncentive(acme, "a/b ü", base.Add(time.Minute))
	if tieB.ID.String() < tieA.ID.String() {
		tieA, tieB = tieB, tieA
	}
	// A late action: done a day ago, rewarded last. It must come after i2,
	// or a client that saw i2 would never get it.
	late := written(acme, "a/b ü", base.Add(3*time.Minute), base.Add(-24*time.Hour))
	history := []engine.Incentive{i0, tieA, tieB, i2, late}
	// The same user id at another tenant, and another user of acme.
	foreign := newIncentive(globex, "a/b ü", base.Add(30*time.Second))
	other := newIncentive(acme, "someone else", base.Add(30*time.Second))

	n := postgres.NewNotifications(db)
	after := func(id uuid.UUID, limit int) []engine.Incentive {
		t.Helper()
		got, err := n.IncentivesAfter(ctx, acme, "a/b ü", id, limit)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	since := func(at time.Time, limit int) []engine.Incentive {
		t.Helper()
		got, err := n.IncentivesSince(ctx, acme, "a/b ü", at, limit)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	for _, tc := range []struct {
		name string
		got  []engine.Incentive
		want []engine.Incentive
	}{
		{"after the first", after(i0.ID, 100), history[1:]},
		{"after the first of a tie", after(tieA.ID, 100), history[2:]},
		{"after the second of a tie", after(tieB.ID, 100), history[3:]},
		{"after i2: the late action's reward", after(i2.ID, 100), history[4:]},
		{"after the last", after(late.ID, 100), nil},
		{"after the first, limit 2", after(i0.ID, 2), history[1:3]},
		{"after another tenant's incentive", after(foreign.ID, 100), nil},
		{"after another user's incentive", after(other.ID, 100), nil},
		{"after an unknown id", after(uuid.New(), 100), nil},
		{"since before everything", since(base.Add(-time.Hour), 100), history},
		{"since the instant of a tie", since(base.Add(time.Minute), 100), history[1:]},
		{"since just after the tie", since(base.Add(time.Minute+time.Millisecond), 100), history[3:]},
		{"since after i2", since(base.Add(2*time.Minute+time.Millisecond), 100), history[4:]},
		{"since the future", since(base.Add(time.Hour), 100), nil},
		{"since before everything, limit 1", since(base.Add(-time.Hour), 1), history[:1]},
		{"limit 0", after(i0.ID, 0), nil},
	} {
		if !slices.EqualFunc(tc.got, tc.want, sameIncentive) {
			t.Errorf("%s: got %v, want %v", tc.name, incentiveIDs(tc.got), incentiveIDs(tc.want))
		}
	}

	// Every field comes back as written.
	got := after(i0.ID, 1)
	if len(got) != 1 || !sameIncentive(got[0], tieA) || got[0].IssuedAt.Location() != time.UTC {
		t.Fatalf("read back %+v, want %+v", got, tieA)
	}
}

func sameIncentive(a, b engine.Incentive) bool {
	return a.ID == b.ID && a.DecisionID == b.DecisionID && a.TenantID == b.TenantID && a.CampaignID == b.CampaignID &&
		a.CampaignVersion == b.CampaignVersion && a.UserID == b.UserID && a.SourceEventID == b.SourceEventID &&
		a.Reward.Type == b.Reward.Type && a.Reward.Currency == b.Reward.Currency && a.Reward.Amount.Equal(b.Reward.Amount) &&
		a.IssuedAt.Equal(b.IssuedAt)
}

func incentiveIDs(incs []engine.Incentive) []string {
	out := make([]string, len(incs))
	for i, inc := range incs {
		out[i] = inc.ID.String()[:8]
	}
	return out
}
