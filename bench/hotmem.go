package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/incentives-platform/incentives/adapters/redis"
	enginecmd "github.com/incentives-platform/incentives/commands/engine"
)

// The hotmem workload: the Zipf(1.1) over 1,000 campaigns and
// 100,000 users, in the engine's batches.
const (
	hotmemEvents    = 1_000_000
	hotmemCampaigns = 1_000
	hotmemUsers     = 100_000
	hotmemZipfS     = 1.1
	hotmemBatch     = 5_000 // the engine's batch
	hotmemThreshold = 5_000 // HotCampaignsConfig's default
	// hotmemDB is the Redis database the suite writes in, so that its
	// keys meet no other's. INFO's used_memory is the server's, all
	// databases together.
	hotmemDB = 13
)

// hotmemSteps is the quest's two unordered steps: 3 events of the first
// action, 1 of the second.
var hotmemSteps = [2]int{3, 1}

// hotEvent is one action event of the stream.
type hotEvent struct {
	campaign uint16 // index in the campaign ids
	user     int32
	step     uint8 // the step whose action it is
}

// hotPair is one user's quest in one campaign: one agg: key when it is in
// Redis.
type hotPair struct {
	campaign uint16
	user     int32
}

// hotQuest is a quest's progress as the stores hold it, whichever holds it:
// every batch here commits.
type hotQuest struct {
	counts      [2]int
	windowStart int64 // Unix ms; 0: none
	completed   int64 // Unix ms; 0: not completed
	version     int64
}

// hotmemRun is one variant's figures.
type hotmemRun struct {
	name                    string
	filter                  bool
	keys, bytes             int64 // agg: keys left, and the sum of their MEMORY USAGE
	usedDelta               int64 // INFO used_memory after less before
	redisEvents, coldEvents int64 // events of campaigns routed to Redis, and to the database
	redisWrites, coldWrites int64 // progress writes, one per changed key per batch
	hot                     int   // campaigns listed hot in some batch
	filterBytes             int64 // MEMORY USAGE of the filter's own keys (sketch, shadow counts, hot set)
	elapsed                 time.Duration
}

