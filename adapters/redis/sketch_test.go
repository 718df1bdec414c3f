package redis

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/domain/sketch"
)

// Each test counts under its own random tenant, so its keys
// (cms:{<tenant>}:<window>, hot:set:{<tenant>}) are its own: tests run in
// parallel with each other and with other packages on the same Redis, and
// each deletes its keys when it ends.

type sketchFixture struct {
	t      *testing.T
	s      *Sketch
	tenant uuid.UUID
}

func mustSketch(t *testing.T, cfg SketchConfig) *sketchFixture {
	t.Helper()
	s, err := NewSketch(MustClient(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	f := &sketchFixture{t: t, s: s, tenant: uuid.New()}
	t.Cleanup(func() {
		if _, err := s.ForgetTenant(context.Background(), f.tenant); err != nil {
			t.Errorf("forget tenant: %v", err)
		}
	})
	return f
}

func (f *sketchFixture) add(window int64, threshold int64, items ...string) []SketchEstimate {
	f.t.Helper()
	res, err := f.s.AddAndEstimate(context.Background(), f.tenant, window, items, threshold)
	if err != nil {
		f.t.Fatalf("AddAndEstimate: %v", err)
	}
	if len(res) != len(items) {
		f.t.Fatalf("AddAndEstimate answered %d estimates for %d items", len(res), len(items))
	}
	return res
}

func (f *sketchFixture) estimate(window int64, threshold int64, items ...string) []SketchEstimate {
	f.t.Helper()
	res, err := f.s.Estimate(context.Background(), f.tenant, window, items, threshold)
	if err != nil {
		f.t.Fatalf("Estimate: %v", err)
	}
	return res
}

// hash returns every field of the window's sketch.
func (f *sketchFixture) hash(window int64) map[string]string {
	f.t.Helper()
	h, err := f.s.rdb.HGetAll(context.Background(), sketchKey(f.tenant, window)).Result()
	if err != nil {
		f.t.Fatal(err)
	}
	return h
}

// now is the current window: keys of a window long past expire at once.
func (f *sketchFixture) now() int64 { return f.s.Window(time.Now()) }

// sharedVector is a line of the vectors domain/sketch checks its Go hashing
// against: the Lua hashing must give the same.
type sharedVector struct {
	Input    string `json:"input"`
	InputHex string `json:"input_hex"`
	Seed     string `json:"seed"`
	Hash     string `json:"hash"`
}

func loadSharedVectors(t *testing.T) (inputs []string, seeds, hashes [][]uint32) {
	t.Helper()
	raw, err := os.ReadFile("../../domain/sketch/testdata/murmur3_x86_32.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct{ Vectors []sharedVector }
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	// Vectors of one input are hashed in one call, with all their seeds, as
	// the sketch hashes an item with d seeds.
	index := map[string]int{}
	for _, v := range file.Vectors {
		input := v.Input
		if v.InputHex != "" {
			b, err := hex.DecodeString(v.InputHex)
			if err != nil {
				t.Fatal(err)
			}
			input = string(b)
		}
		seed, err1 := strconv.ParseUint(v.Seed, 0, 32)
		hash, err2 := strconv.ParseUint(v.Hash, 0, 32)
		if err1 != nil || err2 != nil {
			t.Fatalf("vector %+v: %v, %v", v, err1, err2)
		}
		i, ok := index[input]
		if !ok {
			i = len(inputs)
			index[input] = i
			inputs = append(inputs, input)
			seeds = append(seeds, nil)
			hashes = append(hashes, nil)
		}
		seeds[i] = append(seeds[i], uint32(seed))
		hashes[i] = append(hashes[i], uint32(hash))
	}
	if len(file.Vectors) < 50 {
		t.Fatalf("%d shared vectors, want at least 50", len(file.Vectors))
	}
	return inputs, seeds, hashes
}

// murmur3Section is the hash function of sketch.lua, cut out of the script
// itself, so the tests run the very code CMS_ADD runs.
func murmur3Section(t testing.TB) string {
	t.Helper()
	_, rest, ok1 := strings.Cut(cmsAddSource, "-- murmur3 begin\n")
	section, _, ok2 := strings.Cut(rest, "-- murmur3 end\n")
	if !ok1 || !ok2 {
		t.Fatal("sketch.lua has no -- murmur3 begin/end section")
	}
	return section
}

func TestSketchLuaMurmur3MatchesSharedVectors(t *testing.T) {
	t.Parallel()
	rdb := MustClient(t).rdb
	// ARGV: input, then its seeds joined by commas, for each input.
	script := murmur3Section(t) + `
local out = {}
for i = 1, #ARGV, 2 do
  local seeds = {}
  for s in string.gmatch(ARGV[i + 1], '[^,]+') do
    seeds[#seeds + 1] = tonumber(s)
  end
  local hashes = murmur3(ARGV[i], seeds)
  for j = 1, #hashes do
    out[#out + 1] = hashes[j]
  end
end
return out
`
	inputs, seeds, hashes := loadSharedVectors(t)
	var args []any
	var want []int64
	for i, in := range inputs {
		s := make([]string, len(seeds[i]))
		for j, seed := range seeds[i] {
			s[j] = strconv.FormatUint(uint64(seed), 10)
			want = append(want, int64(hashes[i][j]))
			// The Go hashing is held to the same vectors in domain/sketch.
			if got := sketch.Murmur3(in, seed); got != hashes[i][j] {
				t.Errorf("Go Murmur3(%q, %#08x) = %#08x, want %#08x", in, seed, got, hashes[i][j])
			}
		}
		args = append(args, in, strings.Join(s, ","))
	}
	got, err := rdb.Eval(context.Background(), script, nil, args...).Int64Slice()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("Lua answered %d hashes, want %d", len(got), len(want))
	}
	k := 0
	for i, in := range inputs {
		for _, seed := range seeds[i] {
			if got[k] != want[k] {
				t.Errorf("Lua murmur3(%q, %#08x) = %#08x, want %#08x", in, seed, got[k], want[k])
			}
			k++
		}
	}
}

// TestSketchLuaMurmur3SMHasherVerification runs SMHasher's verification of
// an implementation in Redis: 256 keys of 0 to 255 bytes, each hashed with
// seed 256 - length, their hashes hashed with seed 0.
func TestSketchLuaMurmur3SMHasherVerification(t *testing.T) {
	t.Parallel()
	script := murmur3Section(t) + `
local key, hashes = {}, {}
for i = 0, 255 do
  local h = murmur3(string.char(unpack(key)), {256 - i})[1]
  hashes[i + 1] = string.char(h % 256, math.floor(h / 256) % 256, math.floor(h / 65536) % 256, math.floor(h / 16777216))
  key[i + 1] = i
end
return murmur3(table.concat(hashes), {0})[1]
`
	got, err := MustClient(t).rdb.Eval(context.Background(), script, nil).Int64()
	if err != nil || got != 0xb0f57ee3 {
		t.Errorf("verification value = %#08x, %v; want 0xb0f57ee3", got, err)
	}
}

// oddItems are items that stress the hashing and the key format: empty,
// every tail length, bytes over 0x7f, separators, long.
var oddItems = []string{
	"", "a", "ab", "abc", "abcd", "abcde", "\x00", "\xff\xfe\xfd", "\x80\x00\x00\x80", "ππππ", "🚀",
	"cms:{x}:1", "0:1", "shape", strings.Repeat("long item ", 40),
}

func TestSketchMatchesTheGoSketchCellForCell(t *testing.T) {
	t.Parallel()
	// A small batch size makes long batches several calls in one pipeline.
	f := mustSketch(t, SketchConfig{MaxItemsPerCall: 97})
	window := f.now()
	width, depth := f.s.Shape()
	twin, err := sketch.New(width, depth)
	if err != nil {
		t.Fatal(err)
	}
	_, stream := zipfCampaigns(7, 20_000, 500, 1.1)
	rng := rand.New(rand.NewPCG(7, 7))
	for i := range 300 {
		at := rng.IntN(len(stream))
		stream = append(stream[:at], append([]string{oddItems[i%len(oddItems)]}, stream[at:]...)...)
	}
	const threshold = 1 << 40 // nobody is hot here
	for len(stream) > 0 {
		size := min(1+rng.IntN(400), len(stream))
		batch := stream[:size]
		stream = stream[size:]
		for i, e := range f.add(window, threshold, batch...) {
			if want := twin.Add(batch[i], 1); e.Count != int64(want) {
				t.Fatalf("estimate of %q = %d, the Go sketch's %d", batch[i], e.Count, want)
			}
		}
	}
	h := f.hash(window)
	if h["shape"] != fmt.Sprintf("%dx%d", depth, width) {
		t.Errorf("shape = %q, want %dx%d", h["shape"], depth, width)
	}
	delete(h, "shape")
	cells := 0
	for r := range depth {
		for c := range width {
			field := fmt.Sprintf("%d:%d", r, c)
			want := twin.Count(r, c)
			if want > 0 {
				cells++
			}
			if got := h[field]; (got == "" && want != 0) || (got != "" && got != strconv.FormatUint(want, 10)) {
				t.Errorf("counter %s = %q, the Go sketch's %d", field, got, want)
			}
		}
	}
	if len(h) != cells {
		t.Errorf("the hash has %d counters, the Go sketch %d non-zero ones", len(h), cells)
	}
}

// zipfCampaigns draws n of ids campaign ids with Zipf exponent s, as
// domain/sketch's accuracy test does.
func zipfCampaigns(seed uint64, n, ids int, s float64) (universe, stream []string) {
	rng := rand.New(rand.NewPCG(seed, 0x5ca1ab1e))
	universe = make([]string, ids)
	for i := range universe {
		var u uuid.UUID
		binary.BigEndian.PutUint64(u[:8], rng.Uint64())
		binary.BigEndian.PutUint64(u[8:], rng.Uint64())
		universe[i] = u.String()
	}
	z := rand.NewZipf(rng, s, 1, uint64(ids-1))
	stream = make([]string, n)
	for i := range stream {
		stream[i] = universe[z.Uint64()]
	}
	return universe, stream
}

// TestSketchAccuracyOnZipfStream is issue #5's accuracy test for the Lua
// sketch: 200,000 events over 5,000 campaigns with s = 1.1, ε = δ = 0.01, in
// batches of 1,000. No estimate may be below the true count, neither those
// answered while counting nor those queried at the end, and the share of
// campaigns estimated above true + εN must stay at or under δ.
func TestSketchAccuracyOnZipfStream(t *testing.T) {
	t.Parallel()
	const (
		n       = 200_000
		ids     = 5_000
		batch   = 1_000
		epsilon = 0.01
		delta   = 0.01
	)
	f := mustSketch(t, SketchConfig{Epsilon: epsilon, Delta: delta})
	window := f.now()
	universe, stream := zipfCampaigns(1, n, ids, 1.1)
	exact := map[string]int64{}
	for start := 0; start < n; start += batch {
		items := stream[start : start+batch]
		for i, e := range f.add(window, 1<<40, items...) {
			exact[items[i]]++
			if e.Count < exact[items[i]] {
				t.Fatalf("event %d: estimate of %s = %d, below the true %d", start+i, items[i], e.Count, exact[items[i]])
			}
		}
	}
	// Every campaign of the universe is queried, those never drawn too.
	bound := int64(epsilon * n)
	var over, maxErr int64
	for i, e := range f.estimate(window, 1<<40, universe...) {
		truth := exact[universe[i]]
		if e.Count < truth {
			t.Fatalf("Estimate(%s) = %d, below the true %d", universe[i], e.Count, truth)
		}
		maxErr = max(maxErr, e.Count-truth)
		if e.Count > truth+bound {
			over++
		}
	}
	share := float64(over) / ids
	t.Logf("Lua sketch: %d distinct of %d campaigns drawn; %d estimates above true + εN (%d): share %.4f (δ = %v); largest error %d",
		len(exact), ids, over, bound, share, delta, maxErr)
	if share > delta {
		t.Errorf("share above true + εN = %.4f, want at most %v", share, delta)
	}
}

func TestSketchHotSet(t *testing.T) {
	t.Parallel()
	f := mustSketch(t, SketchConfig{})
	ctx := context.Background()
	window := f.now()
	const threshold = 3
	type answer struct {
		count       int64
		hot, listed bool
	}
	check := func(step string, got []SketchEstimate, items []string, want ...answer) {
		t.Helper()
		for i, w := range want {
			if g := got[i]; g.Count != w.count || g.Hot != w.hot || g.Listed != w.listed {
				t.Errorf("%s: %s = %+v, want count %d hot %v listed %v", step, items[i], g, w.count, w.hot, w.listed)
			}
		}
	}
	items := []string{"a", "b", "a", "a", "a", "b"}
	check("first batch", f.add(window, threshold, items...), items,
		answer{count: 1}, answer{count: 1}, answer{count: 2},
		answer{count: 3, hot: true, listed: true}, answer{count: 4, hot: true, listed: true}, answer{count: 2})
	if got, err := f.s.HotSet(ctx, f.tenant); err != nil || !reflect.DeepEqual(got, []string{"a"}) {
		t.Errorf("hot set = %q, %v; want [a]", got, err)
	}
	ttl, err := f.s.rdb.TTL(ctx, hotSetKey(f.tenant)).Result()
	if err != nil || ttl > 20*time.Minute || ttl < 20*time.Minute-5*time.Second {
		t.Errorf("hot set TTL = %v, %v; want 2 windows (20m)", ttl, err)
	}
	// Estimating writes nothing, and answers Hot by the threshold given.
	before := f.hash(window)
	check("estimate", f.estimate(window, 2, "a", "b", "c"), []string{"a", "b", "c"},
		answer{count: 4, hot: true, listed: true}, answer{count: 2, hot: true}, answer{count: 0})
	if after := f.hash(window); !reflect.DeepEqual(after, before) {
		t.Errorf("Estimate changed the sketch: %v, was %v", after, before)
	}
	// In the next window a starts from nothing: not hot, but still listed,
	// as hot in the previous window (its cooling, at this window's first
	// call, keeps it: its estimate there, 4, is at or over the threshold).
	check("next window", f.add(window+1, threshold, "a", "b"), []string{"a", "b"}, answer{count: 1, listed: true}, answer{count: 1})
	if got, _ := f.s.HotSet(ctx, f.tenant); !reflect.DeepEqual(got, []string{"a"}) {
		t.Errorf("hot set = %q, want [a]", got)
	}
}

// hotSet returns the tenant's hot set, sorted.
func (f *sketchFixture) hotSet() []string {
	f.t.Helper()
	m, err := f.s.HotSet(context.Background(), f.tenant)
	if err != nil {
		f.t.Fatal(err)
	}
	sort.Strings(m)
	return m
}

// listed returns the Listed answers of a batch, and checks its counts.
func (f *sketchFixture) listed(step string, res []SketchEstimate, items []string, counts ...int64) []bool {
	f.t.Helper()
	out := make([]bool, len(res))
	for i, r := range res {
		if r.Count != counts[i] {
			f.t.Errorf("%s: count of %s = %d, want %d", step, items[i], r.Count, counts[i])
		}
		out[i] = r.Listed
	}
	return out
}

// TestSketchHotSetCoolsPerItem checks the meaning of Listed: hot in this
// window or the previous one. The windows after the current one are in the
// future, so none of them has ended by Redis's clock and each one's first
// call cools the set.
func TestSketchHotSetCoolsPerItem(t *testing.T) {
	t.Parallel()
	f := mustSketch(t, SketchConfig{})
	w := f.now()
	const threshold = 3
	step := func(name string, window int64, items []string, counts []int64, want ...bool) {
		t.Helper()
		if got := f.listed(name, f.add(window, threshold, items...), items, counts...); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: listed %v, want %v", name, got, want)
		}
	}
	// Window w: a and b reach the threshold.
	step("w", w, []string{"a", "a", "a", "b", "b", "b"}, []int64{1, 2, 3, 1, 2, 3},
		false, false, true, false, false, true)
	// w+1: both start again from nothing, still listed as hot in w; b is
	// hot in w+1 too, a stays under the threshold.
	step("w+1", w+1, []string{"a", "b", "b", "b", "a"}, []int64{1, 1, 2, 3, 2},
		true, true, true, true, true)
	if got := f.hotSet(); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("hot set in w+1 = %q, want [a b]", got)
	}
	// w+2: its first call drops a (2 in w+1) and keeps b (3 in w+1), even
	// though the call is about another item; a joins again when hot in w+2.
	step("w+2 first call", w+2, []string{"c"}, []int64{1}, false)
	if got := f.hotSet(); !reflect.DeepEqual(got, []string{"b"}) {
		t.Errorf("hot set at the start of w+2 = %q, want [b]", got)
	}
	step("w+2", w+2, []string{"a", "b", "a", "a"}, []int64{1, 1, 2, 3}, false, true, false, true)
	// Later calls of w+2 cool nothing: a, hot in w+2, and b, hot in w+1,
	// stay for the rest of the window.
	step("w+2 later call", w+2, []string{"b", "a"}, []int64{2, 4}, true, true)
	// w+3: b (2 in w+2) leaves, a (4 in w+2) stays.
	step("w+3 first call", w+3, []string{"b"}, []int64{1}, false)
	if got := f.hotSet(); !reflect.DeepEqual(got, []string{"a"}) {
		t.Errorf("hot set at the start of w+3 = %q, want [a]", got)
	}
	// Estimating never cools: w+4 has no sketch, and a stays listed.
	if got := f.estimate(w+4, threshold, "a"); !got[0].Listed {
		t.Errorf("estimate in w+4 = %+v, want a listed", got[0])
	}
	// w+4 after a window with a under the threshold: nothing is left, and
	// Redis deletes the empty set.
	step("w+4 first call", w+4, []string{"c"}, []int64{1}, false)
	if n, err := f.s.rdb.Exists(context.Background(), hotSetKey(f.tenant)).Result(); err != nil || n != 0 {
		t.Errorf("hot set exists (%d, %v) after every member cooled", n, err)
	}
}

