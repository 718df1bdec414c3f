package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/incentives-platform/incentives/adapters/auth"
	"github.com/incentives-platform/incentives/adapters/kafka/kafkatest"
	"github.com/incentives-platform/incentives/adapters/redis"
)

const purchaseRule = `{"action":"PURCHASE","condition":"event.payload.amount >= 100","reward":{"type":"CASHBACK","currency":"INR","amount":"50"}}`

// newTenant creates a tenant and waits until it is readable.
func (p *testPlatform) newTenant(name string) string {
	p.t.Helper()
	r := p.request("POST", "/api/v1/tenants", p.token(auth.RolePlatformAdmin, uuid.Nil), fmt.Sprintf(`{"name":%q}`, name))
	if r.status != http.StatusCreated {
		p.t.Fatalf("create tenant: %d %s", r.status, r.body)
	}
	id := r.json(p.t)["tenantId"].(string)
	p.t.Cleanup(func() {
		var campaigns []uuid.UUID
		rows, err := p.db.Pool.Query(context.Background(), `SELECT campaign_id FROM campaign WHERE tenant_id = $1`, id)
		if err == nil {
			campaigns, err = pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		}
		if err != nil {
			p.t.Errorf("campaigns of tenant %s: %v", id, err)
		}
		p.awaitUserRewards(uuid.MustParse(id))
		forgetTenantInRedis(p.t, p.cfg.RedisURL, uuid.MustParse(id), campaigns...)
	})
	return id
}

// forgetTenantInRedis deletes the tenant's limit counters, remembered
// decisions, sketches and user reward aggregates, and its campaigns' hot
// quest progress, so tests leave Redis as they found it.
func forgetTenantInRedis(t *testing.T, url string, tenant uuid.UUID, campaigns ...uuid.UUID) {
	ctx := context.Background()
	c, err := redis.Open(ctx, url)
	if err != nil {
		t.Errorf("redis: %v", err)
		return
	}
	defer c.Close()
	l, err := redis.NewLimiter(c, redis.LimiterConfig{})
	if err == nil {
		_, err = l.ForgetTenant(ctx, tenant)
	}
	if err == nil {
		var s *redis.Sketch
		if s, err = redis.NewSketch(c, redis.SketchConfig{}); err == nil {
			_, err = s.ForgetTenant(ctx, tenant)
		}
	}
	if err == nil {
		_, err = redis.NewUserRewards(c).ForgetTenant(ctx, tenant)
	}
	progress := redis.NewHotProgress(c)
	for _, id := range campaigns {
		if err == nil {
			_, err = progress.ForgetCampaign(ctx, id)
		}
	}
	if err != nil {
		t.Errorf("forget tenant %s in redis: %v", tenant, err)
	}
}

