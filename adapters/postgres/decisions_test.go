package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/incentives-platform/incentives/adapters/postgres"
	enginecmd "github.com/incentives-platform/incentives/commands/engine"
	"github.com/incentives-platform/incentives/domain/engine"
	"github.com/incentives-platform/incentives/domain/rules"
	"github.com/incentives-platform/incentives/projections"
)

func TestUserDecisionsNewestFirstByPagesAndFilters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newEngineFixture(t)
	acme, globex := uuid.New(), uuid.New()
	c1, c2 := uuid.New(), uuid.New()
	base := time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)
	cash := &engine.Reward{Type: rules.RewardCashback, Currency: "INR", Amount: decimal.RequireFromString("12.75")}

	var all []enginecmd.RecordedDecision
	add := func(tenantID, campaignID uuid.UUID, user string, outcome engine.Outcome, at time.Time) enginecmd.RecordedDecision {
		ev := uuid.New()
		d := engine.Decision{ID: engine.DecisionID(campaignID, user, ev), TenantID: tenantID, UserID: user, CampaignID: campaignID,
			CampaignVer: 1, SourceEventID: ev, Outcome: outcome, DecidedAt: at, Inputs: map[string]any{"n": 1}}
		if outcome == engine.OutcomeLimited {
			d.Reward = cash
		}
		rd := enginecmd.RecordedDecision{Decision: d}
		all = append(all, rd)
		return rd
	}
	// The user "a/b ü" of acme: five decisions, two at the same instant.
	d0 := add(acme, c1, "a/b ü", engine.OutcomeConditionFalse, base)
	d1 := add(acme, c2, "a/b ü", engine.OutcomeLimited, base.Add(time.Minute))
	d2 := add(acme, c1, "a/b ü", engine.OutcomeLimited, base.Add(2*time.Minute))
	d3 := add(acme, c1, "a/b ü", engine.OutcomeConditionFalse, base.Add(2*time.Minute))
	d4 := add(acme, c2, "a/b ü", engine.OutcomeConditionFalse, base.Add(3*time.Minute))
	// The same user id at another tenant, and another user.
	add(globex, c1, "a/b ü", engine.OutcomeConditionFalse, base.Add(time.Hour))
	add(acme, c1, "someone else", engine.OutcomeConditionFalse, base.Add(time.Hour))
	tx := f.begin(t)
	if _, err := tx.Record(ctx, all, nil); err != nil {
		t.Fatal(err)
	}
	mustCommit(t, tx)

	tie := []enginecmd.RecordedDecision{d2, d3}
	if d3.ID.String() > d2.ID.String() {
		tie = []enginecmd.RecordedDecision{d3, d2}
	}
	newestFirst := []enginecmd.RecordedDecision{d4, tie[0], tie[1], d1, d0}

	q := postgres.NewDecisions(f.db)
	var (
		got   []enginecmd.RecordedDecision
		after projections.TenantKey
	)
	for page := 0; ; page++ {
		items, err := q.UserDecisions(ctx, acme, "a/b ü", uuid.Nil, "", after, 2)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, items...)
		if len(items) < 2 {
			break
		}
		last := items[len(items)-1]
		after = projections.TenantKey{CreatedAt: last.DecidedAt, ID: last.ID}
		if page > 5 {
			t.Fatal("pages never end")
		}
	}
	if diff := compareDecisions(got, newestFirst); diff != "" {
		t.Fatalf("paged through: %s", diff)
	}

	for _, tc := range []struct {
		name     string
		campaign uuid.UUID
		outcome  engine.Outcome
		want     []enginecmd.RecordedDecision
	}{
		{"campaign", c2, "", []enginecmd.RecordedDecision{d4, d1}},
		{"outcome", uuid.Nil, engine.OutcomeLimited, []enginecmd.RecordedDecision{d2, d1}},
		{"both", c1, engine.OutcomeLimited, []enginecmd.RecordedDecision{d2}},
		{"neither matches", c2, engine.OutcomeIssued, nil},
	} {
		got, err := q.UserDecisions(ctx, acme, "a/b ü", tc.campaign, tc.outcome, projections.TenantKey{}, 10)
		if err != nil {
			t.Fatal(err)
		}
		if diff := compareDecisions(got, tc.want); diff != "" {
			t.Errorf("%s: %s", tc.name, diff)
		}
	}
	if got, err := q.UserDecisions(ctx, acme, "nobody", uuid.Nil, "", projections.TenantKey{}, 10); err != nil || len(got) != 0 {
		t.Errorf("an unknown user: %v, %v; want no decisions", got, err)
	}
}
