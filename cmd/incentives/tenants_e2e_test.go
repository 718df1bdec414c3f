package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/adapters/auth"
	"github.com/incentives-platform/incentives/adapters/avro"
	"github.com/incentives-platform/incentives/adapters/kafka/kafkatest"
	"github.com/incentives-platform/incentives/domain/tenant"
)

func TestTenantEndToEnd(t *testing.T) {
	t.Parallel()
	p := startPlatform(t, testConfig(t))
	admin := p.token(auth.RolePlatformAdmin, uuid.Nil)

	created := p.request("POST", "/api/v1/tenants", admin, `{"name":"  Acme Bank "}`)
	if created.status != http.StatusCreated {
		t.Fatalf("create: %d %s", created.status, created.body)
	}
	body := created.json(t)
	id := body["tenantId"].(string)
	if body["name"] != "Acme Bank" || body["status"] != "ACTIVE" || body["version"] != 1.0 || created.header.Get("ETag") != `"1"` ||
		created.header.Get("Location") != "/api/v1/tenants/"+id || created.header.Get("X-Request-Id") == "" {
		t.Fatalf("create answered %v with headers %v", body, created.header)
	}

	// Reads come from the projection; asking for at least the version of our
	// own write waits for it, so the first read already sees what the command
	// returned.
	got := p.request("GET", "/api/v1/tenants/"+id, admin, nil, "X-Min-Version", "1")
	if got.status != http.StatusOK || string(got.body) != string(created.body) {
		t.Fatalf("read back %d %s, created %s", got.status, got.body, created.body)
	}
	limits := p.request("GET", "/api/v1/tenants/"+id+"/limits", admin, nil, "X-Min-Version", "1")
	if !strings.Contains(string(limits.body), `{"scope":"GLOBAL","maxPerDay":100000,"maxPerWindow":null,"windowDays":null,"maxTotal":null}`) ||
		!strings.Contains(string(limits.body), `{"scope":"USER","maxPerDay":10,`) {
		t.Fatalf("default limits = %s", limits.body)
	}

	// The event reached its topic, keyed by tenant id, Avro single-object encoded.
	reg, _, err := avro.LoadPlatform()
	if err != nil {
		t.Fatal(err)
	}
	recs := kafkatest.ReadN(t, p.app.Brokers(), 1, 15*time.Second, "ic.domain.tenant")
	schema, value, err := reg.Decode(recs[0].Value)
	if err != nil || schema.Name != tenant.CreatedType || recs[0].Key != id || value["name"] != "Acme Bank" ||
		recs[0].Headers["correlation-id"] != created.header.Get("X-Request-Id") || recs[0].Headers["actor"] != "platform-admin:test-platform-admin" {
		t.Fatalf("record %+v decodes to %v %v (%v)", recs[0], schema, value, err)
	}

	// Lifecycle with optimistic concurrency.
	suspended := p.request("POST", "/api/v1/tenants/"+id+":suspend", admin, `{"reason":"audit"}`, "If-Match", `"1"`)
	if suspended.status != http.StatusOK || suspended.json(t)["status"] != "SUSPENDED" || suspended.header.Get("ETag") != `"2"` {
		t.Fatalf("suspend: %d %s", suspended.status, suspended.body)
	}
	again := p.request("POST", "/api/v1/tenants/"+id+":suspend", admin, nil)
	if again.status != http.StatusConflict || again.json(t)["type"] != "urn:incentives:problem:invalid-state-transition" {
		t.Fatalf("suspend twice: %d %s", again.status, again.body)
	}
	stale := p.request("POST", "/api/v1/tenants/"+id+":reactivate", admin, nil, "If-Match", `"1"`)
	if stale.status != http.StatusConflict || stale.json(t)["type"] != "urn:incentives:problem:version-conflict" {
		t.Fatalf("reactivate with a stale If-Match: %d %s", stale.status, stale.body)
	}
	reactivated := p.request("POST", "/api/v1/tenants/"+id+":reactivate", admin, nil, "If-Match", `"2"`)
	if reactivated.status != http.StatusOK || reactivated.json(t)["version"] != 3.0 {
		t.Fatalf("reactivate: %d %s", reactivated.status, reactivated.body)
	}
	if r := p.request("GET", "/api/v1/tenants/"+id, admin, nil, "X-Min-Version", "3"); r.status != http.StatusOK ||
		r.json(t)["version"] != 3.0 || r.json(t)["status"] != "ACTIVE" {
		t.Fatalf("read at version 3: %d %s", r.status, r.body)
	}

	// A tenant admin reads its own tenant, and nothing else exists for it.
	own := p.request("GET", "/api/v1/tenants/"+id, p.token(auth.RoleTenantAdmin, uuid.MustParse(id)), nil)
	if own.status != http.StatusOK {
		t.Fatalf("tenant admin reading its tenant: %d %s", own.status, own.body)
	}
}

