package http

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/adapters/auth"
)

// memIdempotency is an IdempotencyStore in memory, for tests of the middleware.
type memIdempotency struct {
	mu       sync.Mutex
	rows     map[IdempotencyKey]*memRow
	claimErr error
}

type memRow struct {
	claim       uuid.UUID
	lockedUntil time.Time
	expiresAt   time.Time
	rec         *IdempotentRecord // nil while pending
}

func (m *memIdempotency) Claim(_ context.Context, c IdempotencyClaim) (IdempotentRecord, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.claimErr != nil {
		return IdempotentRecord{}, false, m.claimErr
	}
	if row, ok := m.rows[c.IdempotencyKey]; ok && c.Now.Before(row.expiresAt) && (row.rec != nil || c.Now.Before(row.lockedUntil)) {
		if row.rec == nil {
			return IdempotentRecord{Pending: true}, false, nil
		}
		return *row.rec, false, nil
	}
	m.rows[c.IdempotencyKey] = &memRow{claim: c.Claim, lockedUntil: c.LockedUntil, expiresAt: c.ExpiresAt}
	return IdempotentRecord{}, true, nil
}

func (m *memIdempotency) Complete(_ context.Context, key IdempotencyKey, claim uuid.UUID, rec IdempotentRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	row, ok := m.rows[key]
	if !ok || row.claim != claim || row.rec != nil {
		return ErrIdempotencyClaimLost
	}
	row.rec = &rec
	return nil
}

func (m *memIdempotency) Release(_ context.Context, key IdempotencyKey, claim uuid.UUID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if row, ok := m.rows[key]; ok && row.claim == claim && row.rec == nil {
		delete(m.rows, key)
	}
	return nil
}

func (m *memIdempotency) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.rows)
}

// idempotencyServer serves handler behind the idempotency middleware, as the
// caller named by the X-Test-Subject header, over real HTTP/1.1.
func idempotencyServer(t *testing.T, store IdempotencyStore, now func() time.Time, handler http.HandlerFunc) string {
	t.Helper()
	cfg := Config{Idempotency: IdempotencyConfig{Now: now}}
	cfg.setDefaults()
	s := &Server{cfg: cfg, Deps: Deps{Idempotency: store}, logger: slog.New(slog.DiscardHandler)}
	mw := s.idempotency(handler)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := auth.Principal{Subject: r.Header.Get("X-Test-Subject"), Role: auth.RolePlatformAdmin}
		defer func() {
			if v := recover(); v != nil {
				w.WriteHeader(http.StatusInternalServerError) // as the recoverer would
			}
		}()
		mw.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey, p)))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

type idemResponse struct {
	status int
	header http.Header
	body   string
}

func (r idemResponse) problemType() string {
	var p problem
	_ = json.Unmarshal([]byte(r.body), &p)
	return strings.TrimPrefix(p.Type, "urn:incentives:problem:")
}

func send(t *testing.T, method, url, key string, body []byte, headers ...string) idemResponse {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set(idempotencyKeyHeader, key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return idemResponse{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// created answers 201 with a new id each time it runs, after reading the
// whole body in small chunks, as a streaming handler does.
func created(runs *atomic.Int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		n, err := io.CopyBuffer(io.Discard, r.Body, make([]byte, 4096))
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		runs.Add(1)
		id := uuid.NewString()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("ETag", `"1"`)
		w.Header().Set("Location", "/things/"+id)
		w.Header().Set("X-Not-Replayed", "x")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{"id": id, "bytes": n})
	}
}

func TestIdempotencyReplaysTheFirstAnswerOfTheSameRequest(t *testing.T) {
	t.Parallel()
	var runs atomic.Int64
	store := &memIdempotency{rows: map[IdempotencyKey]*memRow{}}
	url := idempotencyServer(t, store, time.Now, created(&runs))
	big := make([]byte, 8<<20)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}

	first := send(t, "POST", url+"/things", "k1", big)
	again := send(t, "POST", url+"/things", "k1", big)
	if first.status != 201 || again.status != 201 || again.body != first.body || runs.Load() != 1 {
		t.Fatalf("first %d %s, again %d %s, handler ran %d times", first.status, first.body, again.status, again.body, runs.Load())
	}
	for _, h := range []string{"Content-Type", "ETag", "Location"} {
		if again.header.Get(h) != first.header.Get(h) || first.header.Get(h) == "" {
			t.Errorf("replayed %s = %q, first %q", h, again.header.Get(h), first.header.Get(h))
		}
	}
	if again.header.Get(idempotentReplayHeader) != "true" || first.header.Get(idempotentReplayHeader) != "" || again.header.Get("X-Not-Replayed") != "" {
		t.Errorf("replay headers %v, first %v", again.header, first.header)
	}

	changed := bytes.Clone(big)
	changed[len(changed)-1]++
	for name, r := range map[string]idemResponse{
		"last byte changed": send(t, "POST", url+"/things", "k1", changed),
		"one byte longer":   send(t, "POST", url+"/things", "k1", append(bytes.Clone(big), 0)),
		"one byte shorter":  send(t, "POST", url+"/things", "k1", big[:len(big)-1]),
		"other path":        send(t, "POST", url+"/others", "k1", big),
		"other query":       send(t, "POST", url+"/things?x=1", "k1", big),
	} {
		if r.status != http.StatusUnprocessableEntity || r.problemType() != "idempotency-key-reused" {
			t.Errorf("%s: %d %s, want 422 idempotency-key-reused", name, r.status, r.body)
		}
	}
	// Another caller's key of the same name, no key, other methods: they run.
	send(t, "POST", url+"/things", "k1", big, "X-Test-Subject", "someone-else")
	send(t, "POST", url+"/things", "", big)
	send(t, "PUT", url+"/things", "k1", big)
	if runs.Load() != 4 {
		t.Fatalf("handler ran %d times, want 4", runs.Load())
	}
}