// TestSketchHotSetEmptiedWithoutAPreviousWindowToKeepIt: a window whose
// previous one has no sketch (the tenant was quiet) or one of another shape
// (Epsilon or Delta changed) starts with an empty hot set.
func TestSketchHotSetEmptiedWithoutAPreviousWindowToKeepIt(t *testing.T) {
	t.Parallel()
	f := mustSketch(t, SketchConfig{})
	w := f.now()
	f.add(w, 1, "a")
	if got := f.listed("w+2", f.add(w+2, 1, "b"), []string{"b"}, 1); !got[0] {
		t.Errorf("b not listed at its threshold")
	}
	if got := f.hotSet(); !reflect.DeepEqual(got, []string{"b"}) {
		t.Errorf("hot set after a quiet window = %q, want [b]: a, hot two windows ago, dropped", got)
	}
	wide, err := NewSketch(&Client{rdb: f.s.rdb}, SketchConfig{Epsilon: 0.001})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wide.AddAndEstimate(context.Background(), f.tenant, w+3, []string{"c"}, 1); err != nil {
		t.Fatal(err)
	}
	if got := f.hotSet(); !reflect.DeepEqual(got, []string{"c"}) {
		t.Errorf("hot set = %q, want [c]", got)
	}
	// w+4 is counted 272 wide, w+3 was 2,719: c's cells there say nothing.
	f.add(w+4, 100, "d")
	if got := f.hotSet(); len(got) != 0 {
		t.Errorf("hot set after a window of another shape = %q, want none", got)
	}
}

