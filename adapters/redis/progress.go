// This file keeps hot campaigns' quest progress (DESIGN.md §6): the
// engine's HotProgress port, one hash per campaign and user, written by one
// Lua script, HOT_PROGRESS (progress.lua), as a compare-and-set on the
// hash's version.
//
// Keys (the campaign id in braces is the Redis Cluster hash tag, so a
// campaign's users share a slot and a script touches one):
//
//	agg:{<campaignId>}:<userId>   hash, fields:
//	  v    version of the latest progress (StoredProgress.Version, ≥ 1)
//	  c    its step counts, comma-separated ("1,0,2"; "" for none)
//	  w    its window start, Unix milliseconds; absent when zero
//	  d    its completion, Unix milliseconds; absent when zero
//	  p    pending decision id; absent once settled
//	  bv   version of the base progress the pending write started from;
//	       absent when there is none (Version 0) or nothing is pending
//	  bc, bw, bd   the base's counts, window start and completion, as c,
//	       w and d; present only with bv
//	expires at HotWrite.ExpireAt (after its campaign ends), or never
//
// The user id is the tenant's own, unescaped: it follows the hash tag, so
// braces or colons in it change neither the slot nor another user's key.
//
// Times are kept in milliseconds because action events carry milliseconds
// (eventTs is an Avro timestamp-millis), and a quest's times are its
// events'. Save refuses a time with a finer part rather than round it, so
// every time Save accepts comes back from Load equal, in UTC.

package redis

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	enginecmd "github.com/incentives-platform/incentives/commands/engine"
	"github.com/incentives-platform/incentives/domain/engine"
)

//go:embed progress.lua
var hotProgressSource string

var _ enginecmd.HotProgress = (*HotProgress)(nil)

// HotProgress implements the engine's HotProgress port on Redis. It is safe
// for concurrent use, by any number of goroutines and processes: each write
// is one Lua script, which Redis runs atomically, so of two batches that
// read a key at one version only one writes it.
type HotProgress struct {
	rdb    *goredis.Client
	script *goredis.Script
}

// NewHotProgress returns a HotProgress on c's Redis.
func NewHotProgress(c *Client) *HotProgress { return newHotProgress(c, hotProgressSource) }

func newHotProgress(c *Client, source string) *HotProgress {
	return &HotProgress{rdb: c.rdb, script: goredis.NewScript(source)}
}

// progressKey is the hash of one user's progress in one hot campaign.
func progressKey(k enginecmd.ProgressKey) string {
	return progressCampaignTag(k.CampaignID) + ":" + k.UserID
}

// progressCampaignTag is the prefix of every progress key of a campaign,
// hash tag included.
func progressCampaignTag(campaignID uuid.UUID) string { return "agg:{" + campaignID.String() + "}" }