func TestIdempotencyRemembersRefusalsButNotFailures(t *testing.T) {
	t.Parallel()
	var (
		runs   atomic.Int64
		status atomic.Int64
	)
	store := &memIdempotency{rows: map[IdempotencyKey]*memRow{}}
	url := idempotencyServer(t, store, time.Now, func(w http.ResponseWriter, r *http.Request) {
		runs.Add(1)
		switch s := int(status.Load()); s {
		case 0:
			panic("boom")
		case http.StatusForbidden:
			// Refused before reading the body, as an authorization check
			// does, and flushed: from then on the server may discard the
			// unread body itself.
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(s)
			io.WriteString(w, `{"type":"urn:incentives:problem:forbidden"}`)
			if err := http.NewResponseController(w).Flush(); err != nil {
				t.Error(err)
			}
		default:
			io.Copy(io.Discard, r.Body)
			w.WriteHeader(s)
		}
	})
	body := bytes.Repeat([]byte("x"), 100<<10) // more than the server would discard for us unhashed

	status.Store(http.StatusInternalServerError)
	if r := send(t, "POST", url, "k", body); r.status != 500 {
		t.Fatalf("first: %d", r.status)
	}
	status.Store(0) // a panic
	if r := send(t, "POST", url, "k", body); r.status != 500 {
		t.Fatalf("panic: %d", r.status)
	}
	status.Store(http.StatusForbidden)
	refused := send(t, "POST", url, "k", body)
	if refused.status != 403 || runs.Load() != 3 || store.len() != 1 {
		t.Fatalf("after a 500 and a panic the key runs again: %d, %d runs, %d keys", refused.status, runs.Load(), store.len())
	}
	status.Store(http.StatusCreated)
	if r := send(t, "POST", url, "k", body); r.status != 403 || r.body != refused.body || r.header.Get(idempotentReplayHeader) != "true" || runs.Load() != 3 {
		t.Fatalf("a refusal is remembered: %d %s, %d runs", r.status, r.body, runs.Load())
	}
	// The refusal never read the body, yet its hash covers all of it.
	if r := send(t, "POST", url, "k", append(bytes.Clone(body[:len(body)-1]), 'y')); r.status != 422 {
		t.Fatalf("a different body under a remembered refusal: %d %s", r.status, r.body)
	}

	// A refusal that leaves more than maxDrainBytes unread is not remembered.
	status.Store(http.StatusForbidden)
	huge := bytes.Repeat([]byte("x"), maxDrainBytes+(1<<20))
	before := runs.Load()
	send(t, "POST", url, "huge", huge)
	send(t, "POST", url, "huge", huge)
	if runs.Load() != before+2 {
		t.Fatalf("a refusal of a body too large to hash ran %d times, want 2", runs.Load()-before)
	}
}

