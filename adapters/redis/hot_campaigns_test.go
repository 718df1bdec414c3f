package redis

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/domain/sketch"
)

// hotFixture is a HotCampaigns on a clock the test moves. The clock starts
// one second into the window after the real one: a window that has not
// ended by Redis's clock, so its first call cools the hot set, and whose
// keys outlive the test; each later window is later still.
type hotFixture struct {
	t     *testing.T
	h     *HotCampaigns
	cfg   HotCampaignsConfig // with defaults
	clock time.Time
}

func mustHotCampaigns(t *testing.T, cfg HotCampaignsConfig) *hotFixture {
	t.Helper()
	f := &hotFixture{t: t}
	cfg.Now = func() time.Time { return f.clock }
	h, err := NewHotCampaigns(MustClient(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.setDefaults()
	f.h, f.cfg = h, cfg
	f.clock = sketch.WindowStart(sketch.Window(time.Now(), cfg.Sketch.Window)+1, cfg.Sketch.Window).Add(time.Second)
	return f
}

// tenant returns a new tenant whose keys are deleted when the test ends.
func (f *hotFixture) tenant() uuid.UUID {
	tenant := uuid.New()
	f.t.Cleanup(func() {
		if _, err := f.h.sketch.ForgetTenant(context.Background(), tenant); err != nil {
			f.t.Errorf("forget tenant: %v", err)
		}
	})
	return tenant
}

func (f *hotFixture) window() int64 { return f.h.sketch.Window(f.clock) }

func (f *hotFixture) nextWindow() { f.clock = f.clock.Add(f.cfg.Sketch.Window) }

func (f *hotFixture) observe(occurrences map[uuid.UUID][]uuid.UUID) map[uuid.UUID]bool {
	f.t.Helper()
	hot, err := f.h.Observe(context.Background(), occurrences)
	if err != nil {
		f.t.Fatalf("Observe: %v", err)
	}
	return hot
}

// exact returns the shadow count of campaign in the tenant's current window.
func (f *hotFixture) exact(tenant, campaign uuid.UUID) int64 {
	f.t.Helper()
	n, err := f.h.sketch.rdb.HGet(context.Background(), exactKey(tenant, f.window()), campaign.String()).Int64()
	if err != nil {
		f.t.Fatalf("exact count of %s: %v", campaign, err)
	}
	return n
}

// estimate returns the sketch's estimate of campaign in the tenant's
// current window.
func (f *hotFixture) estimate(tenant, campaign uuid.UUID) SketchEstimate {
	f.t.Helper()
	res, err := f.h.sketch.Estimate(context.Background(), tenant, f.window(), []string{campaign.String()}, f.cfg.Threshold)
	if err != nil {
		f.t.Fatal(err)
	}
	return res[0]
}

func repeat(id uuid.UUID, n int) []uuid.UUID {
	out := make([]uuid.UUID, n)
	for i := range out {
		out[i] = id
	}
	return out
}

func concat(lists ...[]uuid.UUID) []uuid.UUID {
	var out []uuid.UUID
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

func TestHotCampaignsObserveMarksHotAtTheThreshold(t *testing.T) {
	t.Parallel()
	f := mustHotCampaigns(t, HotCampaignsConfig{Threshold: 5, SampleEvery: 1})
	tenant := f.tenant()
	a, b, c := uuid.New(), uuid.New(), uuid.New()
	if got := f.observe(map[uuid.UUID][]uuid.UUID{tenant: repeat(a, 4)}); len(got) != 0 {
		t.Errorf("after 4 occurrences: hot %v, want none", got)
	}
	if got := f.observe(map[uuid.UUID][]uuid.UUID{tenant: {a}}); !reflect.DeepEqual(got, map[uuid.UUID]bool{a: true}) {
		t.Errorf("after 5 occurrences: hot %v, want %s", got, a)
	}
	// Occurrences count per repeat within one call; 4 stay under 5.
	got := f.observe(map[uuid.UUID][]uuid.UUID{tenant: concat(repeat(b, 5), repeat(c, 4))})
	if want := map[uuid.UUID]bool{b: true}; !reflect.DeepEqual(got, want) {
		t.Errorf("b ×5, c ×4 in one call: hot %v, want %v", got, want)
	}
	for id, want := range map[uuid.UUID]int64{a: 5, b: 5, c: 4} {
		if e := f.estimate(tenant, id); e.Count != want {
			t.Errorf("estimate of %s = %d, want %d", id, e.Count, want)
		}
		if n := f.exact(tenant, id); n != want {
			t.Errorf("exact count of %s = %d, want %d", id, n, want)
		}
	}
	if got := f.h.HotRatio(); got != 2.0/3 {
		t.Errorf("HotRatio = %v, want 2/3", got)
	}
	if got, err := f.h.Observe(context.Background(), nil); err != nil || len(got) != 0 {
		t.Errorf("Observe(nothing) = %v, %v; want nothing", got, err)
	}
}

func TestHotCampaignsTenantsAreCountedApart(t *testing.T) {
	t.Parallel()
	f := mustHotCampaigns(t, HotCampaignsConfig{Threshold: 5, SampleEvery: 1})
	t1, t2 := f.tenant(), f.tenant()
	shared, x, y := uuid.New(), uuid.New(), uuid.New()
	// 3 + 3 of the same campaign id: 6 together, but 3 per tenant.
	if got := f.observe(map[uuid.UUID][]uuid.UUID{t1: repeat(shared, 3), t2: repeat(shared, 3)}); len(got) != 0 {
		t.Errorf("hot %v, want none", got)
	}
	got := f.observe(map[uuid.UUID][]uuid.UUID{t1: concat(repeat(x, 5), repeat(shared, 2)), t2: concat(repeat(y, 4), []uuid.UUID{shared})})
	if want := map[uuid.UUID]bool{x: true, shared: true}; !reflect.DeepEqual(got, want) {
		t.Errorf("hot %v, want %v", got, want)
	}
	for _, c := range []struct {
		tenant, campaign uuid.UUID
		want             int64
	}{{t1, shared, 5}, {t2, shared, 4}, {t1, x, 5}, {t2, y, 4}, {t2, x, 0}} {
		if e := f.estimate(c.tenant, c.campaign); e.Count != c.want {
			t.Errorf("estimate of %s in tenant %s = %d, want %d", c.campaign, c.tenant, e.Count, c.want)
		}
	}
	if hot, err := f.h.sketch.HotSet(context.Background(), t2); err != nil || len(hot) != 0 {
		t.Errorf("hot set of the second tenant = %q, %v; want none", hot, err)
	}
	// Per tenant: (t1, shared), (t1, x) hot; (t2, shared), (t2, y) not.
	if got := f.h.HotRatio(); got != 0.5 {
		t.Errorf("HotRatio = %v, want 0.5", got)
	}
}

// campaignsInColumns returns campaign ids whose column (in row 0, the only
// row of a depth-1 sketch of width w) is the one wanted for each.
func campaignsInColumns(width int, columns ...int) []uuid.UUID {
	rng := rand.New(rand.NewPCG(5, 5))
	out := make([]uuid.UUID, len(columns))
	for i, col := range columns {
		for {
			var id uuid.UUID
			for j := range id {
				id[j] = byte(rng.Uint32())
			}
			if sketch.Column(id.String(), 0, width) == col {
				out[i] = id
				break
			}
		}
	}
	return out
}

// TestHotCampaignsMetrics forces a collision: a sketch of one row of three
// counters (ε = 0.99 → width 3; δ = 0.9 → depth 1), every campaign sampled.
// hot is observed 5 times; cold1 shares its counter, cold2 does not.
func TestHotCampaignsMetrics(t *testing.T) {
	t.Parallel()
	f := mustHotCampaigns(t, HotCampaignsConfig{
		Sketch: SketchConfig{Epsilon: 0.99, Delta: 0.9}, Threshold: 5, SampleEvery: 1,
	})
	if w, d := f.h.sketch.Shape(); w != 3 || d != 1 {
		t.Fatalf("shape %d × %d, want 3 × 1", w, d)
	}
	ids := campaignsInColumns(3, 0, 0, 1)
	hot, cold1, cold2 := ids[0], ids[1], ids[2]
	tenant := f.tenant()
	ctx := context.Background()
	if m, err := f.h.SketchMemory(ctx); err != nil || m != 0 {
		t.Errorf("SketchMemory before any observation = %d, %v; want 0", m, err)
	}

	got := f.observe(map[uuid.UUID][]uuid.UUID{tenant: concat(repeat(hot, 5), []uuid.UUID{cold1, cold2})})
	// cold1 is estimated 6, its counter's: a false positive, listed hot.
	if want := map[uuid.UUID]bool{hot: true, cold1: true}; !reflect.DeepEqual(got, want) {
		t.Errorf("hot %v, want %v", got, want)
	}
	if e, n := f.estimate(tenant, cold1), f.exact(tenant, cold1); e.Count != 6 || n != 1 {
		t.Errorf("cold1: estimate %d, exact %d; want 6 and 1", e.Count, n)
	}
	// 2 of 3 campaigns hot; cold1 and cold2 are truly cold, and the sketch
	// takes one of them for hot.
	if got := f.h.HotRatio(); got != 2.0/3 {
		t.Errorf("HotRatio = %v, want 2/3", got)
	}
	if got := f.h.FalsePositiveRate(); got != 0.5 {
		t.Errorf("FalsePositiveRate = %v, want 0.5", got)
	}
	fp, err := f.h.sketch.Footprint(ctx, tenant, f.window())
	if err != nil {
		t.Fatal(err)
	}
	if m, err := f.h.SketchMemory(ctx); err != nil || m != fp.Bytes || m == 0 {
		t.Errorf("SketchMemory = %d, %v; want the sketch's MEMORY USAGE %d", m, err, fp.Bytes)
	}
	// cold1 reaches the threshold for real: no longer truly cold.
	f.observe(map[uuid.UUID][]uuid.UUID{tenant: repeat(cold1, 4)})
	if got := f.h.FalsePositiveRate(); got != 0 {
		t.Errorf("FalsePositiveRate once cold1 is truly hot = %v, want 0 (cold2 is the only truly cold one)", got)
	}

	// A new window: the figures start from nothing.
	f.nextWindow()
	if r, p := f.h.HotRatio(), f.h.FalsePositiveRate(); r != 0 || p != 0 {
		t.Errorf("in a new window: HotRatio %v, FalsePositiveRate %v; want 0 and 0", r, p)
	}
	if m, err := f.h.SketchMemory(ctx); err != nil || m != 0 {
		t.Errorf("SketchMemory in a new window = %d, %v; want 0", m, err)
	}
	// cold1 is still listed (hot in the previous window, its counter at 10)
	// though the sketch now estimates it 1: the ratio counts the answer
	// given, the false-positive rate the sketch's estimate.
	if got := f.observe(map[uuid.UUID][]uuid.UUID{tenant: {cold2, cold1}}); !reflect.DeepEqual(got, map[uuid.UUID]bool{cold1: true}) {
		t.Errorf("hot in the new window %v, want cold1 only", got)
	}
	if got := f.h.HotRatio(); got != 0.5 {
		t.Errorf("HotRatio = %v, want 0.5", got)
	}
	if got := f.h.FalsePositiveRate(); got != 0 {
		t.Errorf("FalsePositiveRate = %v, want 0", got)
	}
	// A call that computed its window before the clock moved on does not
	// count in the new window's figures.
	f.h.record(f.window()-1, map[tenantCampaign]observation{{tenant, uuid.New()}: {listed: true}})
	if got := f.h.HotRatio(); got != 0.5 {
		t.Errorf("HotRatio after a stale call = %v, want 0.5", got)
	}
}

func TestHotCampaignsShadowCountsOnlySampledCampaigns(t *testing.T) {
	t.Parallel()
	f := mustHotCampaigns(t, HotCampaignsConfig{})
	if f.h.every != 16 || f.h.threshold != 5000 {
		t.Fatalf("defaults: SampleEvery %d, Threshold %d; want 16 and 5000", f.h.every, f.h.threshold)
	}
	tenant := f.tenant()
	var campaigns []uuid.UUID
	want := map[string]string{}
	for range 400 {
		id := uuid.New()
		campaigns = append(campaigns, id, id)
		// The documented rule, not the code under test: FNV-1a (32 bits)
		// of the id's 16 bytes, a multiple of 16.
		h := fnv.New32a()
		h.Write(id[:])
		if h.Sum32()%16 == 0 {
			want[id.String()] = "2"
		}
	}
	f.observe(map[uuid.UUID][]uuid.UUID{tenant: campaigns})
	ctx := context.Background()
	key := exactKey(tenant, f.window())
	got, err := f.h.sketch.rdb.HGetAll(ctx, key).Result()
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("shadow counts = %v, %v; want %v", got, err, want)
	}
	// 1 in 16 of 400: 25 expected; a wider band would mean a biased hash.
	if len(want) < 10 || len(want) > 45 {
		t.Errorf("%d of 400 campaigns sampled, want about 25", len(want))
	}
	sketchTTL, err1 := f.h.sketch.rdb.TTL(ctx, sketchKey(tenant, f.window())).Result()
	exactTTL, err2 := f.h.sketch.rdb.TTL(ctx, key).Result()
	if err1 != nil || err2 != nil || exactTTL <= 0 || exactTTL-sketchTTL > time.Second || sketchTTL-exactTTL > time.Second {
		t.Errorf("TTL of the shadow counts %v (%v), of the sketch %v (%v); want the same", exactTTL, err2, sketchTTL, err1)
	}
}

// TestHotCampaignsScriptUnknownToRedisCountsShadowsOnce runs a variant of
// CMS_ADD that Redis has never seen: the script calls are sent again, the
// shadow counts are not.
func TestHotCampaignsScriptUnknownToRedisCountsShadowsOnce(t *testing.T) {
	t.Parallel()
	f := mustHotCampaigns(t, HotCampaignsConfig{SampleEvery: 1, Threshold: 3, Sketch: SketchConfig{MaxItemsPerCall: 2}})
	f.h.sketch = newSketch(&Client{rdb: f.h.sketch.rdb}, f.cfg.Sketch, cmsAddSource+"\n-- "+uuid.NewString()+"\n")
	if ok, err := f.h.sketch.rdb.ScriptExists(context.Background(), f.h.sketch.script.Hash()).Result(); err != nil || ok[0] {
		t.Fatalf("script exists = %v, %v; want a new script", ok, err)
	}
	t1, t2 := f.tenant(), f.tenant()
	a, b := uuid.New(), uuid.New()
	got := f.observe(map[uuid.UUID][]uuid.UUID{t1: repeat(a, 3), t2: {b, b, a}})
	if want := map[uuid.UUID]bool{a: true}; !reflect.DeepEqual(got, want) {
		t.Errorf("hot %v, want %v", got, want)
	}
	for _, c := range []struct {
		tenant, campaign uuid.UUID
		want             int64
	}{{t1, a, 3}, {t2, b, 2}, {t2, a, 1}} {
		if e, n := f.estimate(c.tenant, c.campaign), f.exact(c.tenant, c.campaign); e.Count != c.want || n != c.want {
			t.Errorf("%s in tenant %s: estimate %d, exact %d; want %d", c.campaign, c.tenant, e.Count, n, c.want)
		}
	}
}

func TestHotCampaignsConcurrentObserve(t *testing.T) {
	t.Parallel()
	f := mustHotCampaigns(t, HotCampaignsConfig{Threshold: 100, SampleEvery: 1})
	tenant := f.tenant()
	a, b := uuid.New(), uuid.New()
	const workers, calls = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range calls {
				if _, err := f.h.Observe(context.Background(), map[uuid.UUID][]uuid.UUID{tenant: {a, b, a}}); err != nil {
					errs <- err
					return
				}
				f.h.HotRatio()
				f.h.FalsePositiveRate()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if e, n := f.estimate(tenant, a), f.exact(tenant, a); e.Count != 2*workers*calls || n != 2*workers*calls {
		t.Errorf("a: estimate %d, exact %d; want %d", e.Count, n, 2*workers*calls)
	}
	// a (400) is hot, b (200) too; neither is a false positive.
	if r, p := f.h.HotRatio(), f.h.FalsePositiveRate(); r != 1 || p != 0 {
		t.Errorf("HotRatio %v, FalsePositiveRate %v; want 1 and 0", r, p)
	}
}

func TestHotCampaignsInvalidCallsSendNothing(t *testing.T) {
	t.Parallel()
	f := mustHotCampaigns(t, HotCampaignsConfig{})
	tenant := f.tenant()
	_, err := f.h.Observe(context.Background(), map[uuid.UUID][]uuid.UUID{uuid.Nil: {uuid.New()}, tenant: {uuid.New()}})
	if err == nil || !strings.Contains(err.Error(), "no tenant id") {
		t.Errorf("Observe with a nil tenant = %v, want an error", err)
	}
	if n, _ := f.h.sketch.rdb.Exists(context.Background(), sketchKey(tenant, f.window()), hotSetKey(tenant)).Result(); n != 0 {
		t.Errorf("an invalid call left %d keys", n)
	}
}

func TestHotCampaignsConfig(t *testing.T) {
	c := MustClient(t)
	_, err := NewHotCampaigns(c, HotCampaignsConfig{
		Sketch: SketchConfig{Epsilon: 2, Window: 1500 * time.Millisecond}, Threshold: -1, SampleEvery: -3,
	})
	for _, want := range []string{"epsilon 2", "Window 1.5s", "Threshold -1", "SampleEvery -3"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("NewHotCampaigns with a bad config: %v, want it to name %s", err, want)
		}
	}
	// Validate without defaults: the zero config names every field.
	err = HotCampaignsConfig{}.Validate()
	for _, want := range []string{"Sketch", "Threshold 0", "SampleEvery 0", "Now"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate of the zero config: %v, want it to name %s", err, want)
		}
	}
	if _, err := NewHotCampaigns(nil, HotCampaignsConfig{}); err == nil {
		t.Error("NewHotCampaigns(nil) succeeded")
	}
	if _, err := NewHotCampaigns(c, HotCampaignsConfig{}); err != nil {
		t.Errorf("NewHotCampaigns with defaults: %v", err)
	}
}

func ExampleHotCampaigns_Observe() {
	ctx := context.Background()
	c, err := Open(ctx, testRedisURL())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	// A clock stopped at the start of the current window keeps the three
	// calls in one window, whose sketch is alive.
	start := time.Now().Truncate(10 * time.Minute)
	h, err := NewHotCampaigns(c, HotCampaignsConfig{Threshold: 3, Now: func() time.Time { return start }})
	if err != nil {
		fmt.Println(err)
		return
	}
	tenant := uuid.New()
	defer h.sketch.ForgetTenant(ctx, tenant)
	campaign := uuid.MustParse("0b8f9c1e-2f57-4f4e-8a1b-6c2d1e3f4a5b")
	for range 3 {
		hot, err := h.Observe(ctx, map[uuid.UUID][]uuid.UUID{tenant: {campaign}})
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(hot[campaign])
	}
	// Output:
	// false
	// false
	// true
}
