// This file is the Redis side of `incentives replay --projection
// user-aggregation` (issue #7): it rebuilds the user aggregates
// (user_rewards.go) from the event store into SHADOW keys and swaps them in
// for the live ones, tenant by tenant, while the live projection keeps
// running. The replay framework (adapters/postgres/replay.go) folds the
// events with projections.UserRewardsRebuild and drives these steps.
//
// # Shadow keys
//
// The shadow is the live layout under the prefix "uagg~replay~<platform>"
// (UserRewardsShadowPrefix and the platform's database name, see
// NewUserRewardsReplayOf) instead of "uagg":
//
//	uagg~replay~<p>:{<tenantId>}:u:<userId>                 hash, as live
//	uagg~replay~<p>:{<tenantId>}:seen:<yyyymmdd>:<userId>   set, as live, same TTL rule
//	uagg~replay~<p>:tenants  set, the tenants Write touched (no tenant's slot:
//	                         read by the replay only)
//	uagg~replay~<p>:writing  exists while a Write runs (ErrShadowTorn)
//
// The hash tag is the tenant's, as live, so a tenant's shadow and live keys
// share one cluster slot and one script can swap them atomically. The
// shadow has no checkpoint: the live one stays.
//
// # Why a shadow, a fence and shadow seen sets
//
//   - The live projection keeps consuming while the replay folds the event
//     store, possibly for hours: the replay cannot write the live keys (it
//     would count what the live projection counts too), so it writes its
//     own (Write: every changed user's hash wholesale, so a later Write of
//     the same user replaces it; resumable, Load).
//   - At the end, the replay catches up with what was committed meanwhile
//     and swaps. Between that final catch-up and the swap the live
//     projection must not apply anything, or the swap would throw its work
//     away: Fence sets the field fence of each tenant's live checkpoint
//     hash, and the live script (user_rewards.lua) refuses the tenant's
//     deliveries while it holds, with ErrFenced, which the projection
//     retries (it is not projections.ErrUnprojectable: never the DLQ).
//     The fence is a lease (FenceLease, Redis's clock): a replay that dies
//     fenced stalls the tenant's deliveries for at most that long; Swap
//     refuses a tenant whose lease has run out (ErrNotFenced).
//   - The live projection lags the event store: after the swap it goes on
//     delivering incentives the shadow counted already. The live seen sets
//     are what makes a delivery count once, so the shadow carries its own,
//     built from the same fold (projections.UserRewardsRebuild.TakeSeen:
//     the ids of incentives whose day is within SeenHorizon, or recorded
//     less than SeenFloor ago, as live remembers a late incentive SeenFloor
//     after delivering it) and MERGED with the live ones at the swap: such
//     a delivery then finds its id and counts nothing, while an incentive
//     the shadow does not hold (committed after the final catch-up) counts
//     as usual. Every id a live seen set holds is in the fold (the live
//     projection delivers the event store's incentives), so the union
//     counts nothing twice, and it keeps what the live set remembers by
//     SeenFloor alone (a late incentive the live projection delivered long
//     after it was recorded); a live seen set the shadow has no
//     counterpart of stays as it is. Otherwise incentives are remembered
//     exactly as live: a live projection lagging by more than SeenHorizon
//     (SeenFloor, for a late incentive) behind the event store would
//     count them again.
//
// # Swap
//
// Swap runs, per tenant, ONE script (SWAP_USER_REWARDS) whose keys are all
// in the tenant's slot, so it is atomic: it checks the tenant's fence
// holds, RENAMEs every shadow user hash over the live key of the same
// name, merges every shadow seen set into the live one (SUNIONSTORE, the
// later expiry of the two), deletes the live user hashes the shadow does
// not have (users the rebuild did not find; their seen sets stay), keeps
// the live checkpoint hash and clears its fence. The script names its
// keys, so Swap first SCANs the keyspace once for the keys of all the
// tenants it swaps. A tenant with more keys than MaxSwapKeys is swapped by
// several scripts, each atomic and each holding whole users (a user's
// hash and all its seen sets); readers may then see the tenant half
// swapped for a moment (the live projection cannot: the fence holds until
// the last one, which clears it; every other one extends its lease). A
// swap that fails midway leaves the tenant fenced until the lease runs
// out, each user either swapped or live, both consistent.
//
// # A replay, step by step
//
//  1. DropShadow on a fresh start, or Load to resume an interrupted replay
//     (projections.UserRewardsRebuild.LoadUser): Load refuses a shadow
//     whose last Write did not finish (ErrShadowTorn). The rebuild adds
//     each event once: resume exactly after the last successful Write.
//  2. Fold the event store; Write(TakeDirty(), TakeSeen()) every so often.
//  3. Fence(Tenants()), fold and Write what was committed since (the final
//     catch-up must see every event committed before the fence), fence the
//     tenants Tenants() now adds and catch up again if any, Swap them all.
//     On a failure before Swap, Unfence. After a failed Swap do not:
//     Swap leaves every tenant it could not swap (wholly) fenced until
//     the lease runs out, and names them in its error.
//
// SCANs run on this client's node: in a Redis Cluster they must run on
// every node (as Dump and ForgetTenant). Each is one pass over the whole
// keyspace (SCAN is not indexed: a MATCH filters what it walks), in
// batches of scanCount keys: O(every key of the database) of server
// time, in about keys/scanCount calls, each blocking Redis only briefly.
// Run them where that is acceptable (Tenants runs under the replay's
// lock, once per fence round).

