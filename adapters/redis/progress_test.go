package redis

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	enginecmd "github.com/incentives-platform/incentives/commands/engine"
	"github.com/incentives-platform/incentives/domain/engine"
)

// Each test writes progress of its own random campaign, so its keys
// (agg:{<campaign>}:...) are its own key prefix: tests run in parallel with
// each other and with other packages on the same Redis, and each deletes its
// keys when it ends.

type progressFixture struct {
	t        *testing.T
	h        *HotProgress
	campaign uuid.UUID
}

func mustHotProgress(t *testing.T) *progressFixture {
	t.Helper()
	f := &progressFixture{t: t, h: NewHotProgress(MustClient(t)), campaign: uuid.New()}
	t.Cleanup(func() {
		if _, err := f.h.ForgetCampaign(context.Background(), f.campaign); err != nil {
			t.Errorf("forget campaign: %v", err)
		}
	})
	return f
}

func (f *progressFixture) key(user string) enginecmd.ProgressKey {
	return enginecmd.ProgressKey{CampaignID: f.campaign, UserID: user}
}

func (f *progressFixture) load(keys ...enginecmd.ProgressKey) map[enginecmd.ProgressKey]enginecmd.HotEntry {
	f.t.Helper()
	got, err := f.h.Load(context.Background(), keys)
	if err != nil {
		f.t.Fatalf("Load: %v", err)
	}
	return got
}

func (f *progressFixture) save(writes ...enginecmd.HotWrite) {
	f.t.Helper()
	if err := f.h.Save(context.Background(), writes); err != nil {
		f.t.Fatalf("Save: %v", err)
	}
}

// raw returns the key's hash as Redis holds it.
func (f *progressFixture) raw(k enginecmd.ProgressKey) map[string]string {
	f.t.Helper()
	m, err := f.h.rdb.HGetAll(context.Background(), progressKey(k)).Result()
	if err != nil {
		f.t.Fatal(err)
	}
	return m
}

var progressT1 = time.Date(2026, 3, 10, 18, 0, 0, 123_000_000, time.UTC)

func storedProgress(version int64, counts []int, window, completed time.Time) enginecmd.StoredProgress {
	return enginecmd.StoredProgress{Version: version,
		QuestProgress: engine.QuestProgress{Counts: counts, WindowStart: window, Completed: completed}}
}

// sameStored compares progress field by field: times with Equal and, after
// UTC, with ==; no counts and empty counts alike.
func sameStored(t *testing.T, what string, got, want enginecmd.StoredProgress, k enginecmd.ProgressKey) {
	t.Helper()
	if want.Version > 0 {
		want.CampaignID, want.UserID = k.CampaignID, k.UserID
	}
	if got.Version != want.Version || got.CampaignID != want.CampaignID || got.UserID != want.UserID ||
		!slices.Equal(got.Counts, want.Counts) {
		t.Errorf("%s = %+v, want %+v", what, got, want)
	}
	for _, tt := range []struct {
		name      string
		got, want time.Time
	}{{"WindowStart", got.WindowStart, want.WindowStart}, {"Completed", got.Completed, want.Completed}} {
		if !tt.got.Equal(tt.want) || tt.got != tt.want.UTC() {
			t.Errorf("%s.%s = %#v, want %#v", what, tt.name, tt.got, tt.want.UTC())
		}
	}
}