// TestSketchLateCallsDoNotCool: a call into a window that has ended (a late
// event's) must not judge the hot set by that window's missing neighbour.
func TestSketchLateCallsDoNotCool(t *testing.T) {
	t.Parallel()
	f := mustSketch(t, SketchConfig{})
	w := f.now()
	f.add(w, 2, "a", "a")
	// w-1 has ended but is still retained; it has no sketch, nor has w-2.
	// w-3 is past its retention: its sketch expires at once.
	for _, late := range []int64{w - 1, w - 3} {
		f.add(late, 2, "b")
		if got := f.hotSet(); !reflect.DeepEqual(got, []string{"a"}) {
			t.Errorf("hot set after a call into window w%d = %q, want [a]", late-w, got)
		}
	}
}

func TestSketchKeysCarryTheTenantHashTagAndDocumentedTTLs(t *testing.T) {
	t.Parallel()
	f := mustSketch(t, SketchConfig{})
	ctx := context.Background()
	now := time.Now()
	window := f.s.Window(now)
	f.add(window, 1, "campaign")
	key := fmt.Sprintf("cms:{%s}:%d", f.tenant, window)
	want := map[string]time.Duration{
		key:                                   sketch.WindowStart(window+1, 10*time.Minute).Sub(now) + 10*time.Minute,
		"hot:set:{" + f.tenant.String() + "}": 20 * time.Minute,
	}
	for k, wantTTL := range want {
		ttl, err := f.s.rdb.TTL(ctx, k).Result()
		if err != nil || ttl > wantTTL+time.Second || ttl < wantTTL-5*time.Second {
			t.Errorf("TTL(%s) = %v, %v; want %v", k, ttl, err, wantTTL)
		}
		if open, end := strings.IndexByte(k, '{'), strings.IndexByte(k, '}'); k[open+1:end] != f.tenant.String() {
			t.Errorf("key %q hashes on %q, want the tenant id", k, k[open+1:end])
		}
	}
	if fp, err := f.s.Footprint(ctx, f.tenant, window); err != nil || fp.Fields != 6 || fp.Encoding != "listpack" || fp.Bytes < 50 {
		t.Errorf("Footprint = %+v, %v; want 6 fields in a listpack", fp, err)
	}
	fields := f.hash(window)
	if len(fields) != 6 || fields["shape"] != "5x272" {
		t.Errorf("sketch fields = %v, want 5 counters and shape 5x272", fields)
	}
	for r := range 5 {
		field := fmt.Sprintf("%d:%d", r, sketch.Column("campaign", r, 272))
		if fields[field] != "1" {
			t.Errorf("field %s = %q, want 1", field, fields[field])
		}
	}
	// A window whose sketch is past its retention counts only the batch.
	old := window - 3
	if got := f.add(old, 100, "campaign", "campaign"); got[1].Count != 2 {
		t.Errorf("estimate in an expired window = %d, want 2", got[1].Count)
	}
	if n, err := f.s.rdb.Exists(ctx, sketchKey(f.tenant, old)).Result(); err != nil || n != 0 {
		t.Errorf("the expired window's sketch exists (%d, %v)", n, err)
	}
}