// Load implements enginecmd.HotProgress: the hashes of keys, read in one
// pipeline (one round trip). An absent key is not in the map; a hash that
// does not parse is an error naming its key. Entries carry the key's
// campaign and user ids in Latest, and in Base when there is one.
func (h *HotProgress) Load(ctx context.Context, keys []enginecmd.ProgressKey) (map[enginecmd.ProgressKey]enginecmd.HotEntry, error) {
	out := make(map[enginecmd.ProgressKey]enginecmd.HotEntry, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	pipe := h.rdb.Pipeline()
	cmds := make([]*goredis.MapStringStringCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.HGetAll(ctx, progressKey(k))
	}
	// Exec's error is the first command's; each command is checked below.
	_, _ = pipe.Exec(ctx)
	for i, cmd := range cmds {
		fields, err := cmd.Result()
		if err != nil {
			return nil, fmt.Errorf("load hot quest progress %s: %w", progressKey(keys[i]), err)
		}
		if len(fields) == 0 {
			continue
		}
		e, err := parseHotEntry(keys[i], fields)
		if err != nil {
			return nil, fmt.Errorf("load hot quest progress %s: %w", progressKey(keys[i]), err)
		}
		out[keys[i]] = e
	}
	return out, nil
}

// Save implements enginecmd.HotProgress: one HOT_PROGRESS call per write,
// all in one pipeline (one round trip). Each writes its key only if the key
// is still at Seen. If any key moved, it returns an error wrapping
// enginecmd.ErrProgressConflict that says how many; the other keys of the
// batch were written.
//
// It returns an error, sending nothing, when a write is invalid: no
// campaign or user, a Version not above Seen, progress whose ids differ
// from its key's, a Base without Pending, or a time with a part finer than
// a millisecond. A write repeated for one key within a batch conflicts with
// itself.
func (h *HotProgress) Save(ctx context.Context, writes []enginecmd.HotWrite) error {
	if len(writes) == 0 {
		return nil
	}
	calls := make([]scriptCall, len(writes))
	var errs []error
	for i, w := range writes {
		c, err := saveCall(w)
		if err != nil {
			errs = append(errs, fmt.Errorf("write %d (%s): %w", i, progressKey(w.Key), err))
		}
		calls[i] = c
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("save hot quest progress: %w", err)
	}
	cmds, err := runScript(ctx, h.rdb, h.script, "HOT_PROGRESS save", calls)
	if err != nil {
		return err
	}
	conflicts, first := 0, ""
	for i, cmd := range cmds {
		written, err := cmd.Int64()
		if err != nil {
			return fmt.Errorf("save hot quest progress %s: %w", calls[i].keys[0], err)
		}
		if written == 0 {
			if conflicts == 0 {
				first = calls[i].keys[0]
			}
			conflicts++
		}
	}
	if conflicts > 0 {
		return fmt.Errorf("save hot quest progress: %d of %d keys (first %s): %w",
			conflicts, len(writes), first, enginecmd.ErrProgressConflict)
	}
	return nil
}

// saveCall validates w and builds its HOT_PROGRESS call.
func saveCall(w enginecmd.HotWrite) (scriptCall, error) {
	var errs []error
	errs = append(errs, validProgressKey(w.Key)...)
	if w.Seen < 0 {
		errs = append(errs, fmt.Errorf("Seen %d is negative", w.Seen))
	}
	if w.Progress.Version <= w.Seen {
		errs = append(errs, fmt.Errorf("Version %d is not above Seen %d", w.Progress.Version, w.Seen))
	}
	if w.Base.Version < 0 {
		errs = append(errs, fmt.Errorf("Base.Version %d is negative", w.Base.Version))
	}
	if w.Base.Version > 0 && w.Pending == uuid.Nil {
		errs = append(errs, errors.New("a Base without a Pending decision: only a pending write keeps its base"))
	}
	errs = append(errs, sameIDs("Progress", w.Progress.QuestProgress, w.Key)...)
	if w.Base.Version > 0 {
		errs = append(errs, sameIDs("Base", w.Base.QuestProgress, w.Key)...)
	}
	for _, t := range []struct {
		name string
		t    time.Time
	}{
		{"Progress.WindowStart", w.Progress.WindowStart}, {"Progress.Completed", w.Progress.Completed},
		{"Base.WindowStart", w.Base.WindowStart}, {"Base.Completed", w.Base.Completed},
	} {
		if !t.t.IsZero() && !time.UnixMilli(t.t.UnixMilli()).Equal(t.t) {
			errs = append(errs, fmt.Errorf("%s %s is finer than a millisecond", t.name, t.t.Format(time.RFC3339Nano)))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return scriptCall{}, err
	}

	expireAt := "0"
	if !w.ExpireAt.IsZero() {
		// An instant at or before the epoch would read as "never" or be
		// refused; the earliest positive one expires the key just the same.
		expireAt = strconv.FormatInt(max(w.ExpireAt.UnixMilli(), 1), 10)
	}
	pending, bv, bc, bw, bd := "", "", "", "", ""
	if w.Pending != uuid.Nil {
		pending = w.Pending.String()
		if w.Base.Version > 0 {
			bv = strconv.FormatInt(w.Base.Version, 10)
			bc, bw, bd = formatCounts(w.Base.Counts), formatMillis(w.Base.WindowStart), formatMillis(w.Base.Completed)
		}
	}
	return scriptCall{
		keys: []string{progressKey(w.Key)},
		args: []any{"save", strconv.FormatInt(w.Seen, 10), expireAt,
			strconv.FormatInt(w.Progress.Version, 10), formatCounts(w.Progress.Counts),
			formatMillis(w.Progress.WindowStart), formatMillis(w.Progress.Completed),
			pending, bv, bc, bw, bd},
	}, nil
}

// Settle implements enginecmd.HotProgress: one HOT_PROGRESS call per key,
// all in one pipeline (one round trip). Each deletes the key's pending mark
// and base if the mark is still the given decision id, and leaves the key
// as it is otherwise: a later batch's write is pending now. A uuid.Nil
// Pending settles nothing.
func (h *HotProgress) Settle(ctx context.Context, settles []enginecmd.HotSettle) error {
	calls := make([]scriptCall, 0, len(settles))
	var errs []error
	for i, s := range settles {
		if err := errors.Join(validProgressKey(s.Key)...); err != nil {
			errs = append(errs, fmt.Errorf("settle %d (%s): %w", i, progressKey(s.Key), err))
		}
		if s.Pending != uuid.Nil {
			calls = append(calls, scriptCall{keys: []string{progressKey(s.Key)}, args: []any{"settle", s.Pending.String()}})
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("settle hot quest progress: %w", err)
	}
	if len(calls) == 0 {
		return nil
	}
	_, err := runScript(ctx, h.rdb, h.script, "HOT_PROGRESS settle", calls)
	return err
}

// Drop implements enginecmd.HotProgress: one HOT_PROGRESS call per key, all
// in one pipeline (one round trip). Each deletes the key if it is still at
// Version, and keeps a key written since. A Version below 1 drops nothing.
func (h *HotProgress) Drop(ctx context.Context, drops []enginecmd.HotDrop) error {
	calls := make([]scriptCall, 0, len(drops))
	var errs []error
	for i, d := range drops {
		if err := errors.Join(validProgressKey(d.Key)...); err != nil {
			errs = append(errs, fmt.Errorf("drop %d (%s): %w", i, progressKey(d.Key), err))
		}
		if d.Version > 0 {
			calls = append(calls, scriptCall{keys: []string{progressKey(d.Key)},
				args: []any{"drop", strconv.FormatInt(d.Version, 10)}})
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("drop hot quest progress: %w", err)
	}
	if len(calls) == 0 {
		return nil
	}
	_, err := runScript(ctx, h.rdb, h.script, "HOT_PROGRESS drop", calls)
	return err
}

// ForgetCampaign deletes every progress hash of a campaign and returns how
// many it deleted: for tests, benchmarks and removing a campaign, never the
// hot path, since it scans the keyspace. In a Redis Cluster it must run on
// the node that owns the campaign's slot.
func (h *HotProgress) ForgetCampaign(ctx context.Context, campaignID uuid.UUID) (int64, error) {
	n, err := unlinkMatching(ctx, h.rdb, progressCampaignTag(campaignID)+":*")
	if err != nil {
		return n, fmt.Errorf("forget hot quest progress of campaign %s: %w", campaignID, err)
	}
	return n, nil
}

func validProgressKey(k enginecmd.ProgressKey) []error {
	var errs []error
	if k.CampaignID == uuid.Nil {
		errs = append(errs, errors.New("no campaign id"))
	}
	if k.UserID == "" {
		errs = append(errs, errors.New("no user id"))
	}
	return errs
}

// sameIDs reports progress whose ids are set and differ from its key's: the
// key is what is stored, so such progress would come back as another's.
func sameIDs(name string, p engine.QuestProgress, k enginecmd.ProgressKey) []error {
	var errs []error
	if p.CampaignID != uuid.Nil && p.CampaignID != k.CampaignID {
		errs = append(errs, fmt.Errorf("%s.CampaignID %s is not the key's", name, p.CampaignID))
	}
	if p.UserID != "" && p.UserID != k.UserID {
		errs = append(errs, fmt.Errorf("%s.UserID %q is not the key's", name, p.UserID))
	}
	return errs
}

// parseHotEntry reads one hash. Fields it does not know are ignored.
func parseHotEntry(k enginecmd.ProgressKey, f map[string]string) (enginecmd.HotEntry, error) {
	var e enginecmd.HotEntry
	var err error
	if e.Latest, err = parseStored(k, f, "v", "c", "w", "d"); err != nil {
		return e, err
	}
	if p, ok := f["p"]; ok {
		if e.Pending, err = uuid.Parse(p); err != nil || e.Pending == uuid.Nil {
			return e, fmt.Errorf("field p %q is not a decision id", p)
		}
	}
	if _, ok := f["bv"]; ok {
		if e.Base, err = parseStored(k, f, "bv", "bc", "bw", "bd"); err != nil {
			return e, err
		}
	}
	return e, nil
}

// parseStored reads one progress from the named fields; the version field
// must hold a version of at least 1.
func parseStored(k enginecmd.ProgressKey, f map[string]string, v, c, w, d string) (enginecmd.StoredProgress, error) {
	s := enginecmd.StoredProgress{QuestProgress: engine.QuestProgress{CampaignID: k.CampaignID, UserID: k.UserID}}
	var err error
	if s.Version, err = strconv.ParseInt(f[v], 10, 64); err != nil || s.Version < 1 {
		return s, fmt.Errorf("field %s %q is not a version", v, f[v])
	}
	counts, ok := f[c]
	if !ok {
		return s, fmt.Errorf("no field %s", c)
	}
	if s.Counts, err = parseCounts(counts); err != nil {
		return s, fmt.Errorf("field %s %q: %w", c, counts, err)
	}
	if s.WindowStart, err = parseMillis(f[w]); err != nil {
		return s, fmt.Errorf("field %s %q: %w", w, f[w], err)
	}
	if s.Completed, err = parseMillis(f[d]); err != nil {
		return s, fmt.Errorf("field %s %q: %w", d, f[d], err)
	}
	return s, nil
}

func formatCounts(counts []int) string {
	var b strings.Builder
	for i, n := range counts {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}

// parseCounts reads formatCounts' text; "" is no steps, an empty slice
// (not nil), as the database's progress reads.
func parseCounts(s string) ([]int, error) {
	if s == "" {
		return []int{}, nil
	}
	parts := strings.Split(s, ",")
	counts := make([]int, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil, fmt.Errorf("step %d is not an integer", i)
		}
		counts[i] = n
	}
	return counts, nil
}

// formatMillis writes t as Unix milliseconds, the zero time as "".
func formatMillis(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.UnixMilli(), 10)
}

// parseMillis reads formatMillis' text (an absent field reads as "").
func parseMillis(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, errors.New("not Unix milliseconds")
	}
	return time.UnixMilli(ms).UTC(), nil
}