func TestProgressRoundTrip(t *testing.T) {
	t.Parallel()
	f := mustHotProgress(t)
	paris := time.FixedZone("CET", 3600)
	tests := []struct {
		name    string
		latest  enginecmd.StoredProgress
		pending uuid.UUID
		base    enginecmd.StoredProgress
	}{
		{"settled, no times", storedProgress(1, []int{1, 0, 2}, time.Time{}, time.Time{}), uuid.Nil, enginecmd.StoredProgress{}},
		{"empty counts", storedProgress(2, []int{}, time.Time{}, time.Time{}), uuid.Nil, enginecmd.StoredProgress{}},
		{"nil counts", storedProgress(2, nil, time.Time{}, time.Time{}), uuid.New(), enginecmd.StoredProgress{}},
		{"window", storedProgress(3, []int{4}, progressT1, time.Time{}), uuid.New(), enginecmd.StoredProgress{}},
		{"completed, pending over a base", storedProgress(7, []int{2, 1}, progressT1, progressT1.Add(36*time.Hour+time.Millisecond)), uuid.New(),
			storedProgress(6, []int{2, 0}, progressT1, time.Time{})},
		{"base completed", storedProgress(9, []int{0}, time.Time{}, time.Time{}), uuid.New(),
			storedProgress(8, []int{3}, progressT1.Add(-time.Millisecond), progressT1)},
		{"another zone, the epoch, before it", storedProgress(5, []int{-1, 1 << 40},
			time.UnixMilli(0), time.Date(1969, 7, 20, 20, 17, 40, 999_000_000, paris)), uuid.New(),
			storedProgress(4, nil, time.Date(2100, 1, 1, 0, 0, 0, 1_000_000, paris), time.Time{})},
	}
	var keys []enginecmd.ProgressKey
	for i, tt := range tests {
		k := f.key(fmt.Sprintf("user-%d", i))
		keys = append(keys, k)
		f.save(enginecmd.HotWrite{Key: k, Progress: tt.latest, Pending: tt.pending, Base: tt.base})
	}
	got := f.load(keys...)
	if len(got) != len(tests) {
		t.Fatalf("Load returned %d entries, want %d", len(got), len(tests))
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, ok := got[keys[i]]
			if !ok {
				t.Fatalf("no entry for %v", keys[i])
			}
			sameStored(t, "Latest", e.Latest, tt.latest, keys[i])
			sameStored(t, "Base", e.Base, tt.base, keys[i])
			if e.Pending != tt.pending {
				t.Errorf("Pending = %v, want %v", e.Pending, tt.pending)
			}
		})
	}

	// The fields are the documented ones: absent when zero or settled.
	if got, want := f.raw(keys[0]), map[string]string{"v": "1", "c": "1,0,2"}; !maps.Equal(got, want) {
		t.Errorf("hash of a settled entry = %v, want %v", got, want)
	}
	want := map[string]string{"v": "7", "c": "2,1", "w": fmt.Sprint(progressT1.UnixMilli()),
		"d": fmt.Sprint(progressT1.Add(36*time.Hour + time.Millisecond).UnixMilli()), "p": tests[4].pending.String(),
		"bv": "6", "bc": "2,0", "bw": fmt.Sprint(progressT1.UnixMilli())}
	if got := f.raw(keys[4]); !maps.Equal(got, want) {
		t.Errorf("hash of a pending entry = %v, want %v", got, want)
	}

	// Overwriting a pending entry with a settled one removes what no longer applies.
	f.save(enginecmd.HotWrite{Key: keys[4], Seen: 7, Progress: storedProgress(8, []int{2, 2}, time.Time{}, time.Time{})})
	if got, want := f.raw(keys[4]), map[string]string{"v": "8", "c": "2,2"}; !maps.Equal(got, want) {
		t.Errorf("hash after a settled overwrite = %v, want %v", got, want)
	}
}

func TestProgressLoadOfAbsentKeysIsEmpty(t *testing.T) {
	t.Parallel()
	f := mustHotProgress(t)
	got := f.load(f.key("nobody"), f.key("nobody else"))
	if got == nil || len(got) != 0 {
		t.Errorf("Load = %#v, want an empty map", got)
	}
}

func TestProgressLoadOfAMalformedHashNamesTheKey(t *testing.T) {
	t.Parallel()
	f := mustHotProgress(t)
	ctx := context.Background()
	for i, fields := range []map[string]string{
		{"v": "x", "c": ""},
		{"v": "0", "c": ""},
		{"c": "1"},
		{"v": "1"},
		{"v": "1", "c": "1,,2"},
		{"v": "1", "c": "1", "w": "soon"},
		{"v": "1", "c": "1", "p": "not-a-uuid"},
		{"v": "2", "c": "1", "p": uuid.NewString(), "bv": "1"},
	} {
		k := f.key(fmt.Sprintf("bad-%d", i))
		if err := f.h.rdb.HSet(ctx, progressKey(k), fields).Err(); err != nil {
			t.Fatal(err)
		}
		_, err := f.h.Load(ctx, []enginecmd.ProgressKey{f.key("fine"), k})
		if err == nil || !strings.Contains(err.Error(), progressKey(k)) {
			t.Errorf("Load of %v: error %v, want one naming %s", fields, err, progressKey(k))
		}
	}
}