// runHotMem measures the seed's rationale for the hot filter (ProjectLLD
// §6.1, issue #5): the Redis memory that per-user quest aggregates take
// when every campaign keeps them in Redis, against when only the campaigns
// the count-min sketch finds hot do (the cold ones' go to PostgreSQL, which
// is not written here: they are counted). Both variants replay one event
// stream through the adapters the engine uses, HotCampaigns and
// HotProgress, batch by batch as the engine calls them.
func runHotMem(ctx context.Context, o options) (string, error) {
	u, err := url.Parse(redisURL())
	if err != nil {
		return "", fmt.Errorf("redis url: %w", err)
	}
	u.Path = "/" + strconv.Itoa(hotmemDB)
	client, err := redis.Open(ctx, u.String())
	if err != nil {
		return "", err
	}
	defer client.Close()
	// The adapter keeps go-redis to itself; the suite needs INFO, SCAN and
	// MEMORY USAGE, which it does not offer, so it measures with its own
	// connection to the same database.
	opts, err := goredis.ParseURL(u.String())
	if err != nil {
		return "", err
	}
	raw := goredis.NewClient(opts)
	defer raw.Close()
	version, err := client.ServerVersion(ctx)
	if err != nil {
		return "", err
	}

	ids := campaignIDs(hotmemCampaigns)
	campaigns := make([]uuid.UUID, len(ids))
	ours := make(map[string]bool, len(ids))
	for i, id := range ids {
		campaigns[i] = uuid.MustParse(id)
		ours[id] = true
	}
	tenant := uuid.MustParse(randomID(0x407_407, 0x3e3)) // fixed: a rerun cleans an interrupted run's keys
	// One clock instant for every batch: at 10^5 events/s the million
	// events are 10 s of traffic, well within one 10-minute window.
	now := time.Now()
	sk, err := redis.NewSketch(client, redis.SketchConfig{})
	if err != nil {
		return "", err
	}
	hp := redis.NewHotProgress(client)
	cleanup := func(ctx context.Context) error {
		if _, err := forgetAggs(ctx, raw, ours); err != nil {
			return err
		}
		_, err := sk.ForgetTenant(ctx, tenant)
		return err
	}
	defer func() {
		// Cleanup must run even when the run was interrupted.
		_ = cleanup(context.WithoutCancel(ctx))
	}()

	stream := hotmemStream()
	perCampaign := make([]int64, hotmemCampaigns)
	pairs := map[hotPair]struct{}{}
	for _, e := range stream {
		perCampaign[e.campaign]++
		pairs[hotPair{e.campaign, e.user}] = struct{}{}
	}
	var overCampaigns int
	var overEvents int64
	for _, n := range perCampaign {
		if n >= hotmemThreshold {
			overCampaigns++
			overEvents += n
		}
	}

	variant := func(name string, filter bool) (hotmemRun, error) {
		r := hotmemRun{name: name, filter: filter}
		if err := cleanup(ctx); err != nil {
			return r, err
		}
		var hc *redis.HotCampaigns
		if filter {
			hc, err = redis.NewHotCampaigns(client, redis.HotCampaignsConfig{Now: func() time.Time { return now }})
			if err != nil {
				return r, err
			}
		}
		before, err := settledMemory(ctx, raw)
		if err != nil {
			return r, err
		}
		start := time.Now()
		if err := hotmemReplay(ctx, stream, campaigns, tenant, hc, hp, &r); err != nil {
			return r, err
		}
		r.elapsed = time.Since(start)
		after, err := settledMemory(ctx, raw)
		if err != nil {
			return r, err
		}
		r.usedDelta = after - before
		if r.keys, r.bytes, err = aggMemory(ctx, raw, ours); err != nil {
			return r, err
		}
		if filter {
			if r.filterBytes, err = keysMemory(ctx, raw, "cms:{"+tenant.String()+"}:*", "hot:set:{"+tenant.String()+"}"); err != nil {
				return r, err
			}
		}
		return r, nil
	}
	all, err := variant("all in Redis (no filter: the seed's baseline)", false)
	if err != nil {
		return "", fmt.Errorf("all in Redis: %w", err)
	}
	filtered, err := variant("hot filter (threshold 5,000 per window)", true)
	if err != nil {
		return "", fmt.Errorf("hot filter: %w", err)
	}
	if err := cleanup(ctx); err != nil {
		return "", err
	}
	// What the adapter's own cleanup still finds: nothing, or the suite leaks.
	for _, c := range campaigns {
		if n, err := hp.ForgetCampaign(ctx, c); err != nil || n > 0 {
			return "", fmt.Errorf("campaign %s: %d agg: keys left after cleanup (%v)", c, n, err)
		}
	}
	if all.keys != int64(len(pairs)) {
		return "", fmt.Errorf("all in Redis left %d agg: keys for %d (campaign, user) pairs", all.keys, len(pairs))
	}

	t := &table{header: []string{"variant", "agg: keys", "`MEMORY USAGE` sum", "bytes per key", "`used_memory` delta",
		"events to Redis", "hot campaigns", "writes to Redis / to PostgreSQL", "time", "events/s"}}
	for _, r := range []hotmemRun{all, filtered} {
		hot := "all (no filter)"
		if r.filter {
			hot = thousands(int64(r.hot))
		}
		t.add(r.name, thousands(r.keys), mb(r.bytes), fmt.Sprintf("%.0f", float64(r.bytes)/float64(max(r.keys, 1))),
			mb(r.usedDelta), fmt.Sprintf("%s (%.1f%%)", thousands(r.redisEvents), 100*float64(r.redisEvents)/hotmemEvents),
			hot, thousands(r.redisWrites)+" / "+thousands(r.coldWrites),
			fmt.Sprintf("%.1f s", r.elapsed.Seconds()), perSecond(hotmemEvents/r.elapsed.Seconds()))
	}

	var b strings.Builder
	fmt.Fprintf(&b, "### Hot filter: Redis memory of per-user aggregates (issue #5)\n\n")
	fmt.Fprintf(&b, "Measured %s on %s, Redis %s on the same machine; `go run ./bench %s`. "+
		"%s events of one tenant, campaign drawn Zipf(%.1f) over %s QUEST campaigns (2 unordered steps: 3 events of one action, 1 of another; "+
		"an event is the second action one time in four), user uniform over %s users (ids `user-000000`…), in the engine's batches of %s, in stream order; "+
		"the same stream for both variants, %s distinct (campaign, user) pairs. "+
		"Per batch each variant makes the engine's Redis calls: the filter's `Observe` of every event's campaign (hot filter only), "+
		"`HotProgress.Load` of the batch's keys, `Save` of each changed hot key (one `HOT_PROGRESS` write per key per batch, pending with its base) "+
		"and, the batch committed, `Settle`; the final hashes are what the engine leaves. Progress of cold campaigns would go to PostgreSQL: "+
		"it is counted, not written. The engine gives `agg:` keys no TTL. "+
		"The filter runs with its defaults (sketch 272 × 5, threshold %s per 10-minute window per tenant) and one fixed clock instant for every batch, "+
		"so all events fall in one window: at 10^5 events/s the stream is 10 s of traffic. "+
		"Redis database %d, emptied of the suite's keys before each variant; `MEMORY USAGE` (summed over the variant's `agg:` keys, found by `SCAN`) "+
		"is the keys' own cost, `used_memory` (`INFO memory`, after less before, each read once it stops falling) the server's, keyspace tables and, with the filter, its sketch included. "+
		"Time is the replay's (its Redis calls, one batch at a time), not the measuring; the cold writes are not made, "+
		"so the filter's time leaves out their PostgreSQL cost and compares Redis work only.\n\n",
		time.Now().UTC().Format("2006-01-02"), machine(), version, strings.Join(os.Args[1:], " "),
		thousands(hotmemEvents), hotmemZipfS, thousands(hotmemCampaigns), thousands(hotmemUsers), thousands(hotmemBatch),
		thousands(int64(len(pairs))), thousands(hotmemThreshold), hotmemDB)
	b.WriteString(t.String())
	fmt.Fprintf(&b, "\nWith the filter, per-user aggregates take %.1f%% of the memory they take with every campaign in Redis "+
		"(`MEMORY USAGE` %s against %s; `used_memory` %.1f%%, the filter's own keys included: sketch, shadow counts and hot set, %s by `MEMORY USAGE`), "+
		"and %.1f%% of the keys. The saving is smaller than the campaigns' count suggests: "+
		"with threshold %s per window and %s events, only the head of the Zipf distribution is hot, %d campaigns of %s have %s events or more, "+
		"but they carry %.1f%% of the events and %.1f%% of the (campaign, user) pairs; "+
		"the filter routed %.1f%% of the events to Redis, less than that %.1f%%, since a campaign's events before it reached the threshold "+
		"(in batches before the one in which it did) went to PostgreSQL: most of the events of a campaign that ends just over it. "+
		"%s\n\n",
		100*float64(filtered.bytes)/float64(all.bytes), mb(filtered.bytes), mb(all.bytes),
		100*float64(filtered.usedDelta)/float64(all.usedDelta), kb(filtered.filterBytes),
		100*float64(filtered.keys)/float64(all.keys),
		thousands(hotmemThreshold), thousands(hotmemEvents), overCampaigns, thousands(hotmemCampaigns), thousands(hotmemThreshold),
		100*float64(overEvents)/hotmemEvents, 100*float64(headPairs(pairs, perCampaign))/float64(len(pairs)),
		100*float64(filtered.redisEvents)/hotmemEvents, 100*float64(overEvents)/hotmemEvents,
		hotNote(filtered.hot, overCampaigns))
	fmt.Fprintf(&b, "Cooling does not enter this figure: the hot set cools when a tenant's window changes, and the whole stream is one window, "+
		"so no campaign left it during the run. Over many windows a campaign that cools hands its users' progress to PostgreSQL as they next play "+
		"(the engine drops the Redis entry after the commit); the keys of users who do not play again stay until removed.\n")
	return b.String(), nil
}