package redis

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/incentives-platform/incentives/projections"
)

// UserRewardsShadowPrefix is the prefix of a user-aggregation replay's
// shadow keys.
const UserRewardsShadowPrefix = UserRewardsPrefix + "~replay"

const (
	// DefaultFenceLease is how long a Fence holds unless renewed.
	DefaultFenceLease = 10 * time.Minute
	// DefaultMaxSwapKeys is the most keys one swap script names.
	DefaultMaxSwapKeys = 500_000
	// DefaultShadowBatch is the scripts Write sends per round trip.
	DefaultShadowBatch = 2000
)

// ErrNotFenced is returned (wrapped) by Swap for a tenant whose fence does
// not hold (never set, cleared, or its lease ran out): nothing of the
// tenant was swapped by the refused script.
var ErrNotFenced = errors.New("user aggregates not fenced")

// ErrShadowTorn is returned (wrapped) by Load and Swap when a Write of the
// shadow did not finish: some users of that Write may hold events the
// resume point does not cover. Start the replay over (DropShadow).
var ErrShadowTorn = errors.New("the user-aggregation shadow is torn: a write did not finish")

// UserRewardsReplay writes, reads and swaps in a user-aggregation replay's
// shadow keys. Its methods are for one replay at a time; the live
// projection runs concurrently.
type UserRewardsReplay struct {
	// FenceLease is how long Fence holds a tenant; 0 is DefaultFenceLease.
	FenceLease time.Duration
	// MaxSwapKeys is the most keys one swap script names, unless one user
	// alone (its hash and seen sets) has more: a script holds whole users;
	// 0 is DefaultMaxSwapKeys.
	MaxSwapKeys int
	// Batch is the scripts Write sends per round trip; 0 is
	// DefaultShadowBatch.
	Batch int

	rdb          *goredis.Client
	live, shadow userRewardKeys
	writeUser    *goredis.Script
	writeSeen    *goredis.Script
	fence        *goredis.Script
	swap         *goredis.Script

	// beforeChunk, when set (by tests), runs before each swap script of a
	// tenant (chunk counts from 0); an error fails the tenant's swap there.
	beforeChunk func(tenant uuid.UUID, chunk int) error
}

// NewUserRewardsReplay returns the replay of the live user aggregates
// (UserRewardsPrefix) into UserRewardsShadowPrefix on c's Redis.
func NewUserRewardsReplay(c *Client) *UserRewardsReplay {
	return newUserRewardsReplay(c, UserRewardsPrefix, UserRewardsShadowPrefix)
}

