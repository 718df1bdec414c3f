// This file is the engine's hot-campaign filter (DESIGN.md §6, issue #5): a
// count-min sketch of each tenant's campaign ids per window, kept in Redis
// and updated and queried by one Lua script, CMS_ADD (sketch.lua).
// domain/sketch is the same sketch in Go, for offline use and tests: both
// place an item in the same cells (shared test vectors prove it).
//
// Keys (the tenant id in braces is the Redis Cluster hash tag, so a call
// touches one slot):
//
//	cms:{<tenantId>}:<windowTs>   hash: field "<row>:<col>" (0-based) is a
//	                              counter, field "shape" is "<depth>x<width>";
//	                              expires Retention after the window's end
//	hot:set:{<tenantId>}          set: items hot in the newest window or
//	                              the one before (see SketchEstimate.Listed);
//	                              expires HotTTL after the last call that
//	                              found an item at or over the threshold
//	cms:{<tenantId>}:<windowTs>:exact
//	                              hash: exact shadow counts of a sample of
//	                              items (HotCampaigns), expiring with the
//	                              window's sketch
//
// windowTs is floor(unix seconds / window seconds), sketch.Window.

package redis

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/incentives-platform/incentives/domain/sketch"
)

//go:embed sketch.lua
var cmsAddSource string

// SketchConfig configures a Sketch.
type SketchConfig struct {
	// Epsilon and Delta bound the error: an estimate exceeds the true count
	// by more than Epsilon times the window's total with probability at most
	// Delta. They set the shape, width ⌈e/ε⌉ by depth ⌈ln(1/δ)⌉. Default 0.01
	// each: 272 × 5. Every process counting into a tenant's windows must use
	// the same values: the script refuses a call whose shape differs from
	// the window's (a mix would under-estimate), so change them only from
	// one window to the next.
	Epsilon, Delta float64
	// Window is the length of a window, a whole number of seconds. Default
	// 10 minutes.
	Window time.Duration
	// Retention is how long a window's sketch outlives the window's end, so
	// that late events and readers of the previous window still find it.
	// Default 10 minutes (DESIGN.md §6). The hot set is cooled against the
	// previous window's sketch when a window starts: with a Retention of 0
	// that sketch is gone by then, and the set is emptied at every window's
	// start (Listed is then Hot, give or take a concurrent call).
	Retention time.Duration
	// HotTTL is how long the hot set lives after the last call that found an
	// item at or over the threshold: a safety net for a tenant that goes
	// quiet, since members otherwise leave when a window starts (see
	// SketchEstimate.Listed). Default 2 windows; shorter, it can end a
	// member's listing before the end of the window after its hot one.
	HotTTL time.Duration
	// MaxItemsPerCall bounds the items of one script call: a longer batch is
	// split into several calls sent in one pipeline, so that no single
	// script blocks Redis for long. Default 1000; at most 10,000.
	MaxItemsPerCall int
}

func (c *SketchConfig) setDefaults() {
	if c.Epsilon == 0 {
		c.Epsilon = 0.01
	}
	if c.Delta == 0 {
		c.Delta = 0.01
	}
	if c.Window == 0 {
		c.Window = 10 * time.Minute
	}
	if c.Retention == 0 {
		c.Retention = 10 * time.Minute
	}
	if c.HotTTL == 0 {
		c.HotTTL = 2 * c.Window
	}
	if c.MaxItemsPerCall == 0 {
		c.MaxItemsPerCall = 1000
	}
}

