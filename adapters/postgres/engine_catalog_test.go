package postgres_test

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/adapters/postgres"
	enginecmd "github.com/incentives-platform/incentives/commands/engine"
	"github.com/incentives-platform/incentives/domain/engine"
	"github.com/incentives-platform/incentives/domain/rules"
	"github.com/incentives-platform/incentives/domain/tenant"
)

func insertTenant(t *testing.T, db *postgres.DB, id uuid.UUID, status string) {
	t.Helper()
	now := time.Now().UTC()
	if _, err := db.Pool.Exec(context.Background(), `INSERT INTO tenant (tenant_id, name, status, created_at, updated_at, version)
		VALUES ($1, 'Acme', $2, $3, $3, 1)`, id, status, now); err != nil {
		t.Fatal(err)
	}
}

func insertLimit(t *testing.T, db *postgres.DB, tenantID uuid.UUID, scope string, perDay, perWindow *int64, windowDays *int, total *int64) {
	t.Helper()
	now := time.Now().UTC()
	if _, err := db.Pool.Exec(context.Background(), `INSERT INTO tenant_limit (tenant_id, scope, max_per_day, max_per_window, window_days, max_total, created_at, updated_at, version)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $7, 1)`, tenantID, scope, perDay, perWindow, windowDays, total, now); err != nil {
		t.Fatal(err)
	}
}

func insertCohort(t *testing.T, db *postgres.DB, id, tenantID uuid.UUID, generation *uuid.UUID) {
	t.Helper()
	now := time.Now().UTC()
	if _, err := db.Pool.Exec(context.Background(), `INSERT INTO cohort (cohort_id, tenant_id, name, kind, members_generation, created_at, updated_at, version)
		VALUES ($1, $2, 'VIPs', 'STATIC', $3, $4, $4, 1)`, id, tenantID, generation, now); err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestLoadSnapshotReadsActiveCampaignsTenantsAndCohorts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newEngineFixture(t)
	db := f.db
	acme, globex := uuid.New(), uuid.New()
	insertTenant(t, db, acme, "ACTIVE")
	insertTenant(t, db, globex, "SUSPENDED")
	insertLimit(t, db, acme, "GLOBAL", ptr[int64](1000), ptr[int64](5000), ptr(7), nil)
	insertLimit(t, db, acme, "USER", ptr[int64](1), nil, nil, ptr[int64](10))

	vips, never, generation := uuid.New(), uuid.New(), uuid.New()
	insertCohort(t, db, vips, acme, &generation)
	insertCohort(t, db, never, acme, nil)

	simple, quest, broken, draft, paused := uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New()
	insertCampaign(t, db, simple, acme, "ACTIVE", "SIMPLE", simpleRule, 4, &vips)
	insertCampaign(t, db, quest, globex, "ACTIVE", "QUEST", questRule, 2, nil)
	insertCampaign(t, db, broken, acme, "ACTIVE", "SIMPLE", `{"action":"purchase","reward":{"type":"CASHBACK","currency":"INR","amount":"50"}}`, 1, nil)
	insertCampaign(t, db, draft, acme, "DRAFT", "SIMPLE", simpleRule, 1, nil)
	insertCampaign(t, db, paused, acme, "PAUSED", "SIMPLE", simpleRule, 3, nil)

	var logs bytes.Buffer
	catalog := postgres.NewEngineCatalog(db, slog.New(slog.NewTextHandler(&logs, nil)))
	check := func(snap enginecmd.Snapshot, simpleVersion int64, simpleAction string) {
		t.Helper()
		byID := map[uuid.UUID]engine.Campaign{}
		for _, c := range snap.Campaigns {
			byID[c.ID] = c
		}
		if len(snap.Campaigns) != 2 || byID[simple].ID != simple || byID[quest].ID != quest {
			t.Fatalf("campaigns %v, want only the ACTIVE ones whose rule compiles", snap.Campaigns)
		}
		s, q := byID[simple], byID[quest]
		if s.TenantID != acme || s.Version != simpleVersion || s.CohortID != vips || s.Status != "ACTIVE" ||
			!s.StartAt.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) || !s.EndAt.IsZero() ||
			s.Rule.Kind != rules.Simple || s.Rule.Action != simpleAction || s.Rule.Reward.Amount.String() != "50" {
			t.Errorf("SIMPLE campaign %+v", s)
		}
		if q.TenantID != globex || q.CohortID != uuid.Nil || q.Rule.Kind != rules.Quest || len(q.Rule.Steps) != 2 || q.Rule.Steps[0].Count != 2 {
			t.Errorf("QUEST campaign %+v", q)
		}
		a, g := snap.Tenants[acme], snap.Tenants[globex]
		if len(snap.Tenants) != 2 || a.Status != tenant.StatusActive || g.Status != tenant.StatusSuspended {
			t.Fatalf("tenants %+v", snap.Tenants)
		}
		if *a.Tenant.PerDay != 1000 || *a.Tenant.PerWindow != 5000 || a.Tenant.WindowDays != 7 || a.Tenant.Total != nil ||
			*a.User.PerDay != 1 || a.User.PerWindow != nil || a.User.WindowDays != 0 || *a.User.Total != 10 {
			t.Errorf("acme caps %+v %+v", a.Tenant, a.User)
		}
		if g.Tenant.PerDay != nil || g.User.Total != nil {
			t.Errorf("a tenant without limit rows is unbounded, got %+v %+v", g.Tenant, g.User)
		}
		if len(snap.CohortMembers) != 2 || snap.CohortMembers[vips] != generation || snap.CohortMembers[never] != uuid.Nil {
			t.Errorf("cohort generations %v", snap.CohortMembers)
		}
	}
	snap, err := catalog.LoadSnapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check(snap, 4, "PURCHASE")
	// Again: rules come from the compiled cache, the broken one is not logged twice.
	if snap, err = catalog.LoadSnapshot(ctx); err != nil {
		t.Fatal(err)
	}
	check(snap, 4, "PURCHASE")
	if n := strings.Count(logs.String(), broken.String()); n != 1 {
		t.Errorf("the broken campaign was logged %d times, want once:\n%s", n, logs.String())
	}
	// A new version is compiled anew.
	insertCampaign(t, db, simple, acme, "ACTIVE", "SIMPLE", strings.Replace(simpleRule, "PURCHASE", "REFERRAL", 1), 5, &vips)
	if snap, err = catalog.LoadSnapshot(ctx); err != nil {
		t.Fatal(err)
	}
	check(snap, 5, "REFERRAL")
	if !slices.ContainsFunc(snap.Campaigns, func(c engine.Campaign) bool {
		return c.ID == simple && slices.Equal(c.Rule.Actions(), []string{"REFERRAL"})
	}) {
		t.Errorf("the new version's rule was not compiled")
	}
}
