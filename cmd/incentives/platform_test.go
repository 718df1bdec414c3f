package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/adapters/auth"
	"github.com/incentives-platform/incentives/adapters/postgres"
	"github.com/incentives-platform/incentives/adapters/postgres/pgtest"
)

// testPlatform is a whole platform process started in-process for one test,
// on its own database, embedded broker and HTTP port.
type testPlatform struct {
	t    *testing.T
	cfg  Config
	app  *App
	base string
	db   *postgres.DB
	auth *auth.Authenticator
}

func testRedisURL() string {
	if u := os.Getenv("TEST_REDIS_URL"); u != "" {
		return u
	}
	return defaultRedisURL
}

func testConfig(t *testing.T) Config {
	t.Helper()
	return Config{
		DatabaseURL: pgtest.MustDatabase(t), RedisURL: testRedisURL(),
		KafkaBrokers: embedded, KafkaEmbeddedAddr: "127.0.0.1:0", KafkaPartitions: 4,
		HTTPAddr: "127.0.0.1:0", WSAddr: "127.0.0.1:0", JWTSecret: devJWTSecret, Roles: strings.Join(allRoles, ","),
		LogLevel: "warn", LogFormat: "text", ShutdownTimeout: 10 * time.Second, OutboxKeep: time.Hour, ReadWait: 5 * time.Second,
		TenantMaxPerDay: 100_000, UserMaxPerDay: 10, CampaignEndEvery: 100 * time.Millisecond,
		EngineMaxBatch: 1000, EngineCatalogRefresh: 100 * time.Millisecond, EngineSessionTimeout: 6 * time.Second,
		HotCampaignEnabled: true, HotCampaignThreshold: 5000, HotCampaignWindow: 10 * time.Minute,
		HotCampaignEpsilon: 0.01, HotCampaignDelta: 0.01, HotCampaignSampleEvery: 16,
	}
}

func startPlatform(t *testing.T, cfg Config) *testPlatform {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithCancel(context.Background())
	app, err := NewApp(ctx, cfg, logger)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if err := app.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	select {
	case <-app.Ready():
	case err := <-done:
		t.Fatalf("platform stopped before it was ready: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("platform not ready in 30s")
	}
	db, err := postgres.Open(context.Background(), cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	a, err := auth.New([]byte(cfg.JWTSecret), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	return &testPlatform{t: t, cfg: cfg, app: app, base: "http://" + app.HTTPAddr(), db: db, auth: a}
}

// testWriter sends log lines to the test's log, shown only when it fails.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (p *testPlatform) token(role auth.Role, tenant uuid.UUID) string {
	p.t.Helper()
	tok, err := p.auth.Issue(auth.Principal{Subject: "test-" + string(role), Role: role, TenantID: tenant}, time.Hour)
	if err != nil {
		p.t.Fatal(err)
	}
	return tok
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response %d is not a JSON object: %q", r.status, r.body)
	}
	return m
}

// request sends one API call. body may be a string (sent as is) or nil.
func (p *testPlatform) request(method, path, token string, body any, headers ...string) response {
	p.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, p.base+path, rd)
	if err != nil {
		p.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// eventually retries get until it returns true or 15s pass: reads come from
// projections, which trail writes by the relay and the consumer.
func eventually(t *testing.T, what string, get func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !get() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after 15s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *testPlatform) eventCount() int {
	p.t.Helper()
	var n int
	if err := p.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM event_store`).Scan(&n); err != nil {
		p.t.Fatal(err)
	}
	return n
}

// Stopping the platform while a request is in flight: /readyz turns 503
// during the drain delay, the request still gets its whole answer, and Run
// returns cleanly.
func TestRunStopsGracefully(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.ReadWait, cfg.DrainDelay = 700*time.Millisecond, 300*time.Millisecond
	logger := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	ctx, cancel := context.WithCancel(context.Background())
	app, err := NewApp(ctx, cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	<-app.Ready()
	p := &testPlatform{t: t, app: app, base: "http://" + app.HTTPAddr(), auth: mustAuthenticator(t, cfg.JWTSecret)}
	admin := p.token(auth.RolePlatformAdmin, uuid.Nil)
	id := p.request("POST", "/api/v1/tenants", admin, `{"name":"Acme"}`).json(t)["tenantId"].(string)
	// READ_WAIT is short here for the in-flight request below; a loaded
	// machine may take longer than that to project the tenant.
	eventually(t, "the tenant projected", func() bool {
		return p.request("GET", "/api/v1/tenants/"+id, admin, nil).status == http.StatusOK
	})

	// In flight: waits READ_WAIT for a version that never comes, then answers 503.
	inFlight := make(chan response, 1)
	go func() { inFlight <- p.request("GET", "/api/v1/tenants/"+id, admin, nil, "X-Min-Version", "9") }()
	time.Sleep(100 * time.Millisecond)
	cancel()
	time.Sleep(100 * time.Millisecond)
	if r := p.request("GET", "/readyz", "", nil); r.status != http.StatusServiceUnavailable || r.json(t)["status"] != "draining" {
		t.Fatalf("readyz while draining: %d %s", r.status, r.body)
	}
	if r := <-inFlight; r.status != http.StatusServiceUnavailable || r.json(t)["type"] != "urn:incentives:problem:not-caught-up" {
		t.Fatalf("the in-flight request got %d %s, want its full answer", r.status, r.body)
	}
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("Run after cancel = %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return 15s after its context ended")
	}
	if _, err := http.Get(p.base + "/healthz"); err == nil {
		t.Fatal("the API still accepts connections after Run returned")
	}
}