// Validate reports every problem of c.
func (c SketchConfig) Validate() error {
	var errs []error
	if _, _, err := sketch.Dimensions(c.Epsilon, c.Delta); err != nil {
		errs = append(errs, err)
	}
	if c.Window < time.Second || c.Window%time.Second != 0 {
		errs = append(errs, fmt.Errorf("Window %v: must be a positive whole number of seconds", c.Window))
	}
	if c.Retention < 0 || c.Retention%time.Second != 0 {
		errs = append(errs, fmt.Errorf("Retention %v: must be a whole number of seconds, not negative", c.Retention))
	}
	if c.HotTTL < time.Second || c.HotTTL%time.Second != 0 {
		errs = append(errs, fmt.Errorf("HotTTL %v: must be a positive whole number of seconds", c.HotTTL))
	}
	if c.MaxItemsPerCall < 1 || c.MaxItemsPerCall > 10_000 {
		errs = append(errs, fmt.Errorf("MaxItemsPerCall %d: must be 1 to 10,000", c.MaxItemsPerCall))
	}
	return errors.Join(errs...)
}

// SketchEstimate is the sketch's answer for one item of a batch.
type SketchEstimate struct {
	// Count is the item's estimated count in the window just after this
	// occurrence: never below the true count, and above it by more than
	// ε times the window's total with probability at most δ.
	Count int64
	// Hot reports Count at or over the threshold: the item is hot in this
	// window. It can only turn true within a window, and starts false again
	// in the next, until the new window's count reaches the threshold.
	Hot bool
	// Listed reports the item in the tenant's hot set when this occurrence
	// was counted: hot in this window so far (Hot now or earlier in it), or
	// hot in the previous window (its estimate there at or over the
	// threshold). A campaign hot in window w is thus listed through w + 1
	// and drops out at the start of w + 2 unless it is hot in w + 1 too. It
	// is the sticky answer, for callers that must not flap at a window's
	// start.
	//
	// The set is cooled by the first adding call of each window that has
	// not ended by Redis's clock (a late event's call into a past window
	// never cools): members whose estimate in the previous window's sketch
	// is below that call's threshold leave, all of them when that sketch is
	// missing or has another shape. So the statement holds when callers
	// count into the current window, with one threshold, and Retention keeps
	// the previous window's sketch past the new window's first call. The
	// set also expires HotTTL after the tenant's last hot call: the default,
	// 2 windows, outlasts every listing above; a shorter one can end a
	// listing early.
	Listed bool
}

// Sketch runs CMS_ADD. It is safe for concurrent use, by any number of
// goroutines and processes: each call is one Lua script, which Redis runs
// atomically, so no increment is lost and every estimate counts all the
// increments before it.
type Sketch struct {
	rdb      *goredis.Client
	script   *goredis.Script
	width    int
	depth    int
	window   int64 // seconds
	keep     int64 // seconds past the window's end
	hotTTL   string
	maxItems int
}

// NewSketch returns a Sketch on c's Redis. It returns an error for an
// invalid config.
func NewSketch(c *Client, cfg SketchConfig) (*Sketch, error) {
	if c == nil {
		return nil, errors.New("new sketch: nil client")
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new sketch: %w", err)
	}
	return newSketch(c, cfg, cmsAddSource), nil
}

func newSketch(c *Client, cfg SketchConfig, source string) *Sketch {
	w, d, _ := sketch.Dimensions(cfg.Epsilon, cfg.Delta) // validated
	return &Sketch{
		rdb:      c.rdb,
		script:   goredis.NewScript(source),
		width:    w,
		depth:    d,
		window:   int64(cfg.Window / time.Second),
		keep:     int64(cfg.Retention / time.Second),
		hotTTL:   strconv.FormatInt(int64(cfg.HotTTL/time.Second), 10),
		maxItems: cfg.MaxItemsPerCall,
	}
}

// Shape returns the sketch's width and depth, to build a domain/sketch twin
// with sketch.New(width, depth).
func (s *Sketch) Shape() (width, depth int) { return s.width, s.depth }

// Window returns the index of the window that contains t.
func (s *Sketch) Window(t time.Time) int64 {
	return sketch.Window(t, time.Duration(s.window)*time.Second)
}