func TestListTenantsPagesThroughEveryTenant(t *testing.T) {
	t.Parallel()
	p := startPlatform(t, testConfig(t))
	admin := p.token(auth.RolePlatformAdmin, uuid.Nil)
	want := map[string]bool{}
	for i := range 5 {
		r := p.request("POST", "/api/v1/tenants", admin, fmt.Sprintf(`{"name":"T%d"}`, i))
		want[r.json(t)["tenantId"].(string)] = true
	}
	seen := map[string]bool{}
	eventually(t, "all five listed", func() bool {
		clear(seen)
		cursor := ""
		for pages := 0; pages < 10; pages++ {
			r := p.request("GET", "/api/v1/tenants?limit=2&cursor="+cursor, admin, nil)
			if r.status != http.StatusOK {
				t.Fatalf("list: %d %s", r.status, r.body)
			}
			m := r.json(t)
			for _, it := range m["items"].([]any) {
				seen[it.(map[string]any)["tenantId"].(string)] = true
			}
			next, _ := m["nextCursor"].(string)
			if next == "" {
				break
			}
			cursor = next
		}
		return len(seen) == len(want)
	})
	for id := range want {
		if !seen[id] {
			t.Fatalf("tenant %s never listed", id)
		}
	}
}

func TestBadRequestsGetProblemsAndWriteNothing(t *testing.T) {
	t.Parallel()
	p := startPlatform(t, testConfig(t))
	admin := p.token(auth.RolePlatformAdmin, uuid.Nil)
	existing := p.request("POST", "/api/v1/tenants", admin, `{"name":"Existing"}`).json(t)["tenantId"].(string)
	otherTenant := uuid.New()
	eventually(t, "tenant readable", func() bool {
		return p.request("GET", "/api/v1/tenants/"+existing, admin, nil).status == http.StatusOK
	})
	before := p.eventCount()

	expired, err := p.auth.Issue(auth.Principal{Subject: "ops", Role: auth.RolePlatformAdmin}, -time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := mustAuthenticator(t, strings.Repeat("f", 32)).Issue(auth.Principal{Subject: "ops", Role: auth.RolePlatformAdmin}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, method, path, token string
		body                      any
		headers                   []string
		status                    int
		problem                   string
	}{
		{"malformed JSON", "POST", "/api/v1/tenants", admin, `{"name": "x"`, nil, 400, "malformed-request"},
		{"not JSON", "POST", "/api/v1/tenants", admin, `name=x`, nil, 400, "malformed-request"},
		{"unknown field", "POST", "/api/v1/tenants", admin, `{"name":"x","plan":"gold"}`, nil, 400, "malformed-request"},
		{"wrong type", "POST", "/api/v1/tenants", admin, `{"name":42}`, nil, 400, "malformed-request"},
		{"array body", "POST", "/api/v1/tenants", admin, `["x"]`, nil, 400, "malformed-request"},
		{"two values", "POST", "/api/v1/tenants", admin, `{"name":"x"}{"name":"y"}`, nil, 400, "malformed-request"},
		{"empty body", "POST", "/api/v1/tenants", admin, ``, nil, 400, "malformed-request"},
		{"missing name", "POST", "/api/v1/tenants", admin, `{}`, nil, 422, "validation-failed"},
		{"null name", "POST", "/api/v1/tenants", admin, `{"name":null}`, nil, 422, "validation-failed"},
		{"empty name", "POST", "/api/v1/tenants", admin, `{"name":"   "}`, nil, 422, "validation-failed"},
		{"oversized name", "POST", "/api/v1/tenants", admin, `{"name":"` + strings.Repeat("n", tenant.MaxNameLength+1) + `"}`, nil, 422, "validation-failed"},
		{"oversized body", "POST", "/api/v1/tenants", admin, `{"name":"` + strings.Repeat("n", 2<<20) + `"}`, nil, 413, "request-too-large"},
		{"wrong content type", "POST", "/api/v1/tenants", admin, `{"name":"x"}`, []string{"Content-Type", "text/plain"}, 415, "unsupported-media-type"},
		{"no token", "POST", "/api/v1/tenants", "", `{"name":"x"}`, nil, 401, "unauthenticated"},
		{"not a bearer token", "POST", "/api/v1/tenants", "", `{"name":"x"}`, []string{"Authorization", "Basic b3BzOnB3"}, 401, "unauthenticated"},
		{"expired token", "POST", "/api/v1/tenants", expired, `{"name":"x"}`, nil, 401, "unauthenticated"},
		{"forged token", "POST", "/api/v1/tenants", forged, `{"name":"x"}`, nil, 401, "unauthenticated"},
		{"tenant admin creating a tenant", "POST", "/api/v1/tenants", p.token(auth.RoleTenantAdmin, otherTenant), `{"name":"x"}`, nil, 403, "forbidden"},
		{"user reading a tenant", "GET", "/api/v1/tenants/" + existing, p.token(auth.RoleUser, uuid.MustParse(existing)), nil, nil, 403, "forbidden"},
		{"another tenant's admin", "GET", "/api/v1/tenants/" + existing, p.token(auth.RoleTenantAdmin, otherTenant), nil, nil, 404, "not-found"},
		{"another tenant's limits", "GET", "/api/v1/tenants/" + existing + "/limits", p.token(auth.RoleTenantAdmin, otherTenant), nil, nil, 404, "not-found"},
		{"tenant admin listing tenants", "GET", "/api/v1/tenants", p.token(auth.RoleTenantAdmin, otherTenant), nil, nil, 403, "forbidden"},
		{"non-UUID id", "GET", "/api/v1/tenants/acme", admin, nil, nil, 400, "malformed-request"},
		{"unknown tenant", "GET", "/api/v1/tenants/" + otherTenant.String(), admin, nil, nil, 404, "not-found"},
		{"suspend an unknown tenant", "POST", "/api/v1/tenants/" + otherTenant.String() + ":suspend", admin, nil, nil, 404, "not-found"},
		{"suspend with a stale If-Match", "POST", "/api/v1/tenants/" + existing + ":suspend", admin, nil, []string{"If-Match", `"7"`}, 409, "version-conflict"},
		{"unparseable If-Match", "POST", "/api/v1/tenants/" + existing + ":suspend", admin, nil, []string{"If-Match", `"latest"`}, 400, "malformed-request"},
		{"suspend with an unknown field", "POST", "/api/v1/tenants/" + existing + ":suspend", admin, `{"why":"x"}`, nil, 400, "malformed-request"},
		{"tenant admin suspending itself", "POST", "/api/v1/tenants/" + existing + ":suspend", p.token(auth.RoleTenantAdmin, uuid.MustParse(existing)), nil, nil, 403, "forbidden"},
		{"unparseable X-Min-Version", "GET", "/api/v1/tenants/" + existing, admin, nil, []string{"X-Min-Version", "soon"}, 400, "malformed-request"},
		{"bad page size", "GET", "/api/v1/tenants?limit=0", admin, nil, nil, 400, "malformed-request"},
		{"bad cursor", "GET", "/api/v1/tenants?cursor=%21%21", admin, nil, nil, 400, "malformed-request"},
		{"unknown route", "GET", "/api/v1/nothing", admin, nil, nil, 404, "not-found"},
		{"wrong method", "DELETE", "/api/v1/tenants", admin, nil, nil, 405, "method-not-allowed"},
	}
	for _, tt := range tests {
		r := p.request(tt.method, tt.path, tt.token, tt.body, tt.headers...)
		if r.status != tt.status || r.header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s %s, want %d problem+json", tt.name, r.status, r.header.Get("Content-Type"), r.body, tt.status)
			continue
		}
		m := r.json(t)
		if m["type"] != "urn:incentives:problem:"+tt.problem || m["status"] != float64(tt.status) || m["title"] == "" || m["detail"] == "" || m["requestId"] == "" {
			t.Errorf("%s: problem %v, want type %s", tt.name, m, tt.problem)
		}
		if tt.status == 401 && r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", tt.name)
		}
		if tt.name == "expired token" && m["detail"] != "the bearer token has expired" {
			t.Errorf("expired token: detail %q", m["detail"])
		}
	}
	if after := p.eventCount(); after != before {
		t.Fatalf("bad requests appended %d events", after-before)
	}
}

func mustAuthenticator(t *testing.T, secret string) *auth.Authenticator {
	t.Helper()
	a, err := auth.New([]byte(secret), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestReadingAVersionNotYetProjectedIsA503(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.ReadWait = 200 * time.Millisecond
	p := startPlatform(t, cfg)
	admin := p.token(auth.RolePlatformAdmin, uuid.Nil)
	id := p.request("POST", "/api/v1/tenants", admin, `{"name":"Acme"}`).json(t)["tenantId"].(string)
	eventually(t, "tenant projected", func() bool {
		return p.request("GET", "/api/v1/tenants/"+id, admin, nil).status == http.StatusOK
	})
	r := p.request("GET", "/api/v1/tenants/"+id, admin, nil, "X-Min-Version", "9")
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" || r.json(t)["type"] != "urn:incentives:problem:not-caught-up" {
		t.Fatalf("read of a version never written: %d %v %s", r.status, r.header, r.body)
	}
	if r := p.request("GET", "/api/v1/tenants/"+uuid.NewString(), admin, nil, "X-Min-Version", "1"); r.status != http.StatusNotFound {
		t.Fatalf("read of an unknown tenant with X-Min-Version: %d %s", r.status, r.body)
	}
}