// NewUserRewardsReplayOf is NewUserRewardsReplay with shadow keys of the
// platform named (its database): replays of several platforms sharing one
// Redis then never meet. The name keeps letters, digits and underscores.
func NewUserRewardsReplayOf(c *Client, name string) *UserRewardsReplay {
	clean := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return '_'
	}, name)
	return newUserRewardsReplay(c, UserRewardsPrefix, UserRewardsShadowPrefix+"~"+clean)
}

func newUserRewardsReplay(c *Client, live, shadow string) *UserRewardsReplay {
	return &UserRewardsReplay{
		rdb: c.rdb, live: userRewardKeys{prefix: live}, shadow: userRewardKeys{prefix: shadow},
		writeUser: goredis.NewScript(writeShadowUserSource), writeSeen: goredis.NewScript(writeShadowSeenSource),
		fence: goredis.NewScript(fenceUserRewardsSource), swap: goredis.NewScript(swapUserRewardsSource),
	}
}

func (r *UserRewardsReplay) registry() string { return r.shadow.prefix + ":tenants" }
func (r *UserRewardsReplay) writing() string  { return r.shadow.prefix + ":writing" }

func (r *UserRewardsReplay) lease() time.Duration {
	if r.FenceLease > 0 {
		return r.FenceLease
	}
	return DefaultFenceLease
}

// WRITE_SHADOW_USER: KEYS[1] a shadow user hash, ARGV its fields and
// values. Replaces the hash, atomically. HSET takes the fields a hundred
// at a time (Lua's unpack has a stack limit).
const writeShadowUserSource = `#!lua
redis.call('DEL', KEYS[1])
for i = 1, #ARGV, 200 do
  redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 199, #ARGV)))
end
return 1
`

// WRITE_SHADOW_SEEN: KEYS[1] a shadow seen set, ARGV[1] its EXPIREAT
// (Unix s, 8 days past its day), ARGV[2] the least time it lives after
// this call (s), ARGV[3..] incentive ids. The live script's TTL rule.
const writeShadowSeenSource = `#!lua
for i = 3, #ARGV, 500 do
  redis.call('SADD', KEYS[1], unpack(ARGV, i, math.min(i + 499, #ARGV)))
end
local expireAt = tonumber(ARGV[1])
local floor = tonumber(redis.call('TIME')[1]) + tonumber(ARGV[2])
if expireAt < floor then
  expireAt = floor
end
redis.call('EXPIREAT', KEYS[1], expireAt)
return 1
`

// FENCE_USER_REWARDS: KEYS[1] a live checkpoint hash, ARGV[1] the lease
// in ms. Sets its field fence to Redis's clock plus the lease, Unix ms.
const fenceUserRewardsSource = `#!lua
local t = redis.call('TIME')
local untilMs = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
redis.call('HSET', KEYS[1], 'fence', untilMs)
return untilMs
`

