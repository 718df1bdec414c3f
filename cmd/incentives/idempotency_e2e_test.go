package main

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/adapters/auth"
)

func TestIdempotencyKeyEndToEnd(t *testing.T) {
	t.Parallel()
	p := startPlatform(t, testConfig(t))
	admin := p.token(auth.RolePlatformAdmin, uuid.Nil)
	key := "create-acme-" + uuid.NewString()

	first := p.request("POST", "/api/v1/tenants", admin, `{"name":"Acme"}`, "Idempotency-Key", key)
	if first.status != http.StatusCreated || first.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("first create: %d %v %s", first.status, first.header, first.body)
	}
	id := first.json(t)["tenantId"].(string)
	count := p.eventCount()

	// The retry gets the first answer, and nothing is appended.
	again := p.request("POST", "/api/v1/tenants", admin, `{"name":"Acme"}`, "Idempotency-Key", key)
	if again.status != http.StatusCreated || string(again.body) != string(first.body) || again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry: %d %v %s, first answered %s", again.status, again.header, again.body, first.body)
	}
	for _, h := range []string{"ETag", "Location", "Content-Type"} {
		if again.header.Get(h) != first.header.Get(h) {
			t.Errorf("replayed %s %q, first %q", h, again.header.Get(h), first.header.Get(h))
		}
	}
	if again.header.Get("X-Request-Id") == first.header.Get("X-Request-Id") {
		t.Error("the replay carries the first request's id; it is a request of its own")
	}

	// The same key for another request is refused.
	for name, r := range map[string]response{
		"other body": p.request("POST", "/api/v1/tenants", admin, `{"name":"Other"}`, "Idempotency-Key", key),
		"other path": p.request("POST", "/api/v1/tenants/"+id+":suspend", admin, nil, "Idempotency-Key", key),
	} {
		if r.status != http.StatusUnprocessableEntity || r.header.Get("Content-Type") != "application/problem+json" ||
			r.json(t)["type"] != "urn:incentives:problem:idempotency-key-reused" {
			t.Errorf("%s under a used key: %d %s", name, r.status, r.body)
		}
	}
	if after := p.eventCount(); after != count {
		t.Fatalf("replays and reused keys appended %d events", after-count)
	}

	// Keys belong to their caller: another admin's key of the same name is its own.
	other, err := p.auth.Issue(auth.Principal{Subject: "another-admin", Role: auth.RolePlatformAdmin}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	theirs := p.request("POST", "/api/v1/tenants", other, `{"name":"Acme"}`, "Idempotency-Key", key)
	if theirs.status != http.StatusCreated || theirs.json(t)["tenantId"] == id || theirs.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("another caller's key: %d %s", theirs.status, theirs.body)
	}

	// A refusal is remembered too: the retry is told the same, without running.
	invalidKey := uuid.NewString()
	invalid := p.request("POST", "/api/v1/tenants", admin, `{"name":"   "}`, "Idempotency-Key", invalidKey)
	replayed := p.request("POST", "/api/v1/tenants", admin, `{"name":"   "}`, "Idempotency-Key", invalidKey)
	if invalid.status != http.StatusUnprocessableEntity || replayed.status != invalid.status || string(replayed.body) != string(invalid.body) ||
		replayed.header.Get("Idempotent-Replayed") != "true" || replayed.header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("a validation failure replayed: %d %s, then %d %v %s", invalid.status, invalid.body, replayed.status, replayed.header, replayed.body)
	}

	// Other POST routes honour keys as well: a limits change.
	limitsKey := uuid.NewString()
	set := p.request("POST", "/api/v1/tenants/"+id+"/limits", admin, `{"maxPerDay":7}`, "Idempotency-Key", limitsKey)
	count = p.eventCount()
	setAgain := p.request("POST", "/api/v1/tenants/"+id+"/limits", admin, `{"maxPerDay":7}`, "Idempotency-Key", limitsKey)
	if set.status != http.StatusOK || string(setAgain.body) != string(set.body) || setAgain.header.Get("ETag") != `"2"` ||
		setAgain.header.Get("Idempotent-Replayed") != "true" || p.eventCount() != count {
		t.Fatalf("limits retry: %d %s, then %d %v %s", set.status, set.body, setAgain.status, setAgain.header, setAgain.body)
	}

	// Bad keys are malformed requests, and GETs ignore keys.
	if r := p.request("POST", "/api/v1/tenants", admin, `{"name":"x"}`, "Idempotency-Key", strings.Repeat("k", 256)); r.status != http.StatusBadRequest ||
		r.json(t)["type"] != "urn:incentives:problem:malformed-request" {
		t.Fatalf("a 256-character key: %d %s", r.status, r.body)
	}
	if r := p.request("GET", "/api/v1/tenants/"+id, admin, nil, "Idempotency-Key", key, "X-Min-Version", "1"); r.status != http.StatusOK || r.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("a GET with a key: %d %v", r.status, r.header)
	}
}

func TestConcurrentRequestsWithOneKeyCreateOneTenant(t *testing.T) {
	t.Parallel()
	p := startPlatform(t, testConfig(t))
	admin := p.token(auth.RolePlatformAdmin, uuid.Nil)
	key := uuid.NewString()
	before := p.eventCount()

	const n = 8
	type result struct {
		status   int
		replayed bool
		retry    string
		body     string
		err      error
	}
	results := make([]result, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, err := http.NewRequest("POST", p.base+"/api/v1/tenants", strings.NewReader(`{"name":"Raced"}`))
			if err != nil {
				results[i].err = err
				return
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+admin)
			req.Header.Set("Idempotency-Key", key)
			<-start
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				results[i].err = err
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			results[i] = result{status: resp.StatusCode, replayed: resp.Header.Get("Idempotent-Replayed") == "true",
				retry: resp.Header.Get("Retry-After"), body: string(b), err: err}
		}()
	}
	close(start)
	wg.Wait()

	var ran int
	var created string
	for i, r := range results {
		switch {
		case r.err != nil:
			t.Fatalf("request %d: %v", i, r.err)
		case r.status == http.StatusCreated && !r.replayed:
			ran++
			created = r.body
		case r.status == http.StatusCreated:
		case r.status == http.StatusConflict && r.retry != "" && strings.Contains(r.body, "urn:incentives:problem:idempotency-key-in-progress"):
		default:
			t.Fatalf("request %d: %d %s", i, r.status, r.body)
		}
	}
	if ran != 1 {
		t.Fatalf("%d of %d concurrent requests with one key ran, want 1: %+v", ran, n, results)
	}
	for i, r := range results {
		if r.status == http.StatusCreated && r.body != created {
			t.Fatalf("request %d answered %s, the one that ran %s", i, r.body, created)
		}
	}
	// One tenant and its limit policy.
	if after := p.eventCount(); after != before+2 {
		t.Fatalf("the requests appended %d events, want 2", after-before)
	}
	// Once it is done, every retry is the replay.
	if r := p.request("POST", "/api/v1/tenants", admin, `{"name":"Raced"}`, "Idempotency-Key", key); r.status != http.StatusCreated ||
		string(r.body) != created || r.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry after the race: %d %s", r.status, r.body)
	}
}