func TestSketchRefusesAnotherShape(t *testing.T) {
	t.Parallel()
	f := mustSketch(t, SketchConfig{})
	window := f.now()
	f.add(window, 10, "x", "y")
	before := f.hash(window)
	wide, err := NewSketch(&Client{rdb: f.s.rdb}, SketchConfig{Epsilon: 0.001})
	if err != nil {
		t.Fatal(err)
	}
	_, err = wide.AddAndEstimate(context.Background(), f.tenant, window, []string{"x"}, 10)
	if err == nil || !strings.Contains(err.Error(), "shape 5x272") || !strings.Contains(err.Error(), "5x2719") {
		t.Errorf("AddAndEstimate with another shape: %v, want an error naming both shapes", err)
	}
	if after := f.hash(window); !reflect.DeepEqual(after, before) {
		t.Errorf("a refused call changed the sketch: %v, was %v", after, before)
	}
}

// TestSketchConcurrentBatchesLoseNothing adds the same multiset from 8
// goroutines in batches of mixed sizes: the final counters are the Go
// sketch's for the whole multiset, whatever the interleaving.
func TestSketchConcurrentBatchesLoseNothing(t *testing.T) {
	t.Parallel()
	f := mustSketch(t, SketchConfig{MaxItemsPerCall: 50})
	window := f.now()
	_, stream := zipfCampaigns(3, 16_000, 300, 1.1)
	twin, _ := sketch.New(f.s.Shape())
	for _, item := range stream {
		twin.Add(item, 1)
	}
	const workers = 8
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := stream[w*len(stream)/workers : (w+1)*len(stream)/workers]
			for len(mine) > 0 {
				size := min(1+len(mine)%173, len(mine))
				if _, err := f.s.AddAndEstimate(context.Background(), f.tenant, window, mine[:size], 1000); err != nil {
					errs <- err
					return
				}
				mine = mine[size:]
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	universe, _ := zipfCampaigns(3, 0, 300, 1.1)
	for i, e := range f.estimate(window, 1000, universe...) {
		if want := int64(twin.Estimate(universe[i])); e.Count != want {
			t.Errorf("Estimate(%s) = %d, the Go sketch's %d", universe[i], e.Count, want)
		}
	}
	hot, err := f.s.HotSet(context.Background(), f.tenant)
	if err != nil {
		t.Fatal(err)
	}
	var wantHot []string
	for _, id := range universe {
		if twin.Estimate(id) >= 1000 {
			wantHot = append(wantHot, id)
		}
	}
	sort.Strings(hot)
	sort.Strings(wantHot)
	if len(wantHot) == 0 || !reflect.DeepEqual(hot, wantHot) {
		t.Errorf("hot set = %q, want %q", hot, wantHot)
	}
}

func TestSketchInvalidCallsSendNothing(t *testing.T) {
	t.Parallel()
	f := mustSketch(t, SketchConfig{})
	ctx := context.Background()
	window := f.now()
	if _, err := f.s.AddAndEstimate(ctx, uuid.Nil, window, []string{"x"}, 0); err == nil ||
		!strings.Contains(err.Error(), "no tenant id") || !strings.Contains(err.Error(), "threshold 0") {
		t.Errorf("AddAndEstimate(nil tenant, threshold 0) = %v, want both problems", err)
	}
	if res, err := f.s.AddAndEstimate(ctx, f.tenant, window, nil, 1); res != nil || err != nil {
		t.Errorf("AddAndEstimate(no items) = %v, %v; want nothing", res, err)
	}
	if n, _ := f.s.rdb.Exists(ctx, sketchKey(f.tenant, window), hotSetKey(f.tenant)).Result(); n != 0 {
		t.Errorf("invalid calls left %d keys", n)
	}
	if fp, err := f.s.Footprint(ctx, f.tenant, window); fp != (SketchFootprint{}) || err != nil {
		t.Errorf("Footprint of no sketch = %+v, %v; want zero", fp, err)
	}
}

// TestSketchScriptUnknownToRedisIsLoaded runs a variant of the script that
// Redis has never seen (as after a restart) rather than flushing the script
// cache, which other tests on the same Redis rely on.
func TestSketchScriptUnknownToRedisIsLoaded(t *testing.T) {
	t.Parallel()
	f := mustSketch(t, SketchConfig{})
	cfg := SketchConfig{MaxItemsPerCall: 2}
	cfg.setDefaults()
	s := newSketch(&Client{rdb: f.s.rdb}, cfg, cmsAddSource+"\n-- "+uuid.NewString()+"\n")
	ctx := context.Background()
	if ok, err := f.s.rdb.ScriptExists(ctx, s.script.Hash()).Result(); err != nil || ok[0] {
		t.Fatalf("script exists = %v, %v; want a new script", ok, err)
	}
	res, err := s.AddAndEstimate(ctx, f.tenant, f.now(), []string{"x", "x", "x", "y", "x"}, 10)
	if err != nil {
		t.Fatal(err)
	}
	var counts []int64
	for _, r := range res {
		counts = append(counts, r.Count)
	}
	if !reflect.DeepEqual(counts, []int64{1, 2, 3, 1, 4}) {
		t.Errorf("counts = %v, want [1 2 3 1 4]", counts)
	}
}

func TestSketchConfig(t *testing.T) {
	c := MustClient(t)
	_, err := NewSketch(c, SketchConfig{Epsilon: 2, Delta: -1, Window: 1500 * time.Millisecond, Retention: -time.Second, HotTTL: time.Millisecond, MaxItemsPerCall: 20_000})
	for _, want := range []string{"epsilon 2", "delta -1", "Window", "Retention", "HotTTL", "MaxItemsPerCall"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("NewSketch with a bad config: %v, want it to name %s", err, want)
		}
	}
	if _, err := NewSketch(nil, SketchConfig{}); err == nil {
		t.Error("NewSketch(nil) succeeded")
	}
	s, err := NewSketch(c, SketchConfig{Window: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if w, d := s.Shape(); w != 272 || d != 5 {
		t.Errorf("default shape %d × %d, want 272 × 5", w, d)
	}
	if got := s.Window(time.Unix(7200, 0)); got != 2 {
		t.Errorf("Window(7200s) with hour windows = %d, want 2", got)
	}
}

func ExampleSketch_AddAndEstimate() {
	ctx := context.Background()
	c, err := Open(ctx, testRedisURL())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	s, err := NewSketch(c, SketchConfig{})
	if err != nil {
		fmt.Println(err)
		return
	}
	tenant := uuid.New()
	defer s.ForgetTenant(ctx, tenant)
	campaign := "0b8f9c1e-2f57-4f4e-8a1b-6c2d1e3f4a5b"
	window := s.Window(time.Now())
	res, err := s.AddAndEstimate(ctx, tenant, window, []string{campaign, campaign, campaign}, 3)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range res {
		fmt.Println(r.Count, r.Hot)
	}
	// Output:
	// 1 false
	// 2 false
	// 3 true
}

// BenchmarkSketchAddAndEstimate measures pipelined batches of a Zipf(1.1)
// stream over 1,000 campaigns; bench/ has the figures that matter.
func BenchmarkSketchAddAndEstimate(b *testing.B) {
	s, err := NewSketch(MustClient(b), SketchConfig{})
	if err != nil {
		b.Fatal(err)
	}
	_, stream := zipfCampaigns(1, 100_000, 1_000, 1.1)
	for _, size := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			tenant := uuid.New()
			defer s.ForgetTenant(context.Background(), tenant)
			window := s.Window(time.Now())
			for i := 0; b.Loop(); i++ {
				start := (i * size) % (len(stream) - size)
				if _, err := s.AddAndEstimate(context.Background(), tenant, window, stream[start:start+size], 5000); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "items/s")
		})
	}
}

func TestSketchIncrExactCountsEachItem(t *testing.T) {
	t.Parallel()
	f := mustSketch(t, SketchConfig{})
	got, err := f.s.IncrExact(context.Background(), f.tenant, f.now(), []string{"a", "b", "a"})
	if err != nil || !reflect.DeepEqual(got, []int64{1, 1, 2}) {
		t.Errorf("IncrExact = %v, %v; want [1 1 2]", got, err)
	}
	// ForgetTenant (the fixture's cleanup) deletes these keys too: the test
	// run leaves no cms: key behind.
}