// SWAP_USER_REWARDS: one tenant's swap, or one chunk of it (whole users:
// a user's hash and seen sets are always in the same chunk).
//
//	KEYS[1]               the tenant's live checkpoint hash
//	KEYS[2 .. n+1]        shadow user hashes and seen sets
//	KEYS[n+2 .. 2n+1]     the live key of the same name, each
//	KEYS[2n+2 ..]         live user hashes the shadow does not have, to delete
//	ARGV[1]               n
//	ARGV[2]               1 for the tenant's last chunk: clear the fence;
//	                      0: extend it by ARGV[3] ms
//	ARGV[4 .. n+3]        each pair's kind: u (a user hash) or s (a seen set)
//
// Refuses with NOTFENCED, changing nothing, unless the fence holds. A
// shadow user hash replaces the live one (RENAME; one dropped since the
// SCAN deletes its live name). A shadow seen set is MERGED with the live
// one (SUNIONSTORE), which then expires at the later of the two expiry
// times: every id the live projection applied is in the fold, so the
// union counts nothing twice, and it keeps the ids the live set remembers
// by SeenFloor alone. A shadow seen set that expired since the SCAN
// leaves the live one as it is; so does a live seen set the shadow does
// not have. The shebang makes Redis refuse the script when out of memory
// rather than fail midway: nothing after the fence check can fail.
const swapUserRewardsSource = `#!lua
local cp = KEYS[1]
local n = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local fence = redis.call('HGET', cp, 'fence')
if not fence or tonumber(fence) <= now then
  return redis.error_reply('NOTFENCED ' .. cp)
end
for i = 2, n + 1 do
  local src, dst = KEYS[i], KEYS[i + n]
  if ARGV[i + 2] == 's' then
    if redis.call('EXISTS', src) == 1 then
      if redis.call('EXISTS', dst) == 1 then
        -- -1: no expiry (never written so), which wins.
        local a = redis.call('PEXPIRETIME', src)
        local b = redis.call('PEXPIRETIME', dst)
        redis.call('SUNIONSTORE', dst, dst, src)
        redis.call('DEL', src)
        if a >= 0 and b >= 0 then
          redis.call('PEXPIREAT', dst, math.max(a, b))
        end
      else
        redis.call('RENAME', src, dst)
      end
    end
  elseif redis.call('EXISTS', src) == 1 then
    redis.call('RENAME', src, dst)
  else
    redis.call('DEL', dst)
  end
end
for i = 2 * n + 2, #KEYS do
  redis.call('DEL', KEYS[i])
end
if ARGV[2] == '1' then
  redis.call('HDEL', cp, 'fence')
else
  redis.call('HSET', cp, 'fence', now + tonumber(ARGV[3]))
end
return n
`

// Write writes the users' views into their shadow hashes, each replacing
// the hash it had (one script per user), and adds the seen ids to the
// shadow seen sets, with the live TTL rule (SeenHorizon past the day,
// never less than SeenFloor from now, Redis's clock: a late incentive's
// id is remembered at least as long as live would from its delivery). It sends Batch scripts per round
// trip and records the tenants in the shadow registry. A Write that fails
// leaves the shadow torn until DropShadow: Load, Swap and Write then
// return an error wrapping ErrShadowTorn.
func (r *UserRewardsReplay) Write(ctx context.Context, users map[projections.UserKey]projections.UserRewardsView, seen projections.UserRewardsSeen) error {
	if len(users) == 0 && len(seen) == 0 {
		return nil
	}
	tenants := map[string]bool{}
	userCalls := make([]scriptCall, 0, len(users))
	for _, k := range projections.UserRewardTotals(users).Users() {
		tenants[k.TenantID.String()] = true
		userCalls = append(userCalls, scriptCall{keys: []string{r.shadow.user(k)}, args: userRewardFields(users[k])})
	}
	seenCalls := make([]scriptCall, 0, len(seen))
	floor := strconv.FormatInt(int64(SeenFloor/time.Second), 10)
	for _, k := range slices.SortedFunc(maps.Keys(seen), compareSeenKeys) {
		day, err := time.Parse("20060102", k.Day)
		if err != nil || k.Day != projections.UserRewardsDay(day) {
			return fmt.Errorf("write user rewards shadow: seen day %q is not yyyymmdd", k.Day)
		}
		ids := seen[k]
		if len(ids) == 0 {
			continue
		}
		tenants[k.User.TenantID.String()] = true
		args := make([]any, 0, 2+len(ids))
		args = append(args, strconv.FormatInt(day.AddDate(0, 0, 1).Add(SeenHorizon).Unix(), 10), floor)
		for _, id := range ids {
			args = append(args, id.String())
		}
		seenCalls = append(seenCalls, scriptCall{keys: []string{r.shadow.seen(k.User, k.Day)}, args: args})
	}
	if len(userCalls) == 0 && len(seenCalls) == 0 {
		return nil
	}
	registered := make([]any, 0, len(tenants))
	for t := range tenants {
		registered = append(registered, t)
	}
	// A torn shadow stays torn: a later Write must not hide it.
	torn, err := r.rdb.SetArgs(ctx, r.writing(), "1", goredis.SetArgs{Mode: "NX"}).Result()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return fmt.Errorf("write user rewards shadow: %w", err)
	}
	if torn != "OK" {
		return fmt.Errorf("write user rewards shadow: %w", ErrShadowTorn)
	}
	if err := r.rdb.SAdd(ctx, r.registry(), registered...).Err(); err != nil {
		return fmt.Errorf("write user rewards shadow: %w", err)
	}
	batch := r.Batch
	if batch <= 0 {
		batch = DefaultShadowBatch
	}
	for chunk := range slices.Chunk(userCalls, batch) {
		if _, err := runScript(ctx, r.rdb, r.writeUser, "WRITE_SHADOW_USER", chunk); err != nil {
			return fmt.Errorf("write user rewards shadow: %w", err)
		}
	}
	for chunk := range slices.Chunk(seenCalls, batch) {
		if _, err := runScript(ctx, r.rdb, r.writeSeen, "WRITE_SHADOW_SEEN", chunk); err != nil {
			return fmt.Errorf("write user rewards shadow: %w", err)
		}
	}
	if err := r.rdb.Del(ctx, r.writing()).Err(); err != nil {
		return fmt.Errorf("write user rewards shadow: %w", err)
	}
	return nil
}