// hotNote compares the filter's hot campaigns with the exact count's.
func hotNote(hot, exact int) string {
	if hot == exact {
		return fmt.Sprintf("The filter listed exactly those %d campaigns hot: no over-estimate crossed the threshold.", hot)
	}
	return fmt.Sprintf("The filter listed %d campaigns hot, %d more than the exact count: the sketch over-estimates, never under, "+
		"and a campaign just under the threshold can be listed.", hot, hot-exact)
}

// hotmemStream draws the workload, the same for every run.
func hotmemStream() []hotEvent {
	rng := rand.New(rand.NewPCG(5, 11))
	z := rand.NewZipf(rng, hotmemZipfS, 1, hotmemCampaigns-1)
	stream := make([]hotEvent, hotmemEvents)
	for i := range stream {
		var step uint8
		if rng.IntN(4) == 0 {
			step = 1
		}
		stream[i] = hotEvent{campaign: uint16(z.Uint64()), user: int32(rng.IntN(hotmemUsers)), step: step}
	}
	return stream
}

// headPairs counts the pairs of the campaigns with threshold events or more.
func headPairs(pairs map[hotPair]struct{}, perCampaign []int64) int64 {
	var n int64
	for p := range pairs {
		if perCampaign[p.campaign] >= hotmemThreshold {
			n++
		}
	}
	return n
}

