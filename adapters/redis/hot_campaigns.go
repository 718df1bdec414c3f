// This file is the engine's HotFilter (DESIGN.md §6, ProjectLLD §6): the
// count-min sketch of sketch.go counting each tenant's matching events per
// campaign in the clock's window, plus the in-process figures behind the
// campaign_hot_ratio and cms_false_positive_rate metrics.

package redis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	enginecmd "github.com/incentives-platform/incentives/commands/engine"
)

var _ enginecmd.HotFilter = (*HotCampaigns)(nil)

// HotCampaignsConfig configures HotCampaigns.
type HotCampaignsConfig struct {
	// Sketch is the sketch's shape, window, retention and hot-set TTL; each
	// field documents its default. Every process of the platform must use
	// the same values.
	Sketch SketchConfig
	// Threshold is the estimated count of a campaign's matching events in a
	// tenant's window at which it is hot. Default 5000 (DESIGN.md §6: 5,000
	// per 10 minutes per tenant).
	Threshold int64
	// SampleEvery picks the campaigns whose exact counts are kept beside the
	// sketch, to measure FalsePositiveRate: those whose id's FNV-1a 32-bit
	// hash (of its 16 bytes) is a multiple of SampleEvery, about one in
	// SampleEvery. The choice depends on the id alone, so every process
	// samples the same campaigns and counts each sampled one whole; FNV, not
	// the sketch's Murmur3, so that the sample is not tied to the sketch's
	// columns. Each sampled campaign of a batch costs one HINCRBY in the
	// batch's pipeline. 1 samples every campaign. Default 16.
	SampleEvery int
	// Now is the clock that picks the window. Default time.Now.
	Now func() time.Time
}

func (c *HotCampaignsConfig) setDefaults() {
	c.Sketch.setDefaults()
	if c.Threshold == 0 {
		c.Threshold = 5000
	}
	if c.SampleEvery == 0 {
		c.SampleEvery = 16
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports every problem of c.
func (c HotCampaignsConfig) Validate() error {
	var errs []error
	if err := c.Sketch.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("Sketch: %w", err))
	}
	if c.Threshold < 1 {
		errs = append(errs, fmt.Errorf("Threshold %d: must be at least 1", c.Threshold))
	}
	if c.SampleEvery < 1 {
		errs = append(errs, fmt.Errorf("SampleEvery %d: must be at least 1", c.SampleEvery))
	}
	if c.Now == nil {
		errs = append(errs, errors.New("Now: no clock"))
	}
	return errors.Join(errs...)
}

// HotCampaigns implements the engine's HotFilter with CMS_ADD. It counts in
// the window of its clock, processing time, not the events' time: hotness
// is about the traffic Redis and Postgres carry now, and a replay of old
// events is traffic now too. Campaign ids are counted as their canonical
// text (uuid.UUID.String()).
//
// It also keeps, in memory, what this process observed in the current
// window, for HotRatio, FalsePositiveRate and SketchMemory: the figures
// start from nothing when the clock enters a new window. Each process
// reports its own view; the estimates and exact counts it saw include
// every process's events.
//
// It is safe for concurrent use.
type HotCampaigns struct {
	sketch    *Sketch
	threshold int64
	every     uint32
	now       func() time.Time

	mu    sync.Mutex
	state hotWindow
}

// hotWindow is what a process observed in one window.
type hotWindow struct {
	index     int64
	campaigns map[tenantCampaign]observation
}

type tenantCampaign struct{ tenant, campaign uuid.UUID }

// observation is the latest of a campaign in a window. Estimates and exact
// counts only grow within a window, so the latest is the largest.
type observation struct {
	listed   bool  // the last answer Observe gave
	sampled  bool  // its exact count is kept
	estimate int64 // the sketch's estimate after its last occurrence
	exact    int64 // its exact count, when sampled
}

// NewHotCampaigns returns a HotCampaigns on c's Redis. It returns an error
// for an invalid config.
func NewHotCampaigns(c *Client, cfg HotCampaignsConfig) (*HotCampaigns, error) {
	if c == nil {
		return nil, errors.New("new hot campaigns: nil client")
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new hot campaigns: %w", err)
	}
	return &HotCampaigns{
		sketch:    newSketch(c, cfg.Sketch, cmsAddSource),
		threshold: cfg.Threshold,
		every:     uint32(cfg.SampleEvery),
		now:       cfg.Now,
	}, nil
}