func compareSeenKeys(a, b projections.SeenKey) int {
	if c := slices.Compare(a.User.TenantID[:], b.User.TenantID[:]); c != 0 {
		return c
	}
	if c := strings.Compare(a.User.UserID, b.User.UserID); c != 0 {
		return c
	}
	return strings.Compare(a.Day, b.Day)
}

// userRewardFields are a user hash's fields and values, as USER_REWARDS
// writes them.
func userRewardFields(v projections.UserRewardsView) []any {
	args := make([]any, 0, 4*len(v.Rewards)+2*len(v.Campaigns)+2)
	for rk, t := range v.Rewards {
		args = append(args, rewardField(countField, rk), strconv.FormatInt(t.Count, 10),
			rewardField(sumField, rk), strconv.FormatInt(t.Units, 10))
	}
	for id, n := range v.Campaigns {
		args = append(args, campaignField+id.String(), strconv.FormatInt(n, 10))
	}
	return append(args, lastField, strconv.FormatInt(v.LastIssuedAt.UnixMilli(), 10))
}

// Load reads every shadow user hash back, to resume an interrupted
// replay. It returns an error wrapping ErrShadowTorn when the last Write
// did not finish.
func (r *UserRewardsReplay) Load(ctx context.Context) (map[projections.UserKey]projections.UserRewardsView, error) {
	if err := r.checkWhole(ctx); err != nil {
		return nil, fmt.Errorf("load user rewards shadow: %w", err)
	}
	var keys []string
	var users []projections.UserKey
	err := scanKeys(ctx, r.rdb, globEscape(r.shadow.prefix)+":{*}:u:*", func(key string) {
		tenant, rest, ok := r.shadow.parse(key)
		if user, isUser := strings.CutPrefix(rest, ":u:"); ok && isUser {
			keys, users = append(keys, key), append(users, projections.UserKey{TenantID: tenant, UserID: user})
		}
	})
	if err != nil {
		return nil, fmt.Errorf("load user rewards shadow: %w", err)
	}
	out := make(map[projections.UserKey]projections.UserRewardsView, len(keys))
	for start := 0; start < len(keys); start += 1000 {
		end := min(start+1000, len(keys))
		pipe := r.rdb.Pipeline()
		cmds := make([]*goredis.MapStringStringCmd, 0, end-start)
		for _, k := range keys[start:end] {
			cmds = append(cmds, pipe.HGetAll(ctx, k))
		}
		// Exec's error is the first command's; each command is checked below.
		_, _ = pipe.Exec(ctx)
		for i, cmd := range cmds {
			fields, err := cmd.Result()
			if err != nil {
				return nil, fmt.Errorf("load user rewards shadow %s: %w", keys[start+i], err)
			}
			if len(fields) == 0 {
				continue
			}
			v, err := parseUserRewards(fields)
			if err != nil {
				return nil, fmt.Errorf("load user rewards shadow %s: %w", keys[start+i], err)
			}
			out[users[start+i]] = v
		}
	}
	return out, nil
}

