package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/adapters/auth"
	"github.com/incentives-platform/incentives/adapters/avro"
	"github.com/incentives-platform/incentives/adapters/kafka/kafkatest"
	"github.com/incentives-platform/incentives/domain/cohort"
)

// createTestTenant creates a tenant as a platform admin and returns its id
// and a token of its admin.
func (p *testPlatform) createTestTenant(name string) (uuid.UUID, string) {
	p.t.Helper()
	r := p.request("POST", "/api/v1/tenants", p.token(auth.RolePlatformAdmin, uuid.Nil), `{"name":"`+name+`"}`)
	if r.status != http.StatusCreated {
		p.t.Fatalf("create tenant: %d %s", r.status, r.body)
	}
	id := uuid.MustParse(r.json(p.t)["tenantId"].(string))
	return id, p.token(auth.RoleTenantAdmin, id)
}

// recordActions writes action events to the action-event log directly, as
// the engine will: n actions of code by user, each with payload.amount.
func (p *testPlatform) recordActions(tenantID uuid.UUID, userID, code string, n int, amount string) {
	p.t.Helper()
	for range n {
		_, err := p.db.Pool.Exec(context.Background(), `INSERT INTO event (event_id, tenant_id, user_id, action_code, event_ts, payload)
			VALUES ($1, $2, $3, $4, now(), jsonb_build_object('amount', $5::numeric))`, uuid.New(), tenantID, userID, code, amount)
		if err != nil {
			p.t.Fatal(err)
		}
	}
}

func (p *testPlatform) count(query string, args ...any) int {
	p.t.Helper()
	var n int
	if err := p.db.Pool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		p.t.Fatal(err)
	}
	return n
}

// awaitJob polls a cohort job until it has ended, and returns it.
func (p *testPlatform) awaitJob(token, location string) map[string]any {
	p.t.Helper()
	var job map[string]any
	eventually(p.t, "job "+location+" ends", func() bool {
		r := p.request("GET", location, token, nil)
		if r.status != http.StatusOK {
			p.t.Fatalf("poll %s: %d %s", location, r.status, r.body)
		}
		job = r.json(p.t)
		return job["status"] == "SUCCEEDED" || job["status"] == "FAILED"
	})
	return job
}

func cohortTestConfig(t *testing.T) Config {
	cfg := testConfig(t)
	cfg.CohortRecomputeEvery = 0 // only what the test asks for
	return cfg
}