// AddAndEstimate adds one occurrence of each item to the tenant's sketch of
// window windowTs, in order, and returns each item's estimate just after
// its own occurrence; an item at or over threshold joins the tenant's hot
// set, and the window's first call cools the set (see
// SketchEstimate.Listed). An item repeated in items is added once per
// occurrence, exactly as the same calls to sketch.Sketch.Add would.
//
// items are hashed as bytes: campaign ids must be given in one canonical
// form (uuid.UUID.String(), lowercase), or one campaign counts as several.
// A batch of up to MaxItemsPerCall items is one script call; a longer one is
// several, sent in one pipeline: one round trip either way.
//
// windowTs is the caller's choice (the event's window, or the clock's); a
// window whose sketch has already expired is counted in a sketch that
// expires at once, so its estimates count only this batch. A window that
// has ended by Redis's clock never cools the hot set, which is kept for
// the newest windows: Listed means what its doc says when the newest
// window is counted first, as with the clock's window (HotCampaigns).
//
// It returns an error, sending nothing, for a nil tenant or a threshold
// below 1. On a Redis error some calls of a long batch may have counted: a
// retry counts their items again, which can only raise estimates. A window
// written with another Epsilon or Delta is refused with an error naming
// both shapes.
func (s *Sketch) AddAndEstimate(ctx context.Context, tenantID uuid.UUID, windowTs int64, items []string, threshold int64) ([]SketchEstimate, error) {
	return s.call(ctx, tenantID, windowTs, items, threshold, true)
}

// Estimate returns the estimates of items in the tenant's sketch of window
// windowTs without counting them or writing anything: for metrics, such as
// comparing with exact shadow counts, and for readers. Hot reports an
// estimate at or over threshold; Listed, membership of the hot set. Its
// errors are AddAndEstimate's.
func (s *Sketch) Estimate(ctx context.Context, tenantID uuid.UUID, windowTs int64, items []string, threshold int64) ([]SketchEstimate, error) {
	return s.call(ctx, tenantID, windowTs, items, threshold, false)
}

func (s *Sketch) call(ctx context.Context, tenantID uuid.UUID, windowTs int64, items []string, threshold int64, add bool) ([]SketchEstimate, error) {
	calls, err := s.calls(tenantID, windowTs, items, threshold, add)
	if err != nil || len(calls) == 0 {
		return nil, err
	}
	cmds, err := runScript(ctx, s.rdb, s.script, "CMS_ADD", calls)
	if err != nil {
		return nil, err
	}
	return s.estimates(calls, cmds, threshold, len(items))
}

// cmsHead is the number of CMS_ADD's arguments before the items.
const cmsHead = 7

// calls validates a batch and splits it into CMS_ADD calls of at most
// maxItems items each: none for no items.
func (s *Sketch) calls(tenantID uuid.UUID, windowTs int64, items []string, threshold int64, add bool) ([]scriptCall, error) {
	var errs []error
	if tenantID == uuid.Nil {
		errs = append(errs, errors.New("no tenant id"))
	}
	if threshold < 1 {
		errs = append(errs, fmt.Errorf("threshold %d: must be at least 1", threshold))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("count-min sketch: %w", err)
	}
	if len(items) == 0 {
		return nil, nil
	}
	by := "0"
	if add {
		by = "1"
	}
	keys := []string{sketchKey(tenantID, windowTs), hotSetKey(tenantID), sketchKey(tenantID, windowTs-1)}
	head := [cmsHead]any{
		strconv.Itoa(s.width), strconv.Itoa(s.depth), by, strconv.FormatInt(threshold, 10),
		strconv.FormatInt(s.expireAt(windowTs), 10), s.hotTTL, strconv.FormatInt((windowTs+1)*s.window, 10),
	}
	var calls []scriptCall
	for start := 0; start < len(items); start += s.maxItems {
		chunk := items[start:min(start+s.maxItems, len(items))]
		args := make([]any, cmsHead, cmsHead+len(chunk))
		copy(args, head[:])
		for _, item := range chunk {
			args = append(args, item)
		}
		calls = append(calls, scriptCall{keys: keys, args: args})
	}
	return calls, nil
}