// checkWhole returns ErrShadowTorn when a Write did not finish.
func (r *UserRewardsReplay) checkWhole(ctx context.Context) error {
	n, err := r.rdb.Exists(ctx, r.writing()).Result()
	if err != nil {
		return err
	}
	if n > 0 {
		return ErrShadowTorn
	}
	return nil
}

// Tenants returns, sorted, the tenants that have live user-aggregation
// keys (users, seen sets or a checkpoint) or shadow keys, or that a Write
// recorded in the shadow registry. It scans the whole keyspace once (see
// the file comment for the cost): no registry of live tenants can be kept
// by the live script, whose keys are all in the tenant's slot.
func (r *UserRewardsReplay) Tenants(ctx context.Context) ([]uuid.UUID, error) {
	set := map[uuid.UUID]bool{}
	err := scanKeys(ctx, r.rdb, r.pattern(), func(key string) {
		if tenant, _, ok := r.live.parse(key); ok {
			set[tenant] = true
		} else if tenant, _, ok := r.shadow.parse(key); ok {
			set[tenant] = true
		}
	})
	if err != nil {
		return nil, fmt.Errorf("user rewards tenants: %w", err)
	}
	registered, err := r.rdb.SMembers(ctx, r.registry()).Result()
	if err != nil {
		return nil, fmt.Errorf("user rewards tenants: %w", err)
	}
	for _, s := range registered {
		id, err := uuid.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("user rewards tenants: %s holds %q", r.registry(), s)
		}
		set[id] = true
	}
	return slices.SortedFunc(maps.Keys(set), func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) }), nil
}

// pattern matches every live and shadow key (and maybe others, which
// parse refuses): their common prefix.
func (r *UserRewardsReplay) pattern() string {
	a, b := r.live.prefix, r.shadow.prefix
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return globEscape(a[:n]) + "*"
}