func TestCohortEndToEnd(t *testing.T) {
	t.Parallel()
	p := startPlatform(t, cohortTestConfig(t))
	tenantID, tenantAdmin := p.createTestTenant("Acme")
	admin := p.token(auth.RolePlatformAdmin, uuid.Nil)

	// STATIC: the list is stored once per distinct id; the cohort is computed when created.
	created := p.request("POST", "/api/v1/cohorts", tenantAdmin, `{"name":" VIPs ","kind":"STATIC","userIds":["u-1","u-2","u-1","ユーザー"]}`)
	if created.status != http.StatusCreated || created.header.Get("ETag") != `"1"` {
		t.Fatalf("create STATIC: %d %v %s", created.status, created.header, created.body)
	}
	static := created.json(t)
	staticID := static["cohortId"].(string)
	if static["tenantId"] != tenantID.String() || static["name"] != "VIPs" || static["kind"] != "STATIC" || static["rule"] != nil ||
		static["memberCount"] != 3.0 || static["computedAt"] != static["createdAt"] || static["version"] != 1.0 || static["lastJob"] != nil ||
		created.header.Get("Location") != "/api/v1/cohorts/"+staticID {
		t.Fatalf("create STATIC answered %s with Location %q", created.body, created.header.Get("Location"))
	}
	got := p.request("GET", "/api/v1/cohorts/"+staticID, tenantAdmin, nil, "X-Min-Version", "1")
	if got.status != http.StatusOK || string(got.body) != string(created.body) || got.header.Get("ETag") != `"1"` {
		t.Fatalf("read back %d %s, created %s", got.status, got.body, created.body)
	}
	var generation uuid.UUID
	if err := p.db.Pool.QueryRow(context.Background(), `SELECT members_generation FROM cohort WHERE cohort_id = $1`, staticID).Scan(&generation); err != nil {
		t.Fatal(err)
	}
	if n := p.count(`SELECT count(*) FROM cohort_member WHERE generation = $1 AND user_id IN ('u-1', 'u-2', 'ユーザー')`, generation); n != 3 {
		t.Fatalf("member set %s holds %d of the 3 members", generation, n)
	}

	// The event reached ic.domain.cohort, naming the set rather than carrying it.
	reg, _, err := avro.LoadPlatform()
	if err != nil {
		t.Fatal(err)
	}
	recs := kafkatest.ReadN(t, p.app.Brokers(), 1, 15*time.Second, "ic.domain.cohort")
	schema, value, err := reg.Decode(recs[0].Value)
	if err != nil || schema.Name != cohort.CreatedType || recs[0].Key != staticID || value["memberCount"] != int64(3) {
		t.Fatalf("record %+v decodes to %v %v (%v)", recs[0], schema, value, err)
	}

	// A platform admin names the tenant; a 1.3 MB list is streamed, with the
	// list before the other fields.
	var big bytes.Buffer
	big.WriteString(`{"userIds":[`)
	for i := range 100_000 {
		if i > 0 {
			big.WriteByte(',')
		}
		fmt.Fprintf(&big, `"user-%07d"`, i)
	}
	big.WriteString(`],"kind":"STATIC","name":"Everyone","tenantId":"` + tenantID.String() + `"}`)
	if big.Len() <= 1<<20 {
		t.Fatalf("the big list is only %d bytes", big.Len())
	}
	large := p.request("POST", "/api/v1/cohorts", admin, big.Bytes())
	if large.status != http.StatusCreated || large.json(t)["memberCount"] != 100_000.0 {
		t.Fatalf("create a 100,000-member cohort: %d %s", large.status, large.body)
	}

	// DYNAMIC: the first computation is queued at creation and runs over the
	// tenant's action log (and only this tenant's).
	other, _ := p.createTestTenant("Other")
	p.recordActions(tenantID, "alice", "PURCHASE", 3, "400")
	p.recordActions(tenantID, "bob", "PURCHASE", 1, "5000")
	p.recordActions(tenantID, "carol", "LOGIN", 5, "0")
	p.recordActions(other, "dave", "PURCHASE", 3, "400")
	rule := `user.counts['PURCHASE'] >= 3 && user.amounts['PURCHASE'] >= 1000.0`
	body, _ := json.Marshal(map[string]string{"name": "Buyers", "kind": "DYNAMIC", "rule": rule})
	dyn := p.request("POST", "/api/v1/cohorts", tenantAdmin, body)
	if dyn.status != http.StatusCreated {
		t.Fatalf("create DYNAMIC: %d %s", dyn.status, dyn.body)
	}
	d := dyn.json(t)
	dynID := d["cohortId"].(string)
	firstJob, _ := d["lastJob"].(map[string]any)
	if d["rule"] != rule || d["memberCount"] != 0.0 || d["computedAt"] != nil || firstJob == nil || firstJob["status"] != "QUEUED" ||
		!strings.Contains(string(dyn.body), `>= 3 &&`) {
		t.Fatalf("create DYNAMIC answered %s", dyn.body)
	}
	job := p.awaitJob(tenantAdmin, "/api/v1/cohorts/"+dynID+"/jobs/"+firstJob["jobId"].(string))
	if job["status"] != "SUCCEEDED" || job["memberCount"] != 1.0 || job["totalUsers"] != 3.0 || job["processedUsers"] != 3.0 ||
		job["progress"] != 1.0 || job["cohortVersion"] != 2.0 || job["error"] != nil || job["finishedAt"] == nil {
		t.Fatalf("first job: %v", job)
	}
	read := p.request("GET", "/api/v1/cohorts/"+dynID, tenantAdmin, nil, "X-Min-Version", "2")
	r := read.json(t)
	if read.status != http.StatusOK || r["memberCount"] != 1.0 || r["computedAt"] == nil || r["version"] != 2.0 ||
		r["lastJob"].(map[string]any)["jobId"] != firstJob["jobId"] {
		t.Fatalf("read after the first job: %d %s", read.status, read.body)
	}

	// Bob buys more; a recomputation is asked for, polled, and finds him.
	p.recordActions(tenantID, "bob", "PURCHASE", 2, "1.5")
	rec := p.request("POST", "/api/v1/cohorts/"+dynID+":recompute", tenantAdmin, nil)
	location := rec.header.Get("Location")
	if rec.status != http.StatusAccepted || rec.json(t)["cohortId"] != dynID || !strings.HasPrefix(location, "/api/v1/cohorts/"+dynID+"/jobs/") {
		t.Fatalf("recompute: %d %v %s", rec.status, rec.header, rec.body)
	}
	job = p.awaitJob(tenantAdmin, location)
	if job["status"] != "SUCCEEDED" || job["memberCount"] != 2.0 || job["progress"] != 1.0 || job["cohortVersion"] != 3.0 {
		t.Fatalf("second job: %v", job)
	}
	if r := p.request("GET", "/api/v1/cohorts/"+dynID, admin, nil, "X-Min-Version", "3"); r.status != http.StatusOK || r.json(t)["memberCount"] != 2.0 {
		t.Fatalf("read after the second job: %d %s", r.status, r.body)
	}

	// A STATIC list is fixed.
	if r := p.request("POST", "/api/v1/cohorts/"+staticID+":recompute", tenantAdmin, nil); r.status != http.StatusConflict ||
		r.json(t)["type"] != "urn:incentives:problem:invalid-state-transition" {
		t.Fatalf("recompute STATIC: %d %s", r.status, r.body)
	}
}