func TestProgressSaveRefusesAStaleSeenAndLeavesTheKey(t *testing.T) {
	t.Parallel()
	f := mustHotProgress(t)
	ctx := context.Background()
	k, fresh := f.key("u1"), f.key("u2")
	pending := uuid.New()

	// Absent with Seen 0: written.
	f.save(enginecmd.HotWrite{Key: k, Progress: storedProgress(1, []int{1}, progressT1, time.Time{}), Pending: pending})
	before := f.raw(k)

	// Absent with Seen above 0: a batch read a key since dropped.
	err := f.h.Save(ctx, []enginecmd.HotWrite{{Key: fresh, Seen: 3, Progress: storedProgress(4, []int{1}, progressT1, time.Time{})}})
	if !errors.Is(err, enginecmd.ErrProgressConflict) {
		t.Errorf("Save of an absent key at Seen 3: %v, want ErrProgressConflict", err)
	}
	if got := f.raw(fresh); len(got) != 0 {
		t.Errorf("absent key written anyway: %v", got)
	}

	// Seen 0 again, and a stale version: refused, the rest of the batch written.
	for _, seen := range []int64{0, 2} {
		err := f.h.Save(ctx, []enginecmd.HotWrite{
			{Key: k, Seen: seen, Progress: storedProgress(seen+1, []int{9}, time.Time{}, progressT1), Pending: uuid.New(),
				Base: storedProgress(seen, []int{8}, time.Time{}, time.Time{}), ExpireAt: progressT1.Add(time.Hour)},
			{Key: fresh, Progress: storedProgress(1, []int{5}, time.Time{}, time.Time{})},
		})
		if !errors.Is(err, enginecmd.ErrProgressConflict) || !strings.Contains(err.Error(), "1 of 2 keys") {
			t.Errorf("Save at Seen %d: %v, want ErrProgressConflict for 1 of 2 keys", seen, err)
		}
		if got := f.raw(k); !maps.Equal(got, before) {
			t.Errorf("refused Save at Seen %d changed the key: %v, want %v", seen, got, before)
		}
		if ttl := f.h.rdb.PTTL(ctx, progressKey(k)).Val(); ttl != -1 {
			t.Errorf("refused Save set a TTL: %v", ttl)
		}
		if got := f.raw(fresh)["v"]; got != "1" {
			t.Errorf("the batch's other key: v = %q, want 1", got)
		}
		_ = f.h.rdb.Del(ctx, progressKey(fresh))
	}

	// The current version: written.
	f.save(enginecmd.HotWrite{Key: k, Seen: 1, Progress: storedProgress(2, []int{2}, progressT1, time.Time{})})
	if got := f.load(k)[k].Latest.Version; got != 2 {
		t.Errorf("Version after Save at Seen 1 = %d, want 2", got)
	}
}

func TestProgressSaveRefusesInvalidWritesSendingNothing(t *testing.T) {
	t.Parallel()
	f := mustHotProgress(t)
	ok := enginecmd.HotWrite{Key: f.key("ok"), Progress: storedProgress(1, []int{1}, progressT1, time.Time{})}
	other := uuid.New()
	for name, w := range map[string]enginecmd.HotWrite{
		"no campaign":          {Key: enginecmd.ProgressKey{UserID: "u"}, Progress: storedProgress(1, nil, time.Time{}, time.Time{})},
		"no user":              {Key: f.key(""), Progress: storedProgress(1, nil, time.Time{}, time.Time{})},
		"version not above":    {Key: f.key("u"), Seen: 2, Progress: storedProgress(2, nil, time.Time{}, time.Time{})},
		"microseconds":         {Key: f.key("u"), Progress: storedProgress(1, nil, progressT1.Add(time.Microsecond), time.Time{})},
		"base sub-millisecond": {Key: f.key("u"), Progress: storedProgress(2, nil, time.Time{}, time.Time{}), Pending: uuid.New(), Base: storedProgress(1, nil, time.Time{}, progressT1.Add(1))},
		"base, no pending":     {Key: f.key("u"), Progress: storedProgress(2, nil, time.Time{}, time.Time{}), Base: storedProgress(1, nil, time.Time{}, time.Time{})},
		"another campaign": {Key: f.key("u"), Progress: enginecmd.StoredProgress{Version: 1,
			QuestProgress: engine.QuestProgress{CampaignID: other, UserID: "u"}}},
		"another user": {Key: f.key("u"), Progress: enginecmd.StoredProgress{Version: 1,
			QuestProgress: engine.QuestProgress{CampaignID: f.campaign, UserID: "v"}}},
	} {
		err := f.h.Save(context.Background(), []enginecmd.HotWrite{ok, w})
		if err == nil || errors.Is(err, enginecmd.ErrProgressConflict) {
			t.Errorf("%s: Save = %v, want a validation error", name, err)
		}
	}
	if got := f.load(ok.Key); len(got) != 0 {
		t.Errorf("a refused batch wrote %v", got)
	}
}

