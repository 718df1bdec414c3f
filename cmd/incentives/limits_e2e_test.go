package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/adapters/auth"
)

func TestLimitsEndToEnd(t *testing.T) {
	t.Parallel()
	p := startPlatform(t, testConfig(t))
	admin := p.token(auth.RolePlatformAdmin, uuid.Nil)
	id := p.request("POST", "/api/v1/tenants", admin, `{"name":"Acme"}`).json(t)["tenantId"].(string)
	tenantAdmin := p.token(auth.RoleTenantAdmin, uuid.MustParse(id))
	base := "/api/v1/tenants/" + id

	// The tenant's admin replaces the GLOBAL caps at the version it saw; the
	// answer is the whole policy, the USER scope still at its defaults.
	set := p.request("POST", base+"/limits", tenantAdmin, `{"maxPerDay":500,"maxPerWindow":2000,"windowDays":7}`, "If-Match", `"1"`)
	if set.status != http.StatusOK || set.header.Get("ETag") != `"2"` || set.header.Get("Content-Type") != "application/json" {
		t.Fatalf("set GLOBAL: %d %v %s", set.status, set.header, set.body)
	}
	for _, want := range []string{
		`"tenantId":"` + id + `"`, `"version":2`,
		`{"scope":"GLOBAL","maxPerDay":500,"maxPerWindow":2000,"windowDays":7,"maxTotal":null}`,
		`{"scope":"USER","maxPerDay":10,"maxPerWindow":null,"windowDays":null,"maxTotal":null}`,
	} {
		if !strings.Contains(string(set.body), want) {
			t.Fatalf("set GLOBAL answered %s, want it to hold %s", set.body, want)
		}
	}
	// The read model shows exactly what the write answered.
	if got := p.request("GET", base+"/limits", tenantAdmin, nil, "X-Min-Version", "2"); got.status != http.StatusOK ||
		string(got.body) != string(set.body) || got.header.Get("ETag") != `"2"` {
		t.Fatalf("read back %d %s, set answered %s", got.status, got.body, set.body)
	}

	// A platform admin replaces the USER caps; absent caps are unbounded, 0 allows nothing.
	user := p.request("POST", base+"/user-limits", admin, `{"maxPerDay":null,"maxTotal":0}`)
	if user.status != http.StatusOK || user.header.Get("ETag") != `"3"` ||
		!strings.Contains(string(user.body), `{"scope":"USER","maxPerDay":null,"maxPerWindow":null,"windowDays":null,"maxTotal":0}`) ||
		!strings.Contains(string(user.body), `{"scope":"GLOBAL","maxPerDay":500,"maxPerWindow":2000,"windowDays":7,"maxTotal":null}`) {
		t.Fatalf("set USER: %d %v %s", user.status, user.header, user.body)
	}
	if got := p.request("GET", base+"/limits", admin, nil, "X-Min-Version", "3"); got.status != http.StatusOK || string(got.body) != string(user.body) {
		t.Fatalf("read back %d %s, set answered %s", got.status, got.body, user.body)
	}

	// Setting the caps a scope already has records nothing and answers the current state.
	before := p.eventCount()
	same := p.request("POST", base+"/user-limits", tenantAdmin, `{"maxTotal":0}`, "If-Match", `"3"`)
	if same.status != http.StatusOK || string(same.body) != string(user.body) || same.header.Get("ETag") != `"3"` {
		t.Fatalf("set the same USER caps: %d %s, want %s", same.status, same.body, user.body)
	}
	// A stale If-Match is a conflict, also when the caps would change nothing.
	for _, body := range []string{`{"maxPerDay":1}`, `{"maxPerDay":500,"maxPerWindow":2000,"windowDays":7}`} {
		stale := p.request("POST", base+"/limits", tenantAdmin, body, "If-Match", `"2"`)
		if stale.status != http.StatusConflict || stale.header.Get("Content-Type") != "application/problem+json" ||
			stale.json(t)["type"] != "urn:incentives:problem:version-conflict" {
			t.Fatalf("stale If-Match with %s: %d %s", body, stale.status, stale.body)
		}
	}
	if after := p.eventCount(); after != before {
		t.Fatalf("unchanged caps and stale writes appended %d events", after-before)
	}

	// A suspended tenant's limits can still change.
	if r := p.request("POST", base+":suspend", admin, nil); r.status != http.StatusOK {
		t.Fatalf("suspend: %d %s", r.status, r.body)
	}
	frozen := p.request("POST", base+"/limits", tenantAdmin, `{"maxPerDay":0}`, "If-Match", `"3"`)
	if frozen.status != http.StatusOK || frozen.header.Get("ETag") != `"4"` ||
		!strings.Contains(string(frozen.body), `{"scope":"GLOBAL","maxPerDay":0,"maxPerWindow":null,"windowDays":null,"maxTotal":null}`) {
		t.Fatalf("set limits of a suspended tenant: %d %s", frozen.status, frozen.body)
	}
	if got := p.request("GET", base+"/limits", tenantAdmin, nil, "X-Min-Version", "4"); got.status != http.StatusOK || string(got.body) != string(frozen.body) {
		t.Fatalf("read back %d %s, set answered %s", got.status, got.body, frozen.body)
	}
}