// tenantBatch is one tenant's part of an Observe call.
type tenantBatch struct {
	tenant    uuid.UUID
	campaigns []uuid.UUID // one per occurrence, in order
	calls     int         // its CMS_ADD calls, in the order of the batch
	sampled   []uuid.UUID // the distinct sampled campaigns
	exact     []*goredis.IntCmd
}

// Observe counts each occurrence of each campaign in its tenant's sketch of
// the clock's window and returns the campaigns listed in their tenant's hot
// set once counted (SketchEstimate.Listed): hot in this window or the
// previous one, so that a campaign's routing does not flap when a window
// starts. Only hot campaigns are in the map, with true. A campaign id given
// under two tenants is counted in each, and hot if it is hot in either.
//
// Every tenant's calls and the sampled campaigns' shadow counts go in one
// pipeline, one round trip; the shadow counts are queued after the
// sketches, so an exact count read back is never below the true count at
// the moment of the estimate it is compared with (unless Redis had lost the
// script, whose calls are then resent after them).
//
// It returns an error, sending nothing, for a nil tenant id. On a Redis
// error some of the batch may have been counted, in the sketch and the
// shadow counts alike: a retry counts it again, which can only raise
// estimates. The metrics are updated only by a call that succeeds.
func (h *HotCampaigns) Observe(ctx context.Context, occurrences map[uuid.UUID][]uuid.UUID) (map[uuid.UUID]bool, error) {
	window := h.sketch.Window(h.now())
	batches := make([]tenantBatch, 0, len(occurrences))
	for tenant, campaigns := range occurrences {
		if len(campaigns) > 0 {
			batches = append(batches, tenantBatch{tenant: tenant, campaigns: campaigns})
		}
	}
	slices.SortFunc(batches, func(a, b tenantBatch) int { return bytes.Compare(a.tenant[:], b.tenant[:]) })
	var calls []scriptCall
	occurs := make([]map[uuid.UUID]int64, len(batches))
	var errs []error
	for i := range batches {
		b := &batches[i]
		items := make([]string, len(b.campaigns))
		occurs[i] = map[uuid.UUID]int64{}
		for j, c := range b.campaigns {
			items[j] = c.String()
			if h.sampled(c) {
				if occurs[i][c] == 0 {
					b.sampled = append(b.sampled, c)
				}
				occurs[i][c]++
			}
		}
		cs, err := h.sketch.calls(b.tenant, window, items, h.threshold, true)
		if err != nil {
			errs = append(errs, fmt.Errorf("tenant %s: %w", b.tenant, err))
			continue
		}
		b.calls = len(cs)
		calls = append(calls, cs...)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("observe hot campaigns: %w", err)
	}
	hot := map[uuid.UUID]bool{}
	if len(calls) == 0 {
		return hot, nil
	}
	cmds, err := runScript(ctx, h.sketch.rdb, h.sketch.script, "CMS_ADD", calls, func(pipe goredis.Pipeliner) {
		for i := range batches {
			b := &batches[i]
			items := make([]string, len(b.sampled))
			counts := make([]int64, len(b.sampled))
			for j, c := range b.sampled {
				items[j], counts[j] = c.String(), occurs[i][c]
			}
			b.exact = h.sketch.queueExact(ctx, pipe, b.tenant, window, items, counts)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("observe hot campaigns: %w", err)
	}
	seen := map[tenantCampaign]observation{}
	for _, b := range batches {
		tenantCalls := calls[:b.calls]
		ests, err := h.sketch.estimates(tenantCalls, cmds[:b.calls], h.threshold, len(b.campaigns))
		calls, cmds = calls[b.calls:], cmds[b.calls:]
		if err != nil {
			return nil, fmt.Errorf("observe hot campaigns: %w", err)
		}
		for j, e := range ests {
			k := tenantCampaign{b.tenant, b.campaigns[j]}
			seen[k] = observation{listed: e.Listed, estimate: e.Count}
		}
		for j, c := range b.sampled {
			n, err := b.exact[j].Result()
			if err != nil {
				return nil, fmt.Errorf("observe hot campaigns: exact count of campaign %s of tenant %s: %w", c, b.tenant, err)
			}
			k := tenantCampaign{b.tenant, c}
			o := seen[k]
			o.sampled, o.exact = true, n
			seen[k] = o
		}
	}
	for k, o := range seen {
		if o.listed {
			hot[k.campaign] = true
		}
	}
	h.record(window, seen)
	return hot, nil
}

// sampled reports whether campaign's exact count is kept: FNV-1a (32-bit)
// of its 16 bytes, modulo SampleEvery, is 0.
func (h *HotCampaigns) sampled(campaign uuid.UUID) bool {
	f := fnv.New32a()
	_, _ = f.Write(campaign[:]) // a hash's Write never fails
	return f.Sum32()%h.every == 0
}

// record merges what a call of window saw into the metrics, unless the
// metrics have moved on to a later window meanwhile.
func (h *HotCampaigns) record(window int64, seen map[tenantCampaign]observation) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.roll(window) {
		return
	}
	for k, o := range seen {
		old := h.state.campaigns[k]
		o.estimate = max(o.estimate, old.estimate)
		o.exact = max(o.exact, old.exact)
		o.sampled = o.sampled || old.sampled
		h.state.campaigns[k] = o
	}
}

// roll makes window the metrics' window, starting from nothing when it is
// later than theirs, and reports whether it is theirs now (false for an
// earlier one). h.mu must be held.
func (h *HotCampaigns) roll(window int64) bool {
	if h.state.campaigns == nil || window > h.state.index {
		h.state = hotWindow{
			index:     window,
			campaigns: map[tenantCampaign]observation{},
		}
	}
	return window == h.state.index
}

// HotRatio is campaign_hot_ratio: of the distinct campaigns (per tenant)
// this process observed in the current window, the share whose last answer
// from Observe was hot. 0 when it observed none, as at a window's start.
func (h *HotCampaigns) HotRatio() float64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.roll(h.sketch.Window(h.now())) || len(h.state.campaigns) == 0 {
		return 0
	}
	hot := 0
	for _, o := range h.state.campaigns {
		if o.listed {
			hot++
		}
	}
	return float64(hot) / float64(len(h.state.campaigns))
}