// estimates decodes the replies of calls, n items in all.
func (s *Sketch) estimates(calls []scriptCall, cmds []*goredis.Cmd, threshold int64, n int) ([]SketchEstimate, error) {
	out := make([]SketchEstimate, 0, n)
	for i, cmd := range cmds {
		key := calls[i].keys[0]
		reply, err := cmd.Int64Slice()
		if err != nil {
			return nil, fmt.Errorf("count-min sketch %s: %w", key, err)
		}
		if want := 2 * (len(calls[i].args) - cmsHead); len(reply) != want {
			return nil, fmt.Errorf("count-min sketch %s: %d values for %d items", key, len(reply), want/2)
		}
		for j := 0; j < len(reply); j += 2 {
			out = append(out, SketchEstimate{Count: reply[j], Hot: reply[j] >= threshold, Listed: reply[j+1] == 1})
		}
	}
	return out, nil
}

// expireAt is the Unix time the sketch of window windowTs expires at: the
// window's end plus the retention.
func (s *Sketch) expireAt(windowTs int64) int64 { return (windowTs+1)*s.window + s.keep }

// SketchFootprint is what one window's sketch costs Redis.
type SketchFootprint struct {
	// Bytes is MEMORY USAGE of the hash, every field counted.
	Bytes int64
	// Fields is the number of fields: the counters set so far and "shape".
	Fields int64
	// Encoding is Redis's encoding of the hash (OBJECT ENCODING): listpack
	// while it has at most hash-max-listpack-entries fields (128 by
	// default), hashtable beyond.
	Encoding string
}

// Footprint measures the tenant's sketch of window windowTs in one round
// trip, the zero SketchFootprint when it does not exist: for the
// sketch-memory metric and the benchmarks.
func (s *Sketch) Footprint(ctx context.Context, tenantID uuid.UUID, windowTs int64) (SketchFootprint, error) {
	key := sketchKey(tenantID, windowTs)
	pipe := s.rdb.Pipeline()
	bytes := pipe.MemoryUsage(ctx, key, 0)
	fields := pipe.HLen(ctx, key)
	encoding := pipe.ObjectEncoding(ctx, key)
	_, _ = pipe.Exec(ctx) // each command is checked below
	if errors.Is(bytes.Err(), goredis.Nil) {
		return SketchFootprint{}, nil
	}
	if err := errors.Join(bytes.Err(), fields.Err(), encoding.Err()); err != nil {
		return SketchFootprint{}, fmt.Errorf("footprint of count-min sketch %s: %w", key, err)
	}
	return SketchFootprint{Bytes: bytes.Val(), Fields: fields.Val(), Encoding: encoding.Val()}, nil
}

// HotSet returns the members of the tenant's hot set, in no order.
func (s *Sketch) HotSet(ctx context.Context, tenantID uuid.UUID) ([]string, error) {
	m, err := s.rdb.SMembers(ctx, hotSetKey(tenantID)).Result()
	if err != nil {
		return nil, fmt.Errorf("hot set of tenant %s: %w", tenantID, err)
	}
	return m, nil
}

// ForgetTenant deletes every sketch and the hot set of a tenant, and returns
// how many keys it deleted: for tests, benchmarks and the removal of a
// tenant, never the hot path, since it scans the keyspace. In a Redis
// Cluster it must run on the node that owns the tenant's slot.
func (s *Sketch) ForgetTenant(ctx context.Context, tenantID uuid.UUID) (int64, error) {
	n, err := unlinkMatching(ctx, s.rdb, "cms:{"+tenantID.String()+"}:*", hotSetKey(tenantID))
	if err != nil {
		return n, fmt.Errorf("forget sketches of tenant %s: %w", tenantID, err)
	}
	return n, nil
}

func sketchKey(tenantID uuid.UUID, windowTs int64) string {
	return "cms:{" + tenantID.String() + "}:" + strconv.FormatInt(windowTs, 10)
}

func hotSetKey(tenantID uuid.UUID) string { return "hot:set:{" + tenantID.String() + "}" }