func TestCampaignLifecycleEndToEnd(t *testing.T) {
	t.Parallel()
	p := startPlatform(t, testConfig(t))
	tenantID := p.newTenant("Acme")
	admin := p.token(auth.RoleTenantAdmin, uuid.MustParse(tenantID))

	// A tenant admin creates a campaign in its own tenant without naming it.
	created := p.request("POST", "/api/v1/campaigns", admin, `{"name":"Festive cashback","type":"SIMPLE","startAt":"2026-01-01T00:00:00Z",
		"rule":`+purchaseRule+`}`)
	if created.status != http.StatusCreated || created.header.Get("ETag") != `"1"` {
		t.Fatalf("create: %d %s", created.status, created.body)
	}
	c := created.json(t)
	id := c["campaignId"].(string)
	if c["status"] != "DRAFT" || c["tenantId"] != tenantID || c["startAt"] != "2026-01-01T00:00:00Z" || c["endAt"] != nil || c["cohortId"] != nil ||
		created.header.Get("Location") != "/api/v1/campaigns/"+id {
		t.Fatalf("created %s with %v", created.body, created.header)
	}
	if got := p.request("GET", "/api/v1/campaigns/"+id, admin, nil, "X-Min-Version", "1"); got.status != http.StatusOK || string(got.body) != string(created.body) {
		t.Fatalf("read back %d %s, created %s", got.status, got.body, created.body)
	}

	// Update with If-Match, then the lifecycle; each answer is the new state.
	updated := p.request("PUT", "/api/v1/campaigns/"+id, admin, `{"name":"Festive cashback+","type":"SIMPLE",
		"rule":{"action":"PURCHASE","reward":{"type":"CASHBACK","currency":"INR","percent":"5","percentOf":"amount","maxAmount":"100"}}}`, "If-Match", `"1"`)
	if updated.status != http.StatusOK || updated.json(t)["version"] != 2.0 || updated.json(t)["startAt"] != nil ||
		!strings.Contains(string(updated.body), `"percentOf":"amount"`) {
		t.Fatalf("update: %d %s", updated.status, updated.body)
	}
	if r := p.request("POST", "/api/v1/campaigns/"+id+":pause", admin, nil); r.status != http.StatusConflict ||
		r.json(t)["type"] != "urn:incentives:problem:invalid-state-transition" {
		t.Fatalf("pause a draft: %d %s", r.status, r.body)
	}
	if r := p.request("POST", "/api/v1/campaigns/"+id+":activate", admin, nil, "If-Match", `"1"`); r.status != http.StatusConflict ||
		r.json(t)["type"] != "urn:incentives:problem:version-conflict" {
		t.Fatalf("activate with a stale If-Match: %d %s", r.status, r.body)
	}
	if r := p.request("POST", "/api/v1/campaigns/"+id+":activate", admin, nil, "If-Match", `"2"`); r.status != http.StatusOK ||
		r.json(t)["status"] != "ACTIVE" || r.header.Get("ETag") != `"3"` {
		t.Fatalf("activate: %d %s", r.status, r.body)
	}

	// A QUEST campaign listening to PURCHASE too, and a LOGIN one left in draft.
	quest := p.request("POST", "/api/v1/campaigns", admin, `{"name":"Shop thrice","type":"QUEST","rule":{"steps":[{"action":"LOGIN"},
		{"action":"PURCHASE","count":3}],"ordered":true,"windowDays":7,"reward":{"type":"POINTS","currency":"POINTS","amount":"500"}}}`)
	questID := quest.json(t)["campaignId"].(string)
	p.request("POST", "/api/v1/campaigns/"+questID+":activate", admin, nil)
	p.request("POST", "/api/v1/campaigns", admin, `{"name":"Daily login","type":"SIMPLE","rule":{"action":"LOGIN","reward":{"type":"POINTS","currency":"POINTS","amount":"1"}}}`)

	// The engine's search sees both active PURCHASE campaigns once projected.
	eventually(t, "search finds both active PURCHASE campaigns", func() bool {
		r := p.request("GET", "/api/v1/campaigns/search?tenantId="+tenantID+"&action=PURCHASE", admin, nil)
		return r.status == http.StatusOK && strings.Count(string(r.body), `"campaignId"`) == 2 &&
			strings.Contains(string(r.body), id) && strings.Contains(string(r.body), questID)
	})
	if r := p.request("GET", "/api/v1/campaigns/search?tenantId="+tenantID+"&action=LOGIN", admin, nil); !strings.Contains(string(r.body), questID) ||
		strings.Count(string(r.body), `"campaignId"`) != 1 {
		t.Fatalf("search LOGIN = %s; want only the active quest", r.body)
	}

	// Lists filter and page.
	list := func(query string) []string {
		var ids []string
		cursor := ""
		for range 10 {
			r := p.request("GET", "/api/v1/tenants/"+tenantID+"/campaigns?limit=1"+query+"&cursor="+cursor, admin, nil)
			if r.status != http.StatusOK {
				t.Fatalf("list%s: %d %s", query, r.status, r.body)
			}
			m := r.json(t)
			for _, it := range m["items"].([]any) {
				ids = append(ids, it.(map[string]any)["name"].(string))
			}
			next, _ := m["nextCursor"].(string)
			if next == "" {
				return ids
			}
			cursor = next
		}
		t.Fatalf("list%s never ended", query)
		return nil
	}
	eventually(t, "all three listed", func() bool { return len(list("")) == 3 })
	for query, want := range map[string]string{
		"&status=ACTIVE":                               "[Festive cashback+ Shop thrice]",
		"&type=SIMPLE&action=LOGIN":                    "[Daily login]",
		"&action=PURCHASE&status=DRAFT":                "[]",
		"&activeAt=2025-06-01T00:00:00Z":               "[Festive cashback+ Shop thrice Daily login]",
		"&status=ACTIVE&activeAt=2030-01-01T00:00:00Z": "[Festive cashback+ Shop thrice]",
	} {
		if got := fmt.Sprint(list(query)); got != want {
			t.Errorf("list%s = %s, want %s", query, got, want)
		}
	}

	// Its events reached the campaign topic, keyed by campaign id, in order.
	var versions []string
	kafkatest.ReadUntil(t, p.app.Brokers(), 15*time.Second, func(rs []kafkatest.Record) bool {
		versions = versions[:0]
		for _, r := range rs {
			if r.Key == id && r.Headers["tenant-id"] == tenantID {
				versions = append(versions, r.Headers["event-type"]+"@"+r.Headers["stream-version"])
			}
		}
		return len(versions) >= 3
	}, "ic.domain.campaign")
	if want := "[campaign.created.v1@1 campaign.updated.v1@2 campaign.activated.v1@3]"; fmt.Sprint(versions) != want {
		t.Fatalf("records of the campaign: %v, want %s", versions, want)
	}
}