func TestIdempotencyKeyInProgressIsAConflict(t *testing.T) {
	t.Parallel()
	store := &memIdempotency{rows: map[IdempotencyKey]*memRow{}}
	entered, release := make(chan struct{}), make(chan struct{})
	var runs atomic.Int64
	url := idempotencyServer(t, store, time.Now, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if runs.Add(1) == 1 {
			close(entered)
			<-release
		}
		w.WriteHeader(http.StatusCreated)
	})
	done := make(chan idemResponse)
	go func() {
		req, _ := http.NewRequest("POST", url, strings.NewReader("{}"))
		req.Header.Set(idempotencyKeyHeader, "slow")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- idemResponse{}
			return
		}
		resp.Body.Close()
		done <- idemResponse{status: resp.StatusCode}
	}()
	<-entered
	r := send(t, "POST", url, "slow", []byte("{}"))
	if r.status != http.StatusConflict || r.problemType() != "idempotency-key-in-progress" || r.header.Get("Retry-After") == "" {
		t.Fatalf("while the first runs: %d %v %s", r.status, r.header, r.body)
	}
	close(release)
	if first := <-done; first.status != http.StatusCreated {
		t.Fatalf("first: %d", first.status)
	}
	if r := send(t, "POST", url, "slow", []byte("{}")); r.status != http.StatusCreated || r.header.Get(idempotentReplayHeader) != "true" || runs.Load() != 1 {
		t.Fatalf("after it finished: %d %v, %d runs", r.status, r.header, runs.Load())
	}
}

func TestIdempotencyKeysExpireAndAbandonedClaimsAreTakenOver(t *testing.T) {
	t.Parallel()
	var (
		mu  sync.Mutex
		now = time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }
	var runs atomic.Int64
	store := &memIdempotency{rows: map[IdempotencyKey]*memRow{}}
	url := idempotencyServer(t, store, clock, created(&runs))
	send(t, "POST", url, "k", nil)
	advance(24*time.Hour - time.Second)
	send(t, "POST", url, "k", nil)
	if runs.Load() != 1 {
		t.Fatalf("replayed within a day: %d runs", runs.Load())
	}
	advance(time.Second)
	send(t, "POST", url, "k", nil)
	if runs.Load() != 2 {
		t.Fatalf("after a day the key runs again: %d runs", runs.Load())
	}

	// A claim whose process died stays pending until its lock runs out.
	dead := IdempotencyClaim{IdempotencyKey: IdempotencyKey{Scope: "platform-admin:" + uuid.Nil.String() + ":", Key: "dead"},
		Claim: uuid.New(), Now: clock(), LockedUntil: clock().Add(2 * time.Minute), ExpiresAt: clock().Add(24 * time.Hour)}
	if _, ok, _ := store.Claim(context.Background(), dead); !ok {
		t.Fatal("could not claim")
	}
	if r := send(t, "POST", url, "dead", nil); r.status != http.StatusConflict {
		t.Fatalf("a pending key: %d", r.status)
	}
	advance(2 * time.Minute)
	if r := send(t, "POST", url, "dead", nil); r.status != http.StatusCreated || r.header.Get(idempotentReplayHeader) != "" {
		t.Fatalf("an abandoned key: %d %v", r.status, r.header)
	}
}

func TestBadIdempotencyKeysAreRefused(t *testing.T) {
	t.Parallel()
	var runs atomic.Int64
	store := &memIdempotency{rows: map[IdempotencyKey]*memRow{}}
	url := idempotencyServer(t, store, time.Now, created(&runs))
	for name, headers := range map[string][]string{
		"empty":         {idempotencyKeyHeader, ""},
		"too long":      {idempotencyKeyHeader, strings.Repeat("k", maxIdempotencyKeyLength+1)},
		"not ASCII":     {idempotencyKeyHeader, "clé"},
		"a tab":         {idempotencyKeyHeader, "a\tb"},
		"sent twice":    {idempotencyKeyHeader, "a", idempotencyKeyHeader, "b"},
		"longest is ok": nil,
	} {
		if headers == nil {
			if r := send(t, "POST", url, strings.Repeat("k", maxIdempotencyKeyLength), nil); r.status != 201 {
				t.Errorf("%s: %d %s", name, r.status, r.body)
			}
			continue
		}
		r := send(t, "POST", url, "", nil, headers...)
		if r.status != http.StatusBadRequest || r.problemType() != "malformed-request" {
			t.Errorf("%s: %d %s, want 400 malformed-request", name, r.status, r.body)
		}
	}
	if runs.Load() != 1 || store.len() != 1 {
		t.Fatalf("bad keys ran the handler %d times and stored %d keys", runs.Load()-1, store.len()-1)
	}
	store.claimErr = errors.New("database down")
	if r := send(t, "POST", url, "k", nil); r.status != http.StatusInternalServerError || runs.Load() != 1 {
		t.Fatalf("store down: %d, %d runs", r.status, runs.Load())
	}
}