// Asking for a recomputation while one is queued or running gets that job.
func TestCohortRecomputeQueuesOneJobAtATime(t *testing.T) {
	t.Parallel()
	cfg := cohortTestConfig(t)
	cfg.Roles = roleAPI + "," + roleRelay // no job runner: jobs stay queued
	p := startPlatform(t, cfg)
	_, tenantAdmin := p.createTestTenant("Acme")
	d := p.request("POST", "/api/v1/cohorts", tenantAdmin, `{"name":"All","kind":"DYNAMIC","rule":"user.total > 0"}`).json(t)
	first := d["lastJob"].(map[string]any)["jobId"]
	for range 3 {
		r := p.request("POST", "/api/v1/cohorts/"+d["cohortId"].(string)+":recompute", tenantAdmin, `{}`)
		if r.status != http.StatusAccepted || r.json(t)["jobId"] != first || r.json(t)["status"] != "QUEUED" || r.json(t)["progress"] != 0.0 {
			t.Fatalf("recompute while queued: %d %s, want job %v", r.status, r.body, first)
		}
	}
	if n := p.count(`SELECT count(*) FROM cohort_job`); n != 1 {
		t.Fatalf("%d jobs queued, want 1", n)
	}
}

func TestCohortBadRequestsAnswerProblemsAndStoreNothing(t *testing.T) {
	t.Parallel()
	cfg := cohortTestConfig(t)
	cfg.ReadWait = time.Second // another tenant's cohort read at a version waits it out, like an unknown one
	p := startPlatform(t, cfg)
	tenantID, tenantAdmin := p.createTestTenant("Acme")
	otherID, otherAdmin := p.createTestTenant("Other")
	admin := p.token(auth.RolePlatformAdmin, uuid.Nil)
	existing := p.request("POST", "/api/v1/cohorts", tenantAdmin, `{"name":"VIPs","kind":"STATIC","userIds":["u-1"]}`).json(t)["cohortId"].(string)
	eventually(t, "cohort readable", func() bool {
		return p.request("GET", "/api/v1/cohorts/"+existing, tenantAdmin, nil).status == http.StatusOK
	})
	events, members, jobs := p.eventCount(), p.count(`SELECT count(*) FROM cohort_member`), p.count(`SELECT count(*) FROM cohort_job`)

	// A list whose bad id comes after a whole batch was stored.
	var ids []string
	for i := range 10_001 {
		ids = append(ids, strconv.Quote(fmt.Sprint("u-", i)))
	}
	ids = append(ids, `""`)
	lateBadID := `{"name":"x","kind":"STATIC","userIds":[` + strings.Join(ids, ",") + `]}`
	// A good list followed by a refusal of the rest.
	listThenNoName := `{"kind":"STATIC","userIds":[` + strings.Join(ids[:10_001], ",") + `]}`
	tests := []struct {
		name, method, path, token string
		body                      any
		status                    int
		problem                   string
		field                     string // the first errors[].field, if any
		detail                    string // a part of the detail, if any
	}{
		{"malformed JSON", "POST", "/api/v1/cohorts", tenantAdmin, `{"name":"x","kind":"STATIC","userIds":["a",`, 400, "malformed-request", "", "ends in the middle"},
		{"syntax error", "POST", "/api/v1/cohorts", tenantAdmin, `{"name" "x"}`, 400, "malformed-request", "", "malformed JSON"},
		{"empty body", "POST", "/api/v1/cohorts", tenantAdmin, ``, 400, "malformed-request", "", "empty"},
		{"array body", "POST", "/api/v1/cohorts", tenantAdmin, `["x"]`, 400, "malformed-request", "", "JSON object"},
		{"two values", "POST", "/api/v1/cohorts", tenantAdmin, `{"name":"x","kind":"STATIC","userIds":["a"]} {}`, 400, "malformed-request", "", "more than one"},
		{"unknown field", "POST", "/api/v1/cohorts", tenantAdmin, `{"name":"x","kind":"STATIC","members":["a"]}`, 400, "malformed-request", "members", ""},
		{"field twice", "POST", "/api/v1/cohorts", tenantAdmin, `{"name":"x","kind":"STATIC","userIds":["a"],"userIds":["b"]}`, 400, "malformed-request", "userIds", ""},
		{"name of the wrong type", "POST", "/api/v1/cohorts", tenantAdmin, `{"name":42,"kind":"STATIC","userIds":["a"]}`, 400, "malformed-request", "name", "not number"},
		{"userIds of the wrong type", "POST", "/api/v1/cohorts", tenantAdmin, `{"name":"x","kind":"STATIC","userIds":"a"}`, 400, "malformed-request", "userIds", "must be an array"},
		{"a user id of the wrong type", "POST", "/api/v1/cohorts", tenantAdmin, `{"name":"x","kind":"STATIC","userIds":["a",7]}`, 400, "malformed-request", "userIds[1]", "not number"},
		{"non-UUID tenantId", "POST", "/api/v1/cohorts", admin, `{"tenantId":"acme","name":"x","kind":"STATIC","userIds":["a"]}`, 400, "malformed-request", "tenantId", ""},
		{"missing name", "POST", "/api/v1/cohorts", tenantAdmin, `{"kind":"STATIC","userIds":["a"]}`, 422, "validation-failed", "name", ""},
		{"list, then no name", "POST", "/api/v1/cohorts", tenantAdmin, listThenNoName, 422, "validation-failed", "name", ""},
		{"bad kind", "POST", "/api/v1/cohorts", tenantAdmin, `{"name":"x","kind":"SOME"}`, 422, "validation-failed", "kind", ""},
		{"empty user id", "POST", "/api/v1/cohorts", tenantAdmin, `{"name":"x","kind":"STATIC","userIds":["a",""]}`, 422, "validation-failed", "userIds[1]", ""},
		{"too long user id", "POST", "/api/v1/cohorts", tenantAdmin, `{"name":"x","kind":"STATIC","userIds":["` + strings.Repeat("u", cohort.MaxUserIDLength+1) + `"]}`, 422, "validation-failed", "userIds[0]", "at most 128"},
		{"bad id after a stored batch", "POST", "/api/v1/cohorts", tenantAdmin, lateBadID, 422, "validation-failed", "userIds[10001]", ""},
		{"STATIC without a list", "POST", "/api/v1/cohorts", tenantAdmin, `{"name":"x","kind":"STATIC"}`, 422, "validation-failed", "userIds", ""},
		{"both userIds and rule", "POST", "/api/v1/cohorts", tenantAdmin, `{"name":"x","kind":"DYNAMIC","rule":"user.total > 1","userIds":["a"]}`, 422, "validation-failed", "userIds", ""},
		{"both rule and userIds", "POST", "/api/v1/cohorts", tenantAdmin, `{"name":"x","kind":"STATIC","rule":"user.total > 1","userIds":["a"]}`, 422, "validation-failed", "rule", ""},
		{"invalid CEL", "POST", "/api/v1/cohorts", tenantAdmin, `{"name":"x","kind":"DYNAMIC","rule":"user.counts['PURCHASE'] >= "}`, 422, "validation-failed", "rule", "line 1, column"},
		{"rule over an unknown variable", "POST", "/api/v1/cohorts", tenantAdmin, `{"name":"x","kind":"DYNAMIC","rule":"event.total > 1"}`, 422, "validation-failed", "rule", "line 1, column"},
		{"platform admin without tenantId", "POST", "/api/v1/cohorts", admin, `{"name":"x","kind":"STATIC","userIds":["a"]}`, 422, "validation-failed", "tenantId", "required"},
		{"platform admin, unknown tenant", "POST", "/api/v1/cohorts", admin, `{"tenantId":"` + uuid.NewString() + `","name":"x","kind":"STATIC","userIds":["a"]}`, 422, "validation-failed", "tenantId", "no such tenant"},
		{"tenant admin naming another tenant", "POST", "/api/v1/cohorts", tenantAdmin, `{"tenantId":"` + otherID.String() + `","name":"x","kind":"STATIC","userIds":["a"]}`, 422, "validation-failed", "tenantId", "no such tenant"},
		{"wrong content type", "POST", "/api/v1/cohorts", tenantAdmin, `{}`, 415, "unsupported-media-type", "", ""},
		{"no token", "POST", "/api/v1/cohorts", "", `{"name":"x","kind":"STATIC","userIds":["a"]}`, 401, "unauthenticated", "", ""},
		{"user role creating", "POST", "/api/v1/cohorts", p.token(auth.RoleUser, tenantID), `{"name":"x","kind":"STATIC","userIds":["a"]}`, 403, "forbidden", "", ""},
		{"user role reading", "GET", "/api/v1/cohorts/" + existing, p.token(auth.RoleUser, tenantID), nil, 403, "forbidden", "", ""},
		{"another tenant's cohort", "GET", "/api/v1/cohorts/" + existing, otherAdmin, nil, 404, "not-found", "", ""},
		{"another tenant's cohort at a version", "GET", "/api/v1/cohorts/" + existing, otherAdmin, nil, 404, "not-found", "", ""},
		{"recompute another tenant's cohort", "POST", "/api/v1/cohorts/" + existing + ":recompute", otherAdmin, nil, 404, "not-found", "", ""},
		{"unknown cohort", "GET", "/api/v1/cohorts/" + uuid.NewString(), admin, nil, 404, "not-found", "", ""},
		{"recompute an unknown cohort", "POST", "/api/v1/cohorts/" + uuid.NewString() + ":recompute", admin, nil, 404, "not-found", "", ""},
		{"recompute with a body field", "POST", "/api/v1/cohorts/" + existing + ":recompute", tenantAdmin, `{"force":true}`, 400, "malformed-request", "force", ""},
		{"non-UUID cohort id", "GET", "/api/v1/cohorts/vips", admin, nil, 400, "malformed-request", "cohortId", ""},
		{"unknown job", "GET", "/api/v1/cohorts/" + existing + "/jobs/" + uuid.NewString(), tenantAdmin, nil, 404, "not-found", "", ""},
		{"non-UUID job id", "GET", "/api/v1/cohorts/" + existing + "/jobs/last", tenantAdmin, nil, 400, "malformed-request", "jobId", ""},
	}
	for _, tt := range tests {
		var headers []string
		switch tt.name {
		case "wrong content type":
			headers = []string{"Content-Type", "text/plain"}
		case "another tenant's cohort at a version":
			headers = []string{"X-Min-Version", "1"}
		}
		r := p.request(tt.method, tt.path, tt.token, tt.body, headers...)
		if r.status != tt.status || r.header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s %.300s, want %d problem+json", tt.name, r.status, r.header.Get("Content-Type"), r.body, tt.status)
			continue
		}
		m := r.json(t)
		detail, _ := m["detail"].(string)
		if m["type"] != "urn:incentives:problem:"+tt.problem || m["status"] != float64(tt.status) || detail == "" || m["requestId"] == "" ||
			!strings.Contains(detail, tt.detail) {
			t.Errorf("%s: problem %v, want type %s and a detail with %q", tt.name, m, tt.problem, tt.detail)
		}
		if tt.field != "" {
			errs, _ := m["errors"].([]any)
			if len(errs) == 0 || errs[0].(map[string]any)["field"] != tt.field {
				t.Errorf("%s: errors %v, want the first about %s", tt.name, m["errors"], tt.field)
			}
		}
	}
	if n := p.eventCount(); n != events {
		t.Errorf("bad requests appended %d events", n-events)
	}
	if n := p.count(`SELECT count(*) FROM cohort_member`); n != members {
		t.Errorf("bad requests left %d member rows behind", n-members)
	}
	if n := p.count(`SELECT count(*) FROM cohort_job`); n != jobs {
		t.Errorf("bad requests queued %d jobs", n-jobs)
	}
}

// A body over COHORT_MAX_BODY_BYTES is refused whole, after what was stored
// of it is deleted.
func TestCohortBodyCap(t *testing.T) {
	t.Parallel()
	cfg := cohortTestConfig(t)
	cfg.CohortMaxBodyBytes = 200 << 10
	p := startPlatform(t, cfg)
	_, tenantAdmin := p.createTestTenant("Acme")
	var body bytes.Buffer
	body.WriteString(`{"name":"x","kind":"STATIC","userIds":[`)
	for i := range 30_000 {
		fmt.Fprintf(&body, `"user-%07d",`, i)
	}
	body.WriteString(`"last"]}`)
	r := p.request("POST", "/api/v1/cohorts", tenantAdmin, body.Bytes())
	if r.status != http.StatusRequestEntityTooLarge || r.json(t)["type"] != "urn:incentives:problem:request-too-large" {
		t.Fatalf("oversized list: %d %s", r.status, r.body)
	}
	if n := p.count(`SELECT count(*) FROM cohort_member`); n != 0 {
		t.Fatalf("an oversized list left %d members behind", n)
	}
}