// FalsePositiveRate is cms_false_positive_rate: among the sampled campaigns
// this process observed in the current window whose exact count is below
// the threshold (truly cold), the share the sketch estimates at or over it.
// Both figures are the latest this process saw, every process's events
// included; a campaign whose exact count reaches the threshold leaves the
// population. 0 when there is no truly cold sampled campaign. The sketch
// never under-estimates, so there are no false negatives to measure.
func (h *HotCampaigns) FalsePositiveRate() float64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.roll(h.sketch.Window(h.now())) {
		return 0
	}
	var cold, fp int
	for _, o := range h.state.campaigns {
		if !o.sampled || o.exact >= h.threshold {
			continue
		}
		cold++
		if o.estimate >= h.threshold {
			fp++
		}
	}
	if cold == 0 {
		return 0
	}
	return float64(fp) / float64(cold)
}

// SketchMemory returns the sum of MEMORY USAGE (every field counted) of
// the current window's sketches of the tenants this process observed in
// it, in one round trip: what the sketches cost Redis, shadow counts and
// hot sets not included. It is 0, sending nothing, when this process has
// observed no tenant in the window.
func (h *HotCampaigns) SketchMemory(ctx context.Context) (int64, error) {
	h.mu.Lock()
	window := h.sketch.Window(h.now())
	var tenants []uuid.UUID
	if h.roll(window) {
		seen := map[uuid.UUID]bool{}
		for k := range h.state.campaigns {
			if !seen[k.tenant] {
				seen[k.tenant] = true
				tenants = append(tenants, k.tenant)
			}
		}
	}
	h.mu.Unlock()
	if len(tenants) == 0 {
		return 0, nil
	}
	pipe := h.sketch.rdb.Pipeline()
	cmds := make([]*goredis.IntCmd, len(tenants))
	for i, t := range tenants {
		cmds[i] = pipe.MemoryUsage(ctx, sketchKey(t, window), 0)
	}
	_, _ = pipe.Exec(ctx) // each command is checked below
	var sum int64
	for i, c := range cmds {
		n, err := c.Result()
		switch {
		case err == nil:
			sum += n
		case errors.Is(err, goredis.Nil): // expired or deleted: nothing
		default:
			return 0, fmt.Errorf("memory of count-min sketch %s: %w", sketchKey(tenants[i], window), err)
		}
	}
	return sum, nil
}
