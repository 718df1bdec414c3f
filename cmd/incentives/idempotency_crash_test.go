package main

import (
	"context"
	"net/http"
	"testing"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/adapters/auth"
)

// A process that crashes after a create's append but before it stored the
// answer leaves the key to expire, and the client's retry runs again. It
// must not create a second tenant: the retry derives the same tenant id from
// its key and meets the first one's stream.
func TestRetryAfterALostIdempotentAnswerCreatesNothingTwice(t *testing.T) {
	t.Parallel()
	p := startPlatform(t, testConfig(t))
	admin := p.token(auth.RolePlatformAdmin, uuid.Nil)
	first := p.request("POST", "/api/v1/tenants", admin, `{"name":"Acme"}`, "Idempotency-Key", "create-acme")
	if first.status != http.StatusCreated {
		t.Fatalf("create: %d %s", first.status, first.body)
	}
	// The crash: the answer was never stored, and the claim has lapsed.
	if _, err := p.db.Pool.Exec(context.Background(), `DELETE FROM idempotency_key`); err != nil {
		t.Fatal(err)
	}
	before := p.eventCount()
	retry := p.request("POST", "/api/v1/tenants", admin, `{"name":"Acme"}`, "Idempotency-Key", "create-acme")
	if retry.status != http.StatusConflict || retry.json(t)["type"] != "urn:incentives:problem:version-conflict" {
		t.Fatalf("retry after the lost answer: %d %s", retry.status, retry.body)
	}
	if after := p.eventCount(); after != before {
		t.Fatalf("the retry appended %d events", after-before)
	}
	// Another key is another tenant.
	if r := p.request("POST", "/api/v1/tenants", admin, `{"name":"Acme"}`, "Idempotency-Key", "create-acme-2"); r.status != http.StatusCreated ||
		r.json(t)["tenantId"] == first.json(t)["tenantId"] {
		t.Fatalf("a new key: %d %s", r.status, r.body)
	}
}