func globEscape(s string) string {
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune(`*?[]\`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Fence makes the live projection refuse the tenants' deliveries
// (ErrFenced) for FenceLease from now, Redis's clock: it sets the field
// fence of each tenant's live checkpoint hash. Fencing again renews it.
func (r *UserRewardsReplay) Fence(ctx context.Context, tenants []uuid.UUID) error {
	lease := strconv.FormatInt(r.lease().Milliseconds(), 10)
	calls := make([]scriptCall, len(tenants))
	for i, t := range tenants {
		calls[i] = scriptCall{keys: []string{r.live.checkpoint(t)}, args: []any{lease}}
	}
	for chunk := range slices.Chunk(calls, DefaultShadowBatch) {
		if _, err := runScript(ctx, r.rdb, r.fence, "FENCE_USER_REWARDS", chunk); err != nil {
			return fmt.Errorf("fence user rewards: %w", err)
		}
	}
	return nil
}

// Unfence clears the tenants' fences: the live projection applies their
// deliveries again.
func (r *UserRewardsReplay) Unfence(ctx context.Context, tenants []uuid.UUID) error {
	for chunk := range slices.Chunk(tenants, DefaultShadowBatch) {
		pipe := r.rdb.Pipeline()
		for _, t := range chunk {
			pipe.HDel(ctx, r.live.checkpoint(t), fenceField)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("unfence user rewards: %w", err)
		}
	}
	return nil
}

// tenantKeys are one tenant's user and seen keys, by what follows the
// tenant's hash tag (":u:<user>", ":seen:<day>:<user>").
type tenantKeys struct{ live, shadow map[string]bool }

// Swap swaps each tenant's shadow keys in for its live ones (see the file
// comment): one atomic script per tenant, or per about MaxSwapKeys keys of
// it (whole users), that requires the tenant fenced (ErrNotFenced) and
// clears its fence once its last script ran.
//
// On error the tenants Swap did not finish stay fenced until their lease
// runs out (Swap never unfences; neither should its caller: the live
// projection resumes by itself): every tenant when it returns
// ErrShadowTorn or cannot scan, swapping nothing; otherwise the tenants
// its error names, each either untouched or swapped for some of its users
// (each user's keys whole: its hash and seen sets together), except those
// refused with ErrNotFenced, whose lease had run out already. Tenants are
// independent: the others were swapped and unfenced.
func (r *UserRewardsReplay) Swap(ctx context.Context, tenants []uuid.UUID) error {
	if err := r.checkWhole(ctx); err != nil {
		return fmt.Errorf("swap user rewards: %w", err)
	}
	byTenant := make(map[uuid.UUID]*tenantKeys, len(tenants))
	for _, t := range tenants {
		byTenant[t] = &tenantKeys{live: map[string]bool{}, shadow: map[string]bool{}}
	}
	err := scanKeys(ctx, r.rdb, r.pattern(), func(key string) {
		tenant, rest, ok := r.live.parse(key)
		live := ok
		if !ok {
			tenant, rest, ok = r.shadow.parse(key)
		}
		tk := byTenant[tenant]
		if !ok || tk == nil || !(strings.HasPrefix(rest, ":u:") || strings.HasPrefix(rest, ":seen:")) {
			return
		}
		if live {
			tk.live[rest] = true
		} else {
			tk.shadow[rest] = true
		}
	})
	if err != nil {
		return fmt.Errorf("swap user rewards: %w", err)
	}
	var errs []error
	for _, t := range tenants {
		if err := r.swapTenant(ctx, t, byTenant[t]); err != nil {
			errs = append(errs, fmt.Errorf("swap user rewards of tenant %s: %w", t, err))
			continue
		}
		if err := r.rdb.SRem(ctx, r.registry(), t.String()).Err(); err != nil {
			errs = append(errs, fmt.Errorf("swap user rewards of tenant %s: swapped, but %s: %w", t, r.registry(), err))
		}
	}
	return errors.Join(errs...)
}

// swapUser is what one swap script does to one user: the shadow keys
// (":u:<user>", ":seen:<day>:<user>") it renames or merges over their
// live names, and the live hash it deletes ("" for none).
type swapUser struct {
	pairs []string
	del   string
}

// cost is the keys the user takes in a swap script.
func (u *swapUser) cost() int {
	n := 2 * len(u.pairs)
	if u.del != "" {
		n++
	}
	return n
}

// swapGroup names the user a key (what follows the tenant's hash tag)
// belongs to; a key of no user (none is written) is a group of its own.
func swapGroup(rest string) string {
	if user, ok := strings.CutPrefix(rest, ":u:"); ok {
		return "u" + user
	}
	const day = len("yyyymmdd")
	if seen, ok := strings.CutPrefix(rest, ":seen:"); ok && len(seen) > day && seen[day] == ':' {
		return "u" + seen[day+1:]
	}
	return "k" + rest
}

func (r *UserRewardsReplay) swapTenant(ctx context.Context, tenant uuid.UUID, tk *tenantKeys) error {
	limit := r.MaxSwapKeys
	if limit <= 0 {
		limit = DefaultMaxSwapKeys
	}
	users := map[string]*swapUser{}
	group := func(rest string) *swapUser {
		g := swapGroup(rest)
		u := users[g]
		if u == nil {
			u = &swapUser{}
			users[g] = u
		}
		return u
	}
	for rest := range tk.shadow {
		u := group(rest)
		u.pairs = append(u.pairs, rest)
	}
	// Live user hashes the shadow lacks go (users the rebuild did not
	// find); live seen sets the shadow lacks stay (ids the live store
	// remembers by SeenFloor: the fold has them all).
	for rest := range tk.live {
		if strings.HasPrefix(rest, ":u:") && !tk.shadow[rest] {
			group(rest).del = rest
		}
	}
	// Chunks of whole users, in order; one user with more keys than the
	// limit is a chunk of its own.
	var chunks [][]*swapUser
	size := 0
	for _, g := range slices.Sorted(maps.Keys(users)) {
		u := users[g]
		slices.Sort(u.pairs)
		if len(chunks) == 0 || (size > 0 && size+u.cost() > limit-1) {
			chunks, size = append(chunks, nil), 0
		}
		chunks[len(chunks)-1] = append(chunks[len(chunks)-1], u)
		size += u.cost()
	}
	if len(chunks) == 0 {
		chunks = [][]*swapUser{nil} // still clears the fence
	}
	cp := r.live.checkpoint(tenant)
	lease := strconv.FormatInt(r.lease().Milliseconds(), 10)
	shadow, live := r.shadow.tenant(tenant), r.live.tenant(tenant)
	for i, chunk := range chunks {
		if r.beforeChunk != nil {
			if err := r.beforeChunk(tenant, i); err != nil {
				return err
			}
		}
		var src, dst, del []string
		var kinds []any
		for _, u := range chunk {
			for _, rest := range u.pairs {
				src, dst = append(src, shadow+rest), append(dst, live+rest)
				kind := "u"
				if strings.HasPrefix(rest, ":seen:") {
					kind = "s"
				}
				kinds = append(kinds, kind)
			}
			if u.del != "" {
				del = append(del, live+u.del)
			}
		}
		last := "0"
		if i == len(chunks)-1 {
			last = "1"
		}
		keys := append(append(append([]string{cp}, src...), dst...), del...)
		call := scriptCall{keys: keys, args: append([]any{strconv.Itoa(len(src)), last, lease}, kinds...)}
		if _, err := runScript(ctx, r.rdb, r.swap, "SWAP_USER_REWARDS", []scriptCall{call}); err != nil {
			if goredis.HasErrorPrefix(err, "NOTFENCED") {
				return fmt.Errorf("%w: %w", ErrNotFenced, err)
			}
			return err
		}
	}
	return nil
}

// DropShadow deletes every shadow key (all tenants', the registry and the
// torn mark): to start a replay over or abandon it. The live keys are
// untouched; a fence is not (Unfence).
func (r *UserRewardsReplay) DropShadow(ctx context.Context) error {
	if _, err := unlinkMatching(ctx, r.rdb, globEscape(r.shadow.prefix)+":*"); err != nil {
		return fmt.Errorf("drop user rewards shadow: %w", err)
	}
	return nil
}

// parse splits a key of this copy of the read model into its tenant and
// what follows the tenant's hash tag (":u:<user>", ":seen:<day>:<user>",
// ":checkpoint"); ok is false for any other key.
func (k userRewardKeys) parse(key string) (tenant uuid.UUID, rest string, ok bool) {
	head := k.prefix + ":{"
	const idLen = 36
	if !strings.HasPrefix(key, head) || len(key) < len(head)+idLen+1 || key[len(head)+idLen] != '}' {
		return uuid.Nil, "", false
	}
	s := key[len(head) : len(head)+idLen]
	id, err := uuid.Parse(s)
	if err != nil || id.String() != s {
		return uuid.Nil, "", false
	}
	return id, key[len(head)+idLen+1:], true
}

// scanCount is the keys one SCAN call walks: large, so that a scan of
// the whole keyspace takes few round trips, while one call still blocks
// Redis for a few milliseconds at most.
const scanCount = 10_000

// scanKeys calls fn with every key matching pattern: one pass over the
// keyspace.
func scanKeys(ctx context.Context, rdb *goredis.Client, pattern string, fn func(string)) error {
	iter := rdb.Scan(ctx, 0, pattern, scanCount).Iterator()
	for iter.Next(ctx) {
		fn(iter.Val())
	}
	return iter.Err()
}
