package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/adapters/auth"
	"github.com/incentives-platform/incentives/domain/engine"
)

// insertDecision writes a decision row as the engine's batch would.
func (p *testPlatform) insertDecision(tenantID, campaignID uuid.UUID, user, outcome string, at time.Time, reward bool, limits string) uuid.UUID {
	p.t.Helper()
	ev := uuid.New()
	id := engine.DecisionID(campaignID, user, ev)
	var rewardType, currency, amount, incentiveID any
	if reward {
		rewardType, currency, amount = "CASHBACK", "INR", "12.7500"
	}
	if outcome == "ISSUED" {
		incentiveID = engine.IncentiveID(id)
	}
	var lim any
	if limits != "" {
		lim = limits
	}
	_, err := p.db.Pool.Exec(context.Background(), `
		INSERT INTO decision (decision_id, tenant_id, user_id, campaign_id, campaign_version, source_event_id, outcome, reason,
		                      reward_type, reward_currency, reward_amount, inputs, limits, incentive_id, decided_at)
		VALUES ($1, $2, $3, $4, 3, $5, $6, '', $7, $8, $9::numeric, '{"payload":{"amount":255.5}}', $10::jsonb, $11, $12)`,
		id, tenantID, user, campaignID, ev, outcome, rewardType, currency, amount, lim, incentiveID, at)
	if err != nil {
		p.t.Fatal(err)
	}
	return id
}

type decisionPage struct {
	Items []struct {
		DecisionID      string          `json:"decisionId"`
		CampaignID      string          `json:"campaignId"`
		CampaignVersion int64           `json:"campaignVersion"`
		Outcome         string          `json:"outcome"`
		Reward          json.RawMessage `json:"reward"`
		Inputs          json.RawMessage `json:"inputs"`
		Limits          json.RawMessage `json:"limits"`
		IncentiveID     *string         `json:"incentiveId"`
		DecidedAt       time.Time       `json:"decidedAt"`
	} `json:"items"`
	NextCursor string `json:"nextCursor"`
}