// A campaign ends by itself once its endAt passes, and can never be
// activated again.
func TestCampaignEndsItselfAtEndAt(t *testing.T) {
	t.Parallel()
	p := startPlatform(t, testConfig(t))
	tenantID := p.newTenant("Acme")
	admin := p.token(auth.RolePlatformAdmin, uuid.Nil)
	endAt := time.Now().Add(1500 * time.Millisecond).UTC().Format(time.RFC3339Nano)
	r := p.request("POST", "/api/v1/campaigns", admin, `{"tenantId":"`+tenantID+`","name":"Flash sale","type":"SIMPLE","endAt":"`+endAt+`","rule":`+purchaseRule+`}`)
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	id := r.json(t)["campaignId"].(string)
	if r := p.request("POST", "/api/v1/campaigns/"+id+":activate", admin, nil); r.status != http.StatusOK {
		t.Fatalf("activate: %d %s", r.status, r.body)
	}
	eventually(t, "the campaign ended", func() bool {
		r := p.request("GET", "/api/v1/campaigns/"+id, admin, nil)
		return r.status == http.StatusOK && r.json(t)["status"] == "ENDED"
	})
	if r := p.request("POST", "/api/v1/campaigns/"+id+":activate", admin, nil); r.status != http.StatusConflict {
		t.Fatalf("activate an ended campaign: %d %s", r.status, r.body)
	}
	if r := p.request("PUT", "/api/v1/campaigns/"+id, admin, `{"name":"Again","type":"SIMPLE","rule":`+purchaseRule+`}`); r.status != http.StatusConflict {
		t.Fatalf("update an ended campaign: %d %s", r.status, r.body)
	}
}

