package redis

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

// Each test counts under its own random tenant, so its keys
// (limit:{<tenant>}:...) are its own key prefix: tests run in parallel with
// each other and with other packages on the same Redis, and each deletes its
// keys when it ends.

func testRedisURL() string {
	if u := os.Getenv("TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// MustClient connects to the test Redis and closes the client when tb ends.
func MustClient(tb testing.TB) *Client {
	tb.Helper()
	c, err := Open(context.Background(), testRedisURL())
	if err != nil {
		tb.Fatalf("open redis: %v", err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// limitFixture is a limiter and a tenant of one test.
type limitFixture struct {
	t      *testing.T
	l      *Limiter
	tenant uuid.UUID
	cfg    LimiterConfig
}

func mustLimits(t *testing.T) *limitFixture {
	t.Helper()
	c := MustClient(t)
	cfg := LimiterConfig{}
	l, err := NewLimiter(c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.setDefaults()
	f := &limitFixture{t: t, l: l, tenant: uuid.New(), cfg: cfg}
	t.Cleanup(func() {
		if _, err := l.ForgetTenant(context.Background(), f.tenant); err != nil {
			t.Errorf("forget tenant: %v", err)
		}
	})
	return f
}

func (f *limitFixture) request(user string, at time.Time, tenantCaps, userCaps LimitCaps) LimitRequest {
	return LimitRequest{TenantID: f.tenant, UserID: user, DecisionID: uuid.New(), At: at, Tenant: tenantCaps, User: userCaps}
}

func (f *limitFixture) check(reqs ...LimitRequest) []LimitResult {
	f.t.Helper()
	res, err := f.l.CheckAndIncr(context.Background(), reqs)
	if err != nil {
		f.t.Fatalf("CheckAndIncr: %v", err)
	}
	if len(res) != len(reqs) {
		f.t.Fatalf("CheckAndIncr answered %d results for %d requests", len(res), len(reqs))
	}
	return res
}

// counters returns every counter key of the tenant (decisions left out) and
// its value.
func (f *limitFixture) counters() map[string]int64 {
	f.t.Helper()
	ctx := context.Background()
	keys, err := f.l.rdb.Keys(ctx, tenantTag(f.tenant)+":*").Result()
	if err != nil {
		f.t.Fatal(err)
	}
	got := map[string]int64{}
	for _, k := range keys {
		if strings.Contains(k, ":dec:") {
			continue
		}
		v, err := f.l.rdb.Get(ctx, k).Int64()
		if err != nil {
			f.t.Fatalf("get %s: %v", k, err)
		}
		got[k] = v
	}
	return got
}

func (f *limitFixture) key(suffix string) string { return tenantTag(f.tenant) + suffix }

func n(v int64) *int64 { return &v }

// at is a fixed instant: Sunday 2024-03-10 18:00 UTC, in the 7-day window
// 2827 (2024-03-07 up to 2024-03-14, since windows start on a Thursday, as
// 1970-01-01 did).
var at = time.Date(2024, 3, 10, 18, 0, 0, 0, time.UTC)

func all(c int64, windowDays int) LimitCaps {
	return LimitCaps{PerDay: n(c), PerWindow: n(c), WindowDays: windowDays, Total: n(c)}
}

func TestRefusalByTheUsersDailyCapCountsNothing(t *testing.T) {
	t.Parallel()
	f := mustLimits(t)
	tenantCaps := all(100, 7)
	userCaps := LimitCaps{PerDay: n(2), PerWindow: n(10), WindowDays: 7, Total: n(10)}
	res := f.check(f.request("alice", at, tenantCaps, userCaps), f.request("alice", at, tenantCaps, userCaps))
	for i, r := range res {
		if !r.Granted {
			t.Fatalf("decision %d refused by %+v, want granted", i, r.RefusedBy)
		}
	}
	refused := f.check(f.request("alice", at.Add(time.Hour), tenantCaps, userCaps))[0]
	if refused.Granted {
		t.Fatal("third decision granted, want refused by the user's daily cap")
	}
	want := LimitCounter{Scope: ScopeUser, Kind: KindDay, Period: "20240310", Cap: 2, Seen: 2}
	if refused.RefusedBy == nil || *refused.RefusedBy != want {
		t.Fatalf("RefusedBy = %+v, want %+v", refused.RefusedBy, want)
	}
	wantSeen := []LimitCounter{
		want,
		{Scope: ScopeUser, Kind: KindWindow, Period: "2827", WindowDays: 7, Cap: 10, Seen: 2},
		{Scope: ScopeUser, Kind: KindTotal, Cap: 10, Seen: 2},
		{Scope: ScopeTenant, Kind: KindDay, Period: "20240310", Cap: 100, Seen: 2},
		{Scope: ScopeTenant, Kind: KindWindow, Period: "2827", WindowDays: 7, Cap: 100, Seen: 2},
		{Scope: ScopeTenant, Kind: KindTotal, Cap: 100, Seen: 2},
	}
	if !reflect.DeepEqual(refused.Counters, wantSeen) {
		t.Errorf("Counters = %+v\nwant %+v", refused.Counters, wantSeen)
	}
	wantCounters := map[string]int64{
		f.key(":u:alice:d:20240310"): 2, f.key(":u:alice:w7:2827"): 2, f.key(":u:alice:total"): 2,
		f.key(":d:20240310"): 2, f.key(":w7:2827"): 2, f.key(":total"): 2,
	}
	if got := f.counters(); !reflect.DeepEqual(got, wantCounters) {
		t.Errorf("counters = %v, want %v", got, wantCounters)
	}
}

func TestEachCapRefusesAtExactlyItsValue(t *testing.T) {
	t.Parallel()
	const capValue = 3
	for _, tc := range []struct {
		scope LimitScope
		kind  LimitKind
		caps  LimitCaps
		key   string // suffix of the only counter
	}{
		{ScopeUser, KindDay, LimitCaps{PerDay: n(capValue)}, ":u:bob:d:20240310"},
		{ScopeUser, KindWindow, LimitCaps{PerWindow: n(capValue), WindowDays: 30}, ":u:bob:w30:659"},
		{ScopeUser, KindTotal, LimitCaps{Total: n(capValue)}, ":u:bob:total"},
		{ScopeTenant, KindDay, LimitCaps{PerDay: n(capValue)}, ":d:20240310"},
		{ScopeTenant, KindWindow, LimitCaps{PerWindow: n(capValue), WindowDays: 30}, ":w30:659"},
		{ScopeTenant, KindTotal, LimitCaps{Total: n(capValue)}, ":total"},
	} {
		t.Run(string(tc.scope)+"/"+string(tc.kind), func(t *testing.T) {
			t.Parallel()
			f := mustLimits(t)
			var tenantCaps, userCaps LimitCaps
			if tc.scope == ScopeUser {
				userCaps = tc.caps
			} else {
				tenantCaps = tc.caps
			}
			for i := range capValue + 2 {
				r := f.check(f.request("bob", at.Add(time.Duration(i)*time.Minute), tenantCaps, userCaps))[0]
				if granted := i < capValue; r.Granted != granted {
					t.Fatalf("decision %d: granted %v, want %v (%+v)", i+1, r.Granted, granted, r)
				}
				if len(r.Counters) != 1 || r.Counters[0].Seen != int64(min(i, capValue)) || r.Counters[0].Cap != capValue {
					t.Fatalf("decision %d saw %+v, want one counter at %d of %d", i+1, r.Counters, min(i, capValue), capValue)
				}
				if !r.Granted && (r.RefusedBy.Scope != tc.scope || r.RefusedBy.Kind != tc.kind) {
					t.Fatalf("decision %d refused by %s %s, want %s %s", i+1, r.RefusedBy.Scope, r.RefusedBy.Kind, tc.scope, tc.kind)
				}
			}
			// Only the counter whose cap is set exists.
			if got, want := f.counters(), map[string]int64{f.key(tc.key): capValue}; !reflect.DeepEqual(got, want) {
				t.Errorf("counters = %v, want %v", got, want)
			}
		})
	}
}

func TestZeroCapAllowsNothing(t *testing.T) {
	t.Parallel()
	f := mustLimits(t)
	r := f.check(f.request("carol", at, LimitCaps{Total: n(0)}, LimitCaps{PerDay: n(5)}))[0]
	if r.Granted {
		t.Fatal("granted under a zero cap")
	}
	want := LimitCounter{Scope: ScopeTenant, Kind: KindTotal, Cap: 0, Seen: 0}
	if *r.RefusedBy != want {
		t.Errorf("RefusedBy = %+v, want %+v", *r.RefusedBy, want)
	}
	if got := f.counters(); len(got) != 0 {
		t.Errorf("a refusal left counters %v", got)
	}
}

func TestNilCapsAreUnbounded(t *testing.T) {
	t.Parallel()
	f := mustLimits(t)
	reqs := make([]LimitRequest, 1000)
	for i := range reqs {
		reqs[i] = f.request("dave", at, LimitCaps{}, LimitCaps{})
	}
	for i, r := range f.check(reqs...) {
		if !r.Granted || len(r.Counters) != 0 {
			t.Fatalf("decision %d: %+v, want granted with no counters", i, r)
		}
	}
	if got := f.counters(); len(got) != 0 {
		t.Errorf("unbounded decisions left counters %v", got)
	}
}

func TestDaysAndWindowsRollOverAtUTCBoundaries(t *testing.T) {
	t.Parallel()
	f := mustLimits(t)
	// Window 2817 of 7 days is 2023-12-28 (a Thursday) up to 2024-01-04.
	lastSecond := time.Date(2024, 1, 3, 23, 59, 59, 0, time.UTC)
	// The same instant in another zone is the same day and window.
	lastSecond = lastSecond.In(time.FixedZone("IST", 5*3600+1800))
	next := time.Date(2024, 1, 4, 0, 0, 0, 0, time.UTC)
	userCaps := LimitCaps{PerDay: n(1), PerWindow: n(2), WindowDays: 7}
	steps := []struct {
		at      time.Time
		granted bool
		refused LimitKind
	}{
		{lastSecond.Add(-24 * time.Hour), true, ""},
		{lastSecond, true, ""},
		{lastSecond, false, KindDay}, // the day is full
		{next, true, ""},             // a new day and a new window
		{next.Add(time.Hour), false, KindDay},
		{next.Add(24 * time.Hour), true, ""},
		{next.Add(48 * time.Hour), false, KindWindow}, // window 2818 is full
	}
	for i, s := range steps {
		r := f.check(f.request("erin", s.at, LimitCaps{}, userCaps))[0]
		if r.Granted != s.granted || (!r.Granted && r.RefusedBy.Kind != s.refused) {
			t.Fatalf("step %d at %v: %+v, want granted %v refused by %q", i, s.at, r, s.granted, s.refused)
		}
	}
	want := map[string]int64{
		f.key(":u:erin:d:20240102"): 1, f.key(":u:erin:d:20240103"): 1, f.key(":u:erin:w7:2817"): 2,
		f.key(":u:erin:d:20240104"): 1, f.key(":u:erin:d:20240105"): 1, f.key(":u:erin:w7:2818"): 2,
	}
	if got := f.counters(); !reflect.DeepEqual(got, want) {
		t.Errorf("counters = %v, want %v", got, want)
	}
}

func TestRedeliveredDecisionGetsTheSameAnswerAndCountsOnce(t *testing.T) {
	t.Parallel()
	f := mustLimits(t)
	caps := LimitCaps{PerDay: n(1), Total: n(5)}
	granted := f.request("frank", at, caps, caps)
	refused := f.request("frank", at, caps, caps)
	first := f.check(granted, refused)
	if !first[0].Granted || first[1].Granted || first[0].Replayed || first[1].Replayed {
		t.Fatalf("first delivery: %+v, want granted then refused, neither replayed", first)
	}
	// A redelivery, even with different caps (the policy changed since) and
	// twice in one batch, gets the first answer.
	loose := LimitCaps{PerDay: n(100), Total: n(100)}
	again := f.check(
		LimitRequest{TenantID: f.tenant, UserID: "frank", DecisionID: refused.DecisionID, At: at, Tenant: loose, User: loose},
		granted, refused,
	)
	for i, want := range []LimitResult{first[1], first[0], first[1]} {
		want.Replayed = true
		if !reflect.DeepEqual(again[i], want) {
			t.Errorf("redelivery %d = %+v\nwant %+v", i, again[i], want)
		}
	}
	want := map[string]int64{
		f.key(":u:frank:d:20240310"): 1, f.key(":u:frank:total"): 1,
		f.key(":d:20240310"): 1, f.key(":total"): 1,
	}
	if got := f.counters(); !reflect.DeepEqual(got, want) {
		t.Errorf("counters = %v, want %v", got, want)
	}
	// A decision repeated within its first batch is counted once too.
	d := f.request("grace", at, LimitCaps{}, LimitCaps{Total: n(5)})
	res := f.check(d, d)
	if !res[0].Granted || res[0].Replayed || !res[1].Replayed || res[1].Counters[0] != res[0].Counters[0] {
		t.Errorf("repeat in one batch = %+v", res)
	}
	if v := f.counters()[f.key(":u:grace:total")]; v != 1 {
		t.Errorf("grace's total = %d, want 1", v)
	}
}

// TestConcurrentDecisionsGrantExactlyTheCap hammers one user and one tenant
// from 8 goroutines, in batches of mixed sizes, every decision sent twice
// by two different goroutines, with each kind of cap as the binding one.
func TestConcurrentDecisionsGrantExactlyTheCap(t *testing.T) {
	t.Parallel()
	const (
		binding   = 37
		loose     = 1000
		workers   = 8
		decisions = 400
	)
	for _, tc := range []struct {
		name         string
		tenant, user LimitCaps
	}{
		{"USER/DAY", all(loose, 7), LimitCaps{PerDay: n(binding), PerWindow: n(loose), WindowDays: 7, Total: n(loose)}},
		{"USER/WINDOW", all(loose, 7), LimitCaps{PerDay: n(loose), PerWindow: n(binding), WindowDays: 7, Total: n(loose)}},
		{"USER/TOTAL", all(loose, 7), LimitCaps{PerDay: n(loose), PerWindow: n(loose), WindowDays: 7, Total: n(binding)}},
		{"GLOBAL/DAY", LimitCaps{PerDay: n(binding), PerWindow: n(loose), WindowDays: 7, Total: n(loose)}, all(loose, 7)},
		{"GLOBAL/WINDOW", LimitCaps{PerDay: n(loose), PerWindow: n(binding), WindowDays: 7, Total: n(loose)}, all(loose, 7)},
		{"GLOBAL/TOTAL", LimitCaps{PerDay: n(loose), PerWindow: n(loose), WindowDays: 7, Total: n(binding)}, all(loose, 7)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := mustLimits(t)
			reqs := make([]LimitRequest, decisions)
			for i := range reqs {
				reqs[i] = f.request("hammered", at.Add(time.Duration(i)*time.Second), tc.tenant, tc.user)
			}
			var (
				mu      sync.Mutex
				answers = map[uuid.UUID][]bool{}
				wg      sync.WaitGroup
				errs    = make(chan error, workers)
			)
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					// Worker w sends its own share and redelivers its neighbour's.
					var mine []LimitRequest
					for i, r := range reqs {
						if i%workers == w || i%workers == (w+1)%workers {
							mine = append(mine, r)
						}
					}
					for len(mine) > 0 {
						size := min(1+len(mine)%7, len(mine)) // 1 to 7
						res, err := f.l.CheckAndIncr(context.Background(), mine[:size])
						if err != nil {
							errs <- err
							return
						}
						mu.Lock()
						for _, r := range res {
							answers[r.DecisionID] = append(answers[r.DecisionID], r.Granted)
						}
						mu.Unlock()
						mine = mine[size:]
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			grants := 0
			for id, a := range answers {
				if len(a) != 2 || a[0] != a[1] {
					t.Fatalf("decision %s answered %v, want the same answer twice", id, a)
				}
				if a[0] {
					grants++
				}
			}
			if len(answers) != decisions || grants != binding {
				t.Errorf("%d decisions answered, %d granted; want %d answered, %d granted", len(answers), grants, decisions, binding)
			}
			for k, v := range f.counters() {
				if v != binding {
					t.Errorf("%s = %d, want %d", k, v, binding)
				}
			}
		})
	}
}

func TestKeysCarryTheTenantHashTagAndDocumentedTTLs(t *testing.T) {
	t.Parallel()
	f := mustLimits(t)
	user := "user:{odd}|name,1" // user ids are the tenant's own opaque strings
	r := f.request(user, at, all(10, 30), all(10, 7))
	f.check(r)
	ctx := context.Background()
	margin := f.cfg.CounterMargin
	dayTTL := time.Date(2024, 3, 11, 0, 0, 0, 0, time.UTC).Sub(at) + margin
	want := map[string]time.Duration{
		f.key(":u:" + user + ":d:20240310"):    dayTTL,
		f.key(":u:" + user + ":w7:2827"):       time.Date(2024, 3, 14, 0, 0, 0, 0, time.UTC).Sub(at) + margin,
		f.key(":u:" + user + ":total"):         -1, // no expiry
		f.key(":d:20240310"):                   dayTTL,
		f.key(":w30:659"):                      time.Date(2024, 3, 18, 0, 0, 0, 0, time.UTC).Sub(at) + margin,
		f.key(":total"):                        -1,
		f.key(":dec:" + r.DecisionID.String()): f.cfg.DecisionTTL,
	}
	keys, err := f.l.rdb.Keys(ctx, tenantTag(f.tenant)+":*").Result()
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(keys)
	if len(keys) != len(want) {
		t.Fatalf("keys = %q, want %d keys", keys, len(want))
	}
	for _, k := range keys {
		wantTTL, ok := want[k]
		if !ok {
			t.Errorf("unexpected key %q", k)
			continue
		}
		// The hash tag is the first {...} of the key: the tenant id, whatever the user id holds.
		if open, end := strings.IndexByte(k, '{'), strings.IndexByte(k, '}'); k[open+1:end] != f.tenant.String() {
			t.Errorf("key %q hashes on %q, want the tenant id", k, k[open+1:end])
		}
		ttl, err := f.l.rdb.TTL(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if wantTTL < 0 {
			if ttl != -1 {
				t.Errorf("TTL(%s) = %v, want none", k, ttl)
			}
		} else if ttl > wantTTL || ttl < wantTTL-5*time.Second {
			t.Errorf("TTL(%s) = %v, want %v", k, ttl, wantTTL)
		}
	}
}

func TestInvalidRequestsSendNothing(t *testing.T) {
	t.Parallel()
	f := mustLimits(t)
	good := f.request("ivan", at, LimitCaps{PerDay: n(1)}, LimitCaps{})
	for _, tc := range []struct {
		name string
		edit func(*LimitRequest)
		want string
	}{
		{"no tenant", func(r *LimitRequest) { r.TenantID = uuid.Nil }, "no tenant id"},
		{"no user", func(r *LimitRequest) { r.UserID = "" }, "no user id"},
		{"no decision", func(r *LimitRequest) { r.DecisionID = uuid.Nil }, "no decision id"},
		{"no instant", func(r *LimitRequest) { r.At = time.Time{} }, "no instant"},
		{"negative cap", func(r *LimitRequest) { r.User.Total = n(-1) }, "user.Total -1"},
		{"window without days", func(r *LimitRequest) { r.Tenant.PerWindow = n(3) }, "tenant.WindowDays 0"},
	} {
		bad := good
		tc.edit(&bad)
		_, err := f.l.CheckAndIncr(context.Background(), []LimitRequest{good, bad})
		if err == nil || !strings.Contains(err.Error(), "request 1") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one naming request 1 and %q", tc.name, err, tc.want)
		}
	}
	if got := f.counters(); len(got) != 0 {
		t.Errorf("a batch with an invalid request counted %v", got)
	}
}

// TestScriptUnknownToRedisIsLoaded runs a variant of the script that Redis
// has never seen (as after a restart) rather than flushing the script cache,
// which other tests on the same Redis rely on.
func TestScriptUnknownToRedisIsLoaded(t *testing.T) {
	t.Parallel()
	f := mustLimits(t)
	cfg := f.cfg
	l := newLimiter(&Client{rdb: f.l.rdb}, cfg, checkAndIncrSource+"\n-- "+uuid.NewString()+"\n")
	ctx := context.Background()
	if ok, err := f.l.rdb.ScriptExists(ctx, l.script.Hash()).Result(); err != nil || ok[0] {
		t.Fatalf("script exists = %v, %v; want a new script", ok, err)
	}
	reqs := []LimitRequest{f.request("judy", at, LimitCaps{Total: n(2)}, LimitCaps{}), f.request("judy", at, LimitCaps{Total: n(2)}, LimitCaps{}),
		f.request("judy", at, LimitCaps{Total: n(2)}, LimitCaps{})}
	res, err := l.CheckAndIncr(ctx, reqs)
	if err != nil {
		t.Fatal(err)
	}
	if !res[0].Granted || !res[1].Granted || res[2].Granted {
		t.Errorf("results = %+v, want granted, granted, refused", res)
	}
}

func TestLimiterConfig(t *testing.T) {
	c := MustClient(t)
	if _, err := NewLimiter(c, LimiterConfig{DecisionTTL: time.Millisecond, CounterMargin: -time.Second}); err == nil ||
		!strings.Contains(err.Error(), "DecisionTTL") || !strings.Contains(err.Error(), "CounterMargin") {
		t.Errorf("NewLimiter with a bad config: %v, want both problems", err)
	}
	if _, err := NewLimiter(nil, LimiterConfig{}); err == nil {
		t.Error("NewLimiter(nil) succeeded")
	}
}

func TestParseOutcomeRefusesNonsense(t *testing.T) {
	for _, s := range []string{"", "2", "0", "1|xd:1,1,0", "1|ud:1,x,0", "0|ud:20240101,5,1", "1|uw:1,1,0"} {
		if r, err := parseOutcome(s); err == nil {
			t.Errorf("parseOutcome(%q) = %+v, want an error", s, r)
		}
	}
}

func ExampleLimiter_CheckAndIncr() {
	ctx := context.Background()
	c, err := Open(ctx, testRedisURL())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	l, err := NewLimiter(c, LimiterConfig{})
	if err != nil {
		fmt.Println(err)
		return
	}
	tenant := uuid.New()
	defer l.ForgetTenant(ctx, tenant)
	one := int64(1)
	req := LimitRequest{TenantID: tenant, UserID: "u-42", At: at, User: LimitCaps{PerDay: &one}}
	for range 2 {
		req.DecisionID = uuid.New()
		res, err := l.CheckAndIncr(ctx, []LimitRequest{req})
		if err != nil {
			fmt.Println(err)
			return
		}
		if r := res[0]; r.Granted {
			fmt.Println("granted")
		} else {
			fmt.Printf("refused by %s %s %s at %d of %d\n", r.RefusedBy.Scope, r.RefusedBy.Kind, r.RefusedBy.Period, r.RefusedBy.Seen, r.RefusedBy.Cap)
		}
	}
	// Output:
	// granted
	// refused by USER DAY 20240310 at 1 of 1
}

// BenchmarkCheckAndIncr measures one decision with six caps per op, sent one
// at a time and in pipelined batches; bench/ has the figures that matter.
func BenchmarkCheckAndIncr(b *testing.B) {
	c := MustClient(b)
	l, err := NewLimiter(c, LimiterConfig{})
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range []int{1, 100} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			tenant := uuid.New()
			defer l.ForgetTenant(context.Background(), tenant)
			reqs := make([]LimitRequest, size)
			now := time.Now()
			for i := 0; b.Loop(); i++ {
				for j := range reqs {
					reqs[j] = LimitRequest{TenantID: tenant, UserID: fmt.Sprint("user-", (i*size+j)%100_000), DecisionID: uuid.New(), At: now,
						Tenant: all(1_000_000_000, 7), User: all(1_000_000_000, 30)}
				}
				if _, err := l.CheckAndIncr(context.Background(), reqs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "decisions/s")
		})
	}
}