func TestDecisionsEndToEnd(t *testing.T) {
	t.Parallel()
	p := startPlatform(t, testConfig(t))
	acme, globex := uuid.New(), uuid.New()
	c1, c2 := uuid.New(), uuid.New()
	base := time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)
	const user = "a/b ü" // needs escaping in the path
	refused := `{"granted":false,"refusedBy":{"scope":"USER","kind":"DAY","cap":1,"seen":1},"counters":[{"scope":"USER","kind":"DAY","cap":1,"seen":1}]}`
	d0 := p.insertDecision(acme, c1, user, "CONDITION_FALSE", base, false, "")
	d1 := p.insertDecision(acme, c1, user, "ISSUED", base.Add(time.Minute), true, `{"granted":true,"refusedBy":null,"counters":[]}`)
	d2 := p.insertDecision(acme, c2, user, "LIMITED", base.Add(2*time.Minute), true, refused)
	p.insertDecision(globex, c1, user, "ISSUED", base, true, "")

	path := "/api/v1/tenants/" + acme.String() + "/users/" + url.PathEscape(user) + "/decisions"
	tenantAdmin := p.token(auth.RoleTenantAdmin, acme)
	get := func(token, path string) (response, decisionPage) {
		t.Helper()
		r := p.request("GET", path, token, nil)
		var page decisionPage
		if r.status == http.StatusOK {
			if err := json.Unmarshal(r.body, &page); err != nil {
				t.Fatalf("GET %s: %v: %s", path, err, r.body)
			}
		}
		return r, page
	}

	// Newest first, two at a time.
	r, page := get(tenantAdmin, path+"?limit=2")
	if r.status != http.StatusOK {
		t.Fatalf("GET %s = %d %s (is Deps.Decisions wired in app.go?)", path, r.status, r.body)
	}
	if len(page.Items) != 2 || page.Items[0].DecisionID != d2.String() || page.Items[1].DecisionID != d1.String() || page.NextCursor == "" {
		t.Fatalf("first page %s", r.body)
	}
	limited, issued := page.Items[0], page.Items[1]
	if limited.Outcome != "LIMITED" || string(limited.Reward) != `{"type":"CASHBACK","currency":"INR","amount":"12.75"}` ||
		string(limited.Limits) != refused || limited.IncentiveID != nil || limited.CampaignVersion != 3 ||
		string(limited.Inputs) != `{"payload":{"amount":255.5}}` || !limited.DecidedAt.Equal(base.Add(2*time.Minute)) {
		t.Errorf("LIMITED decision as served: %s", r.body)
	}
	if issued.IncentiveID == nil || *issued.IncentiveID != engine.IncentiveID(d1).String() {
		t.Errorf("ISSUED decision's incentiveId: %s", r.body)
	}
	r, page = get(tenantAdmin, path+"?limit=2&cursor="+page.NextCursor)
	if r.status != http.StatusOK || len(page.Items) != 1 || page.Items[0].DecisionID != d0.String() || page.NextCursor != "" ||
		!strings.Contains(string(r.body), `"reward":null`) || !strings.Contains(string(r.body), `"limits":null`) {
		t.Fatalf("last page: %d %s", r.status, r.body)
	}

	// Filters.
	if r, page = get(tenantAdmin, path+"?campaignId="+c2.String()); len(page.Items) != 1 || page.Items[0].DecisionID != d2.String() {
		t.Errorf("campaignId filter: %d %s", r.status, r.body)
	}
	if r, page = get(tenantAdmin, path+"?outcome=ISSUED"); len(page.Items) != 1 || page.Items[0].DecisionID != d1.String() {
		t.Errorf("outcome filter: %d %s", r.status, r.body)
	}

	// Who may read: a platform admin; not another tenant's admin, nor a user.
	if r, page = get(p.token(auth.RolePlatformAdmin, uuid.Nil), path); r.status != http.StatusOK || len(page.Items) != 3 {
		t.Errorf("platform admin: %d %s", r.status, r.body)
	}
	for _, tc := range []struct {
		name, token, path string
		status            int
		problem           string
	}{
		{"another tenant's admin", p.token(auth.RoleTenantAdmin, globex), path, 404, "not-found"},
		{"a user", p.token(auth.RoleUser, acme), path, 403, "forbidden"},
		{"no token", "", path, 401, "unauthenticated"},
		{"user id too long", tenantAdmin, "/api/v1/tenants/" + acme.String() + "/users/" + strings.Repeat("u", 129) + "/decisions", 400, "malformed-request"},
		{"control character", tenantAdmin, "/api/v1/tenants/" + acme.String() + "/users/a%01b/decisions", 400, "malformed-request"},
		{"bad campaignId", tenantAdmin, path + "?campaignId=nope", 400, "malformed-request"},
		{"bad outcome", tenantAdmin, path + "?outcome=issued", 400, "malformed-request"},
		{"bad cursor", tenantAdmin, path + "?cursor=nope", 400, "malformed-request"},
		{"bad tenant id", tenantAdmin, "/api/v1/tenants/nope/users/u/decisions", 400, "malformed-request"},
	} {
		r := p.request("GET", tc.path, tc.token, nil)
		if r.status != tc.status || !strings.Contains(string(r.body), "urn:incentives:problem:"+tc.problem) ||
			r.header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s, want %d %s", tc.name, r.status, r.body, tc.status, tc.problem)
		}
	}
	// A user the engine never saw has no decisions; that is not a 404.
	if r, page = get(tenantAdmin, "/api/v1/tenants/"+acme.String()+"/users/nobody/decisions"); r.status != http.StatusOK || len(page.Items) != 0 ||
		string(r.body) != "{\"items\":[]}\n" {
		t.Errorf("unknown user: %d %s", r.status, r.body)
	}
}
