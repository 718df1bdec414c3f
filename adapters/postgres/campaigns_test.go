package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/adapters/postgres"
	"github.com/incentives-platform/incentives/adapters/postgres/pgtest"
	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/campaign"
	"github.com/incentives-platform/incentives/domain/rules"
	"github.com/incentives-platform/incentives/projections"
)

func mustRule(t *testing.T, kind rules.Kind, doc string) rules.Rule {
	t.Helper()
	r, err := rules.Parse(kind, []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestCampaignsProjectionSearchAndList(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.MustOpen(t)
	store := postgres.NewCampaigns(db)
	p := projections.NewCampaigns(store)
	tenantID, other := uuid.New(), uuid.New()
	t0 := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	offset := int64(0)
	deliver := func(id uuid.UUID, version int64, e domain.Event) {
		t.Helper()
		offset++
		err := p.Handle(ctx, projections.Delivery{
			Event:      domain.RecordedEvent{Stream: campaign.Stream(id), Version: version, Event: e, Position: offset},
			Checkpoint: projections.Checkpoint{Projection: p.Name(), Topic: "ic.domain.campaign", Partition: 0, Offset: offset, Position: offset},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	purchase := mustRule(t, rules.Simple, `{"action":"PURCHASE","reward":{"type":"POINTS","currency":"POINTS","amount":"10"}}`)
	quest := mustRule(t, rules.Quest, `{"steps":[{"action":"LOGIN","count":2},{"action":"PURCHASE"}],"reward":{"type":"POINTS","currency":"POINTS","amount":"10"}}`)
	login := mustRule(t, rules.Simple, `{"action":"LOGIN","reward":{"type":"POINTS","currency":"POINTS","amount":"1"}}`)

	simpleID, questID, draftID, laterID, loginID, foreignID := uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New()
	create := func(id, tenant uuid.UUID, typ campaign.Type, r rules.Rule, start time.Time, at time.Duration) {
		deliver(id, 1, campaign.Created{CampaignID: id, TenantID: tenant, CreatedAt: t0.Add(at * time.Second),
			Definition: campaign.Definition{Name: "c " + id.String()[:4], Type: typ, Rule: r, StartAt: start}})
	}
	create(simpleID, tenantID, campaign.Simple, purchase, time.Time{}, 1)
	create(questID, tenantID, campaign.Quest, quest, time.Time{}, 2)
	create(draftID, tenantID, campaign.Simple, purchase, time.Time{}, 3)
	create(laterID, tenantID, campaign.Simple, purchase, t0.Add(48*time.Hour), 4)
	create(loginID, tenantID, campaign.Simple, login, time.Time{}, 5)
	create(foreignID, other, campaign.Simple, purchase, time.Time{}, 6)
	for _, id := range []uuid.UUID{simpleID, questID, laterID, loginID, foreignID} {
		deliver(id, 2, campaign.Activated{CampaignID: id, ActivatedAt: t0.Add(time.Minute)})
	}
	// Redelivery of an older event changes nothing.
	deliver(simpleID, 1, campaign.Created{CampaignID: simpleID, TenantID: tenantID, CreatedAt: t0,
		Definition: campaign.Definition{Name: "stale", Type: campaign.Simple, Rule: login}})
	deliver(loginID, 3, campaign.Paused{CampaignID: loginID, PausedAt: t0.Add(2 * time.Minute)})

	v, err := store.Campaign(ctx, simpleID)
	if err != nil || v.Status != campaign.StatusActive || v.Version != 2 || !strings.Contains(string(v.Rule), `"PURCHASE"`) || v.Name == "stale" {
		t.Fatalf("campaign view = %+v, %v", v, err)
	}
	ids := func(views []projections.CampaignView) []uuid.UUID {
		var out []uuid.UUID
		for _, v := range views {
			out = append(out, v.CampaignID)
		}
		return out
	}
	got, err := store.SearchCampaigns(ctx, tenantID, "PURCHASE", t0.Add(time.Hour))
	if err != nil || fmt.Sprint(ids(got)) != fmt.Sprint([]uuid.UUID{simpleID, questID}) {
		t.Fatalf("search PURCHASE = %v, %v; want the active SIMPLE and QUEST ones, not the draft, the not-yet-started or another tenant's", ids(got), err)
	}
	if got, _ := store.SearchCampaigns(ctx, tenantID, "LOGIN", t0.Add(time.Hour)); fmt.Sprint(ids(got)) != fmt.Sprint([]uuid.UUID{questID}) {
		t.Fatalf("search LOGIN = %v; want only the quest (the LOGIN campaign is paused)", ids(got))
	}
	list, err := store.ListCampaigns(ctx, tenantID, projections.CampaignFilter{Type: campaign.Simple, Action: "PURCHASE", ActiveAt: t0.Add(time.Hour)}, projections.CampaignKey{}, 10)
	if err != nil || fmt.Sprint(ids(list)) != fmt.Sprint([]uuid.UUID{simpleID, draftID}) {
		t.Fatalf("list = %v, %v", ids(list), err)
	}
	page, _ := store.ListCampaigns(ctx, tenantID, projections.CampaignFilter{}, projections.CampaignKey{CreatedAt: t0.Add(3 * time.Second), ID: draftID}, 10)
	if fmt.Sprint(ids(page)) != fmt.Sprint([]uuid.UUID{laterID, loginID}) {
		t.Fatalf("page after the draft = %v", ids(page))
	}
	if due, err := store.DueToEnd(ctx, t0, 10); err != nil || len(due) != 0 {
		t.Fatalf("due to end = %v, %v", due, err)
	}
}

// The engine's search must stay an index lookup as campaigns pile up. With
// 10,000 campaigns across 100 tenants, one of which holds half of them,
// EXPLAIN shows no sequential scan: a small tenant's active campaigns come
// from the (tenant_id, status) index, and the large tenant's campaigns of a
// rare action from the GIN index on rule_json, each where it pays.
func TestCampaignSearchUsesItsIndexes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.MustOpen(t)
	actions := []string{"PURCHASE", "LOGIN", "REFERRAL", "SIGNUP", "SHARE", "REVIEW", "RENEW", "TOPUP"}
	// Tenant 0 holds campaigns 0-4999; the other 99 share the rest. Every
	// 500th campaign of tenant 0 rewards the rare action CHARITY.
	if _, err := db.Pool.Exec(ctx, `
		INSERT INTO campaign (campaign_id, tenant_id, name, type, status, rule_json, created_at, updated_at, version)
		SELECT gen_random_uuid(),
		       ('00000000-0000-4000-8000-' || lpad((CASE WHEN i < 5000 THEN 0 ELSE 1 + i % 99 END)::text, 12, '0'))::uuid,
		       'c' || i, 'SIMPLE', (ARRAY['ACTIVE','ACTIVE','PAUSED','DRAFT'])[1 + i % 4],
		       jsonb_build_object('action', CASE WHEN i < 5000 AND i % 500 = 0 THEN 'CHARITY' ELSE ($1::text[])[1 + i % 8] END,
		                          'reward', '{"type":"POINTS","currency":"POINTS","amount":"1"}'::jsonb),
		       now(), now(), 1
		FROM generate_series(0, 9999) i`, actions); err != nil {
		t.Fatal(err)
	}
	// As autovacuum would: VACUUM merges the GIN index's pending list, whose
	// scan would otherwise be costed as if it were the whole table.
	if _, err := db.Pool.Exec(ctx, `VACUUM ANALYZE campaign`); err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, c := range []struct {
		tenant, action string
	}{{"000000000007", "PURCHASE"}, {"000000000000", "CHARITY"}} {
		q, args := postgres.SearchQuery(uuid.MustParse("00000000-0000-4000-8000-"+c.tenant), c.action, time.Now())
		var plan []byte
		if err := db.Pool.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+q, args...).Scan(&plan); err != nil {
			t.Fatal(err)
		}
		var nodes []map[string]any
		if err := json.Unmarshal(plan, &nodes); err != nil {
			t.Fatal(err)
		}
		var walk func(n map[string]any)
		walk = func(n map[string]any) {
			if n["Node Type"] == "Seq Scan" {
				t.Errorf("sequential scan of %v searching %s campaigns of tenant %s:\n%s", n["Relation Name"], c.action, c.tenant, plan)
			}
			if idx, ok := n["Index Name"].(string); ok {
				used[idx] = true
			}
			for _, child := range asMaps(n["Plans"]) {
				walk(child)
			}
		}
		walk(nodes[0]["Plan"].(map[string]any))
	}
	for _, idx := range []string{"campaign_tenant_status_idx", "campaign_rule_json_idx"} {
		if !used[idx] {
			t.Errorf("no search plan uses %s", idx)
		}
	}
}

func asMaps(v any) []map[string]any {
	list, _ := v.([]any)
	out := make([]map[string]any, 0, len(list))
	for _, x := range list {
		if m, ok := x.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}