// hotmemReplay runs the stream through the engine's Redis calls, batch by
// batch; hc nil: every campaign is hot.
func hotmemReplay(ctx context.Context, stream []hotEvent, campaigns []uuid.UUID, tenant uuid.UUID,
	hc *redis.HotCampaigns, hp *redis.HotProgress, r *hotmemRun) error {
	quests := map[hotPair]*hotQuest{}
	everHot := map[uuid.UUID]bool{}
	t0 := time.Now().Truncate(time.Millisecond)
	for from := 0; from < len(stream); from += hotmemBatch {
		batch := stream[from:min(from+hotmemBatch, len(stream))]
		hot := map[uuid.UUID]bool{}
		if hc != nil {
			occurrences := make([]uuid.UUID, len(batch))
			for i, e := range batch {
				occurrences[i] = campaigns[e.campaign]
			}
			var err error
			if hot, err = hc.Observe(ctx, map[uuid.UUID][]uuid.UUID{tenant: occurrences}); err != nil {
				return err
			}
			for c := range hot {
				everHot[c] = true
			}
		}
		isHot := func(c uint16) bool { return hc == nil || hot[campaigns[c]] }

		// The batch's keys, in order, and the progress each started from.
		var order []hotPair
		started := map[hotPair]hotQuest{}
		for _, e := range batch {
			p := hotPair{e.campaign, e.user}
			if _, ok := started[p]; ok {
				continue
			}
			order = append(order, p)
			if q := quests[p]; q != nil {
				started[p] = *q
			} else {
				started[p] = hotQuest{}
			}
		}
		keys := make([]enginecmd.ProgressKey, len(order))
		for i, p := range order {
			keys[i] = hotmemKey(campaigns, p)
		}
		entries, err := hp.Load(ctx, keys)
		if err != nil {
			return err
		}

		// The quest rule, as domain/engine counts an unordered quest.
		changed := map[hotPair]bool{}
		for i, e := range batch {
			if isHot(e.campaign) {
				r.redisEvents++
			} else {
				r.coldEvents++
			}
			p := hotPair{e.campaign, e.user}
			q := quests[p]
			if q == nil {
				q = &hotQuest{}
				quests[p] = q
			}
			if q.completed != 0 || q.counts[e.step] >= hotmemSteps[e.step] {
				continue // already completed, or the step is full: nothing written
			}
			ts := t0.Add(time.Duration(from+i) * 10 * time.Microsecond).UnixMilli()
			q.counts[e.step]++
			if q.windowStart == 0 {
				q.windowStart = ts
			}
			if q.counts[0] >= hotmemSteps[0] && q.counts[1] >= hotmemSteps[1] {
				q.completed = ts
			}
			changed[p] = true
		}

		var writes []enginecmd.HotWrite
		var settles []enginecmd.HotSettle
		for i, p := range order {
			if !changed[p] {
				continue
			}
			q := quests[p]
			base := started[p]
			q.version = base.version + 1
			if !isHot(p.campaign) {
				r.coldWrites++
				continue
			}
			w := enginecmd.HotWrite{
				Key:      keys[i],
				Seen:     entries[keys[i]].Latest.Version,
				Progress: hotmemProgress(keys[i], *q),
				Pending:  uuid.New(),
			}
			if base.version > 0 {
				w.Base = hotmemProgress(keys[i], base)
			}
			writes = append(writes, w)
			settles = append(settles, enginecmd.HotSettle{Key: keys[i], Pending: w.Pending})
		}
		if err := hp.Save(ctx, writes); err != nil {
			return err
		}
		if err := hp.Settle(ctx, settles); err != nil {
			return err
		}
		r.redisWrites += int64(len(writes))
	}
	r.hot = len(everHot)
	return nil
}

func hotmemKey(campaigns []uuid.UUID, p hotPair) enginecmd.ProgressKey {
	return enginecmd.ProgressKey{CampaignID: campaigns[p.campaign], UserID: fmt.Sprintf("user-%06d", p.user)}
}