func TestProgressConcurrentSavesOfOneKeyOneWins(t *testing.T) {
	t.Parallel()
	f := mustHotProgress(t)
	k := f.key("contended")
	f.save(enginecmd.HotWrite{Key: k, Progress: storedProgress(1, []int{0}, time.Time{}, time.Time{})})

	const writers = 50
	pendings := make([]uuid.UUID, writers)
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		pendings[i] = uuid.New()
		wg.Go(func() {
			errs[i] = f.h.Save(context.Background(), []enginecmd.HotWrite{{Key: k, Seen: 1,
				Progress: storedProgress(2, []int{i}, time.Time{}, time.Time{}), Pending: pendings[i],
				Base: storedProgress(1, []int{0}, time.Time{}, time.Time{})}})
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("writers %d and %d both won", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, enginecmd.ErrProgressConflict):
			t.Errorf("writer %d: %v, want ErrProgressConflict", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no writer won")
	}
	e := f.load(k)[k]
	if e.Pending != pendings[winner] || e.Latest.Version != 2 || !slices.Equal(e.Latest.Counts, []int{winner}) {
		t.Errorf("entry = %+v, want the winner's (writer %d)", e, winner)
	}
}

func TestProgressSettleClearsOnlyAMatchingPendingMark(t *testing.T) {
	t.Parallel()
	f := mustHotProgress(t)
	k, settled := f.key("u1"), f.key("u2")
	pending := uuid.New()
	latest := storedProgress(5, []int{2, 1}, progressT1, time.Time{})
	f.save(enginecmd.HotWrite{Key: k, Seen: 0, Progress: latest, Pending: pending, Base: storedProgress(4, []int{2, 0}, progressT1, time.Time{})},
		enginecmd.HotWrite{Key: settled, Progress: storedProgress(1, []int{1}, time.Time{}, time.Time{})})
	before, settledBefore := f.raw(k), f.raw(settled)

	err := f.h.Settle(context.Background(), []enginecmd.HotSettle{
		{Key: k, Pending: uuid.New()}, {Key: settled, Pending: pending}, {Key: f.key("absent"), Pending: pending},
		{Key: k, Pending: uuid.Nil}})
	if err != nil {
		t.Fatalf("Settle: %v", err)
	}
	if got := f.raw(k); !maps.Equal(got, before) {
		t.Errorf("Settle with another decision changed the key: %v, want %v", got, before)
	}
	if got := f.raw(settled); !maps.Equal(got, settledBefore) {
		t.Errorf("Settle changed a settled key: %v, want %v", got, settledBefore)
	}
	if n := f.h.rdb.Exists(context.Background(), progressKey(f.key("absent"))).Val(); n != 0 {
		t.Error("Settle created an absent key")
	}

	if err := f.h.Settle(context.Background(), []enginecmd.HotSettle{{Key: k, Pending: pending}}); err != nil {
		t.Fatalf("Settle: %v", err)
	}
	e := f.load(k)[k]
	if e.Pending != uuid.Nil || e.Base.Version != 0 {
		t.Errorf("after Settle: Pending %v, Base %+v, want none", e.Pending, e.Base)
	}
	sameStored(t, "Latest", e.Latest, latest, k)
	if got, want := f.raw(k), map[string]string{"v": "5", "c": "2,1", "w": fmt.Sprint(progressT1.UnixMilli())}; !maps.Equal(got, want) {
		t.Errorf("hash after Settle = %v, want %v", got, want)
	}
}

func TestProgressDropDeletesOnlyAtTheMatchingVersion(t *testing.T) {
	t.Parallel()
	f := mustHotProgress(t)
	ctx := context.Background()
	k, moved := f.key("u1"), f.key("u2")
	f.save(enginecmd.HotWrite{Key: k, Progress: storedProgress(3, []int{1}, time.Time{}, time.Time{})},
		enginecmd.HotWrite{Key: moved, Progress: storedProgress(3, []int{1}, time.Time{}, time.Time{})})

	err := f.h.Drop(ctx, []enginecmd.HotDrop{{Key: k, Version: 3}, {Key: moved, Version: 2},
		{Key: f.key("absent"), Version: 1}, {Key: moved, Version: 0}})
	if err != nil {
		t.Fatalf("Drop: %v", err)
	}
	got := f.load(k, moved)
	if _, ok := got[k]; ok {
		t.Error("the key at the matching version was kept")
	}
	if got[moved].Latest.Version != 3 {
		t.Errorf("the key written since: %+v, want it kept at version 3", got[moved])
	}
}

func TestProgressExpireAtSetsAndZeroRemovesTheTTL(t *testing.T) {
	t.Parallel()
	f := mustHotProgress(t)
	ctx := context.Background()
	k := f.key("u1")
	expireAt := time.Now().Add(48 * time.Hour).Truncate(time.Millisecond)
	f.save(enginecmd.HotWrite{Key: k, Progress: storedProgress(1, []int{1}, time.Time{}, time.Time{}), ExpireAt: expireAt})
	if got, err := f.h.rdb.PExpireTime(ctx, progressKey(k)).Result(); err != nil || got != time.Duration(expireAt.UnixMilli())*time.Millisecond {
		t.Errorf("PEXPIRETIME = %v, %v, want %v", got, err, time.Duration(expireAt.UnixMilli())*time.Millisecond)
	}

	f.save(enginecmd.HotWrite{Key: k, Seen: 1, Progress: storedProgress(2, []int{2}, time.Time{}, time.Time{})})
	if got := f.h.rdb.PTTL(ctx, progressKey(k)).Val(); got != -1 {
		t.Errorf("PTTL after a Save without ExpireAt = %v, want -1 (none)", got)
	}

	// An instant already past: the campaign ended, the key goes at once.
	f.save(enginecmd.HotWrite{Key: k, Seen: 2, Progress: storedProgress(3, []int{3}, time.Time{}, time.Time{}), ExpireAt: progressT1.AddDate(-1, 0, 0)})
	if got := f.load(k); len(got) != 0 {
		t.Errorf("a key expiring in the past is still there: %v", got)
	}
}

func TestProgressKeysCarryTheCampaignHashTag(t *testing.T) {
	t.Parallel()
	f := mustHotProgress(t)
	ctx := context.Background()
	f.save(enginecmd.HotWrite{Key: f.key("user-7"), Progress: storedProgress(1, []int{1}, time.Time{}, time.Time{})})
	keys, err := f.h.rdb.Keys(ctx, "agg:{"+f.campaign.String()+"}:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	want := "agg:{" + f.campaign.String() + "}:user-7"
	if !slices.Equal(keys, []string{want}) {
		t.Errorf("keys = %q, want [%q]", keys, want)
	}
	if typ := f.h.rdb.Type(ctx, want).Val(); typ != "hash" {
		t.Errorf("TYPE %s = %s, want hash", want, typ)
	}
}

func TestProgressOddUserIDsRoundTrip(t *testing.T) {
	t.Parallel()
	f := mustHotProgress(t)
	ctx := context.Background()
	users := []string{"a b", "{x}", "}{", "a:b:c", "*", "[a-z]?", "üñíçødé 😀", `back\slash`, "agg:{" + uuid.NewString() + "}:u", "tab\tnew\nline"}
	var keys []enginecmd.ProgressKey
	for i, u := range users {
		keys = append(keys, f.key(u))
		f.save(enginecmd.HotWrite{Key: f.key(u), Progress: storedProgress(int64(i+1), []int{i}, progressT1, time.Time{})})
	}
	got := f.load(keys...)
	for i, k := range keys {
		e, ok := got[k]
		if !ok || e.Latest.UserID != users[i] || e.Latest.Version != int64(i+1) {
			t.Errorf("user %q: %+v, %v", users[i], e, ok)
		}
	}
	// Whatever the user id holds, the hash tag is the campaign's.
	for _, k := range keys {
		if tag := clusterHashTag(progressKey(k)); tag != f.campaign.String() {
			t.Errorf("hash tag of %q = %q, want the campaign id", progressKey(k), tag)
		}
	}
	if n, err := f.h.ForgetCampaign(ctx, f.campaign); err != nil || n != int64(len(users)) {
		t.Errorf("ForgetCampaign = %d, %v, want %d", n, err, len(users))
	}
}

// clusterHashTag is the part of key Redis Cluster hashes: between the first
// '{' and the first '}' after it, if not empty; else the whole key.
func clusterHashTag(key string) string {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return key
	}
	n := strings.IndexByte(key[open+1:], '}')
	if n <= 0 {
		return key
	}
	return key[open+1 : open+1+n]
}

func TestProgressLargeBatchRoundTrip(t *testing.T) {
	t.Parallel()
	f := mustHotProgress(t)
	const n = 5000
	writes := make([]enginecmd.HotWrite, n)
	keys := make([]enginecmd.ProgressKey, n)
	for i := range writes {
		keys[i] = f.key(fmt.Sprintf("u%d", i))
		writes[i] = enginecmd.HotWrite{Key: keys[i], Progress: storedProgress(1, []int{i % 7, i % 3}, progressT1.Add(time.Duration(i)*time.Millisecond), time.Time{}),
			Pending: uuid.New(), ExpireAt: progressT1.AddDate(10, 0, 0)}
	}
	f.save(writes...)
	got := f.load(keys...)
	if len(got) != n {
		t.Fatalf("Load returned %d entries, want %d", len(got), n)
	}
	settles := make([]enginecmd.HotSettle, n)
	drops := make([]enginecmd.HotDrop, n)
	for i, w := range writes {
		if e := got[w.Key]; e.Pending != w.Pending || !e.Latest.WindowStart.Equal(w.Progress.WindowStart) {
			t.Fatalf("entry %d = %+v, want %+v", i, e, w)
		}
		settles[i] = enginecmd.HotSettle{Key: w.Key, Pending: w.Pending}
		drops[i] = enginecmd.HotDrop{Key: w.Key, Version: 1}
	}
	if err := f.h.Settle(context.Background(), settles); err != nil {
		t.Fatal(err)
	}
	if err := f.h.Drop(context.Background(), drops); err != nil {
		t.Fatal(err)
	}
	if got := f.load(keys...); len(got) != 0 {
		t.Errorf("%d keys left after Drop", len(got))
	}
}

func TestProgressEmptyInputsMakeNoRoundTrip(t *testing.T) {
	t.Parallel()
	c := MustClient(t)
	h := NewHotProgress(c)
	_ = c.Close() // any round trip now fails
	ctx := context.Background()
	if got, err := h.Load(ctx, nil); err != nil || got == nil || len(got) != 0 {
		t.Errorf("Load(nil) = %v, %v, want an empty map", got, err)
	}
	if err := h.Save(ctx, nil); err != nil {
		t.Errorf("Save(nil) = %v", err)
	}
	if err := h.Settle(ctx, nil); err != nil {
		t.Errorf("Settle(nil) = %v", err)
	}
	if err := h.Drop(ctx, []enginecmd.HotDrop{}); err != nil {
		t.Errorf("Drop(empty) = %v", err)
	}
	if _, err := h.Load(ctx, []enginecmd.ProgressKey{{CampaignID: uuid.New(), UserID: "u"}}); err == nil {
		t.Error("Load on a closed client succeeded: the test proves nothing")
	}
}

func TestProgressScriptLoadsOnNoScript(t *testing.T) {
	t.Parallel()
	f := mustHotProgress(t)
	// Source of its own, unknown to Redis, so the first call is refused
	// with NOSCRIPT, as after a restart, without flushing other tests'
	// scripts.
	f.h = newHotProgress(&Client{rdb: f.h.rdb}, hotProgressSource+"\n-- "+uuid.NewString()+"\n")
	k := f.key("u1")
	f.save(enginecmd.HotWrite{Key: k, Progress: storedProgress(1, []int{1}, time.Time{}, time.Time{})})
	if got := f.load(k)[k].Latest.Version; got != 1 {
		t.Errorf("Version = %d, want 1", got)
	}
}