func TestCampaignBadRequestsGetProblemsAndWriteNothing(t *testing.T) {
	t.Parallel()
	p := startPlatform(t, testConfig(t))
	tenantID, otherID := p.newTenant("Acme"), p.newTenant("Other")
	admin := p.token(auth.RoleTenantAdmin, uuid.MustParse(tenantID))
	other := p.token(auth.RoleTenantAdmin, uuid.MustParse(otherID))
	platform := p.token(auth.RolePlatformAdmin, uuid.Nil)
	id := p.request("POST", "/api/v1/campaigns", admin, `{"name":"Mine","type":"SIMPLE","rule":`+purchaseRule+`}`).json(t)["campaignId"].(string)
	eventually(t, "campaign projected", func() bool { return p.request("GET", "/api/v1/campaigns/"+id, admin, nil).status == http.StatusOK })
	before := p.eventCount()

	ok := func(rule string) string { return `{"name":"x","type":"SIMPLE","rule":` + rule + `}` }
	tests := []struct {
		name, method, path, token string
		body                      any
		headers                   []string
		status                    int
		problem, field, message   string
	}{
		{"malformed JSON", "POST", "/api/v1/campaigns", admin, `{"name":"x",`, nil, 400, "malformed-request", "", ""},
		{"unknown field", "POST", "/api/v1/campaigns", admin, `{"name":"x","budget":5}`, nil, 400, "malformed-request", "budget", ""},
		{"wrong type", "POST", "/api/v1/campaigns", admin, `{"name":["x"]}`, nil, 400, "malformed-request", "name", ""},
		{"bad time", "POST", "/api/v1/campaigns", admin, `{"name":"x","startAt":"tomorrow"}`, nil, 400, "malformed-request", "", ""},
		{"non-UUID cohort", "POST", "/api/v1/campaigns", admin, `{"name":"x","type":"SIMPLE","cohortId":"vip","rule":` + purchaseRule + `}`, nil, 400, "malformed-request", "cohortId", ""},
		{"too large", "POST", "/api/v1/campaigns", admin, `{"name":"` + strings.Repeat("x", 2<<20) + `"}`, nil, 413, "request-too-large", "", ""},
		{"missing everything", "POST", "/api/v1/campaigns", admin, `{}`, nil, 422, "validation-failed", "rule", "is required"},
		{"missing type", "POST", "/api/v1/campaigns", admin, `{"name":"x","rule":` + purchaseRule + `}`, nil, 422, "validation-failed", "type", ""},
		{"invalid CEL", "POST", "/api/v1/campaigns", admin, ok(`{"action":"PURCHASE","condition":"event.payload.amount >= ","reward":{"type":"POINTS","currency":"POINTS","amount":"1"}}`),
			nil, 422, "validation-failed", "rule.condition", "line 1, column"},
		{"CEL of the wrong type", "POST", "/api/v1/campaigns", admin, ok(`{"action":"PURCHASE","condition":"event.userId + 'x'","reward":{"type":"POINTS","currency":"POINTS","amount":"1"}}`),
			nil, 422, "validation-failed", "rule.condition", ""},
		{"rule breaks the schema", "POST", "/api/v1/campaigns", admin, ok(`{"action":"PURCHASE","reward":{"type":"POINTS","currency":"POINTS","amount":10}}`),
			nil, 422, "validation-failed", "rule.reward.amount", ""},
		{"unknown rule field", "POST", "/api/v1/campaigns", admin, ok(`{"action":"PURCHASE","bonus":1,"reward":{"type":"POINTS","currency":"POINTS","amount":"1"}}`),
			nil, 422, "validation-failed", "", ""},
		{"QUEST type with a SIMPLE rule", "POST", "/api/v1/campaigns", admin, `{"name":"x","type":"QUEST","rule":` + purchaseRule + `}`, nil, 422, "validation-failed", "", ""},
		{"end before start", "POST", "/api/v1/campaigns", admin, `{"name":"x","type":"SIMPLE","startAt":"2027-01-02T00:00:00Z","endAt":"2027-01-01T00:00:00Z","rule":` + purchaseRule + `}`,
			nil, 422, "validation-failed", "endAt", ""},
		{"another tenant's id in the body", "POST", "/api/v1/campaigns", admin, `{"tenantId":"` + otherID + `","name":"x","type":"SIMPLE","rule":` + purchaseRule + `}`,
			nil, 422, "validation-failed", "tenantId", "no such tenant"},
		{"platform admin without a tenant", "POST", "/api/v1/campaigns", platform, ok(purchaseRule), nil, 422, "validation-failed", "tenantId", ""},
		{"an unknown tenant", "POST", "/api/v1/campaigns", platform, `{"tenantId":"` + uuid.NewString() + `","name":"x","type":"SIMPLE","rule":` + purchaseRule + `}`,
			nil, 422, "validation-failed", "tenantId", "no such tenant"},
		{"an unknown cohort", "POST", "/api/v1/campaigns", admin, `{"name":"x","type":"SIMPLE","cohortId":"` + uuid.NewString() + `","rule":` + purchaseRule + `}`,
			nil, 422, "validation-failed", "cohortId", ""},
		{"user role", "POST", "/api/v1/campaigns", p.token(auth.RoleUser, uuid.MustParse(tenantID)), ok(purchaseRule), nil, 403, "forbidden", "", ""},
		{"no token", "POST", "/api/v1/campaigns", "", ok(purchaseRule), nil, 401, "unauthenticated", "", ""},
		{"another tenant reads it", "GET", "/api/v1/campaigns/" + id, other, nil, nil, 404, "not-found", "", ""},
		{"another tenant waits for its version", "GET", "/api/v1/campaigns/" + id, other, nil, []string{"X-Min-Version", "99"}, 404, "not-found", "", ""},
		{"NUL in a condition", "POST", "/api/v1/campaigns", admin, ok(`{"action":"PURCHASE","condition":"event.userId == 'a\u0000'","reward":{"type":"POINTS","currency":"POINTS","amount":"1"}}`),
			nil, 422, "validation-failed", "rule.condition", "NUL"},
		{"a date no format holds", "POST", "/api/v1/campaigns", admin, `{"name":"x","type":"SIMPLE","endAt":"9999-12-31T23:59:59-12:00","rule":` + purchaseRule + `}`,
			nil, 422, "validation-failed", "endAt", "between"},
		{"trailing garbage", "POST", "/api/v1/campaigns", admin, ok(purchaseRule) + `}}`, nil, 400, "malformed-request", "", ""},
		{"another tenant updates it", "PUT", "/api/v1/campaigns/" + id, other, ok(purchaseRule), []string{"If-Match", `"9"`}, 404, "not-found", "", ""},
		{"another tenant activates it", "POST", "/api/v1/campaigns/" + id + ":activate", other, nil, nil, 404, "not-found", "", ""},
		{"another tenant's list", "GET", "/api/v1/tenants/" + tenantID + "/campaigns", other, nil, nil, 404, "not-found", "", ""},
		{"another tenant's search", "GET", "/api/v1/campaigns/search?tenantId=" + tenantID + "&action=PURCHASE", other, nil, nil, 404, "not-found", "", ""},
		{"unknown campaign", "GET", "/api/v1/campaigns/" + uuid.NewString(), admin, nil, nil, 404, "not-found", "", ""},
		{"non-UUID campaign", "GET", "/api/v1/campaigns/festive", admin, nil, nil, 400, "malformed-request", "campaignId", ""},
		{"update with a stale If-Match", "PUT", "/api/v1/campaigns/" + id, admin, ok(purchaseRule), []string{"If-Match", `"7"`}, 409, "version-conflict", "", ""},
		{"update with an invalid rule", "PUT", "/api/v1/campaigns/" + id, admin, ok(`{"action":"purchase"}`), nil, 422, "validation-failed", "", ""},
		{"update naming a tenant", "PUT", "/api/v1/campaigns/" + id, admin, `{"tenantId":"` + tenantID + `","name":"x"}`, nil, 400, "malformed-request", "tenantId", ""},
		{"pause a draft", "POST", "/api/v1/campaigns/" + id + ":pause", admin, nil, nil, 409, "invalid-state-transition", "", ""},
		{"activate with a body", "POST", "/api/v1/campaigns/" + id + ":activate", admin, `{"now":true}`, nil, 400, "malformed-request", "now", ""},
		{"search without an action", "GET", "/api/v1/campaigns/search?tenantId=" + tenantID, admin, nil, nil, 400, "malformed-request", "action", ""},
		{"search without a tenant", "GET", "/api/v1/campaigns/search?action=PURCHASE", admin, nil, nil, 400, "malformed-request", "tenantId", ""},
		{"list with a bad status", "GET", "/api/v1/tenants/" + tenantID + "/campaigns?status=LIVE", admin, nil, nil, 400, "malformed-request", "status", ""},
		{"list with a bad time", "GET", "/api/v1/tenants/" + tenantID + "/campaigns?activeAt=now", admin, nil, nil, 400, "malformed-request", "activeAt", ""},
	}
	for _, tt := range tests {
		r := p.request(tt.method, tt.path, tt.token, tt.body, tt.headers...)
		if r.status != tt.status || r.header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s, want %d problem+json", tt.name, r.status, r.body, tt.status)
			continue
		}
		m := r.json(t)
		if m["type"] != "urn:incentives:problem:"+tt.problem {
			t.Errorf("%s: problem %v, want type %s", tt.name, m, tt.problem)
		}
		if tt.field == "" {
			continue
		}
		found := false
		errs, _ := m["errors"].([]any)
		for _, e := range errs {
			fe := e.(map[string]any)
			found = found || (fe["field"] == tt.field && strings.Contains(fe["message"].(string), tt.message))
		}
		if !found {
			t.Errorf("%s: errors %v, want %s: ...%s...", tt.name, errs, tt.field, tt.message)
		}
	}
	if after := p.eventCount(); after != before {
		t.Fatalf("bad requests appended %d events", after-before)
	}
}