func hotmemProgress(k enginecmd.ProgressKey, q hotQuest) enginecmd.StoredProgress {
	s := enginecmd.StoredProgress{Version: q.version}
	s.CampaignID, s.UserID = k.CampaignID, k.UserID
	s.Counts = []int{q.counts[0], q.counts[1]}
	if q.windowStart != 0 {
		s.WindowStart = time.UnixMilli(q.windowStart).UTC()
	}
	if q.completed != 0 {
		s.Completed = time.UnixMilli(q.completed).UTC()
	}
	return s
}

// usedMemory is INFO memory's used_memory.
func usedMemory(ctx context.Context, rdb *goredis.Client) (int64, error) {
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		return 0, fmt.Errorf("redis info memory: %w", err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, errors.New("redis info memory: no used_memory")
}

// settledMemory waits for used_memory to stop falling, then returns it:
// Redis shrinks an emptied keyspace table, and frees the old table of one
// that grew once its rehash is done, a little at a time in its cron, so a
// reading taken at once would count the previous variant's table or both
// of a growing one's. At most 5 s.
func settledMemory(ctx context.Context, rdb *goredis.Client) (int64, error) {
	last, err := usedMemory(ctx, rdb)
	if err != nil {
		return 0, err
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
		n, err := usedMemory(ctx, rdb)
		if err != nil {
			return 0, err
		}
		if n > last-64<<10 {
			return n, nil
		}
		last = n
	}
	return last, nil
}

// scanAggs calls page with each SCAN page's agg: keys of the given
// campaigns. One scan of the database, not one per campaign: a MATCH
// filters what SCAN walks, and each walk is the whole keyspace.
func scanAggs(ctx context.Context, rdb *goredis.Client, campaigns map[string]bool, page func([]string) error) error {
	var cursor uint64
	for {
		keys, next, err := rdb.Scan(ctx, cursor, "agg:{*", 5000).Result()
		if err != nil {
			return fmt.Errorf("scan agg: keys: %w", err)
		}
		keys = slices.DeleteFunc(keys, func(k string) bool {
			id, _, ok := strings.Cut(strings.TrimPrefix(k, "agg:{"), "}:")
			return !ok || !campaigns[id]
		})
		if len(keys) > 0 {
			if err := page(keys); err != nil {
				return err
			}
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

// aggMemory counts the campaigns' agg: keys and sums their MEMORY USAGE
// (SAMPLES 0: every field).
func aggMemory(ctx context.Context, rdb *goredis.Client, campaigns map[string]bool) (keys, bytes int64, err error) {
	err = scanAggs(ctx, rdb, campaigns, func(page []string) error {
		n, err := memoryOf(ctx, rdb, page)
		keys += int64(len(page))
		bytes += n
		return err
	})
	return keys, bytes, err
}

// keysMemory sums the MEMORY USAGE of the keys matching pattern and of the
// named keys that exist.
func keysMemory(ctx context.Context, rdb *goredis.Client, pattern string, named ...string) (int64, error) {
	keys, err := rdb.Keys(ctx, pattern).Result() // a handful, in the suite's own database
	if err != nil {
		return 0, err
	}
	return memoryOf(ctx, rdb, append(keys, named...))
}

func memoryOf(ctx context.Context, rdb *goredis.Client, keys []string) (int64, error) {
	pipe := rdb.Pipeline()
	cmds := make([]*goredis.IntCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.MemoryUsage(ctx, k, 0)
	}
	_, _ = pipe.Exec(ctx) // each command is checked below
	var sum int64
	for i, c := range cmds {
		n, err := c.Result()
		switch {
		case err == nil:
			sum += n
		case errors.Is(err, goredis.Nil):
		default:
			return 0, fmt.Errorf("memory usage %s: %w", keys[i], err)
		}
	}
	return sum, nil
}

// forgetAggs unlinks the campaigns' agg: keys in one scan; ForgetCampaign
// would scan the keyspace once per campaign.
func forgetAggs(ctx context.Context, rdb *goredis.Client, campaigns map[string]bool) (int64, error) {
	var n int64
	err := scanAggs(ctx, rdb, campaigns, func(page []string) error {
		d, err := rdb.Unlink(ctx, page...).Result()
		n += d
		return err
	})
	return n, err
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

func kb(n int64) string { return fmt.Sprintf("%.1f kB", float64(n)/1e3) }