func TestBadLimitRequestsGetProblemsAndWriteNothing(t *testing.T) {
	t.Parallel()
	p := startPlatform(t, testConfig(t))
	admin := p.token(auth.RolePlatformAdmin, uuid.Nil)
	id := p.request("POST", "/api/v1/tenants", admin, `{"name":"Acme"}`).json(t)["tenantId"].(string)
	tenantAdmin := p.token(auth.RoleTenantAdmin, uuid.MustParse(id))
	base := "/api/v1/tenants/" + id
	before := p.eventCount()

	tests := []struct {
		name, path, token string
		body              any
		headers           []string
		status            int
		problem           string
	}{
		{"malformed JSON", base + "/limits", tenantAdmin, `{"maxPerDay": 5`, nil, 400, "malformed-request"},
		{"unknown field", base + "/limits", tenantAdmin, `{"maxPerDay":5,"maxPerHour":1}`, nil, 400, "malformed-request"},
		{"wrong type", base + "/limits", tenantAdmin, `{"maxPerDay":"ten"}`, nil, 400, "malformed-request"},
		{"fractional cap", base + "/user-limits", tenantAdmin, `{"maxTotal":1.5}`, nil, 400, "malformed-request"},
		{"cap beyond int64", base + "/limits", tenantAdmin, `{"maxTotal":99999999999999999999}`, nil, 400, "malformed-request"},
		{"array body", base + "/limits", tenantAdmin, `[{"maxPerDay":5}]`, nil, 400, "malformed-request"},
		{"empty body", base + "/limits", tenantAdmin, ``, nil, 400, "malformed-request"},
		{"negative cap", base + "/limits", tenantAdmin, `{"maxPerDay":-1}`, nil, 422, "validation-failed"},
		{"negative user cap", base + "/user-limits", tenantAdmin, `{"maxTotal":-5}`, nil, 422, "validation-failed"},
		{"windowDays without maxPerWindow", base + "/limits", tenantAdmin, `{"windowDays":7}`, nil, 422, "validation-failed"},
		{"maxPerWindow without windowDays", base + "/user-limits", tenantAdmin, `{"maxPerWindow":7}`, nil, 422, "validation-failed"},
		{"zero windowDays", base + "/limits", tenantAdmin, `{"maxPerWindow":7,"windowDays":0}`, nil, 422, "validation-failed"},
		{"window over a year", base + "/limits", tenantAdmin, `{"maxPerWindow":7,"windowDays":367}`, nil, 422, "validation-failed"},
		{"oversized body", base + "/limits", tenantAdmin, `{"maxPerDay":1` + strings.Repeat(" ", 2<<20) + `}`, nil, 413, "request-too-large"},
		{"wrong content type", base + "/limits", tenantAdmin, `{"maxPerDay":1}`, []string{"Content-Type", "text/plain"}, 415, "unsupported-media-type"},
		{"non-UUID tenant id", "/api/v1/tenants/acme/limits", admin, `{"maxPerDay":1}`, nil, 400, "malformed-request"},
		{"unparseable If-Match", base + "/limits", tenantAdmin, `{"maxPerDay":1}`, []string{"If-Match", "latest"}, 400, "malformed-request"},
		{"stale If-Match", base + "/user-limits", tenantAdmin, `{"maxPerDay":1}`, []string{"If-Match", `"5"`}, 409, "version-conflict"},
		{"unknown tenant", "/api/v1/tenants/" + uuid.NewString() + "/limits", admin, `{"maxPerDay":1}`, nil, 404, "not-found"},
		{"another tenant's admin", base + "/limits", p.token(auth.RoleTenantAdmin, uuid.New()), `{"maxPerDay":1}`, nil, 404, "not-found"},
		{"another tenant's admin, user scope", base + "/user-limits", p.token(auth.RoleTenantAdmin, uuid.New()), `{"maxPerDay":1}`, nil, 404, "not-found"},
		{"a user of the tenant", base + "/limits", p.token(auth.RoleUser, uuid.MustParse(id)), `{"maxPerDay":1}`, nil, 403, "forbidden"},
		{"a user of the tenant, user scope", base + "/user-limits", p.token(auth.RoleUser, uuid.MustParse(id)), `{"maxPerDay":1}`, nil, 403, "forbidden"},
		{"no token", base + "/limits", "", `{"maxPerDay":1}`, nil, 401, "unauthenticated"},
	}
	for _, tt := range tests {
		r := p.request("POST", tt.path, tt.token, tt.body, tt.headers...)
		if r.status != tt.status || r.header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s %.300s, want %d problem+json", tt.name, r.status, r.header.Get("Content-Type"), r.body, tt.status)
			continue
		}
		m := r.json(t)
		if m["type"] != "urn:incentives:problem:"+tt.problem || m["status"] != float64(tt.status) || m["detail"] == "" || m["requestId"] == "" {
			t.Errorf("%s: problem %v, want type %s", tt.name, m, tt.problem)
		}
		if tt.status == 422 && len(m["errors"].([]any)) == 0 {
			t.Errorf("%s: 422 without field errors: %v", tt.name, m)
		}
	}
	if after := p.eventCount(); after != before {
		t.Fatalf("bad requests appended %d events", after-before)
	}
}
