package redis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/incentive"
	"github.com/incentives-platform/incentives/domain/rules"
	"github.com/incentives-platform/incentives/projections"
)

// Each replay test has its own live and shadow prefixes (uaggtest-<random>
// and uaggtest-<random>~replay), so Tenants, Load and DropShadow, which
// see every tenant of a prefix, see only the test's keys; all of them are
// deleted when the test ends.

type replayFixture struct {
	t      *testing.T
	prefix string
	live   *UserRewards
	r      *UserRewardsReplay
}

func mustReplay(t *testing.T) *replayFixture {
	t.Helper()
	c := MustClient(t)
	prefix := fmt.Sprintf("uaggtest-%016x", rand.Uint64())
	t.Cleanup(func() {
		if _, err := unlinkMatching(context.Background(), c.rdb, prefix+"*"); err != nil {
			t.Errorf("clean up %s: %v", prefix, err)
		}
	})
	return &replayFixture{t: t, prefix: prefix, live: newUserRewards(c, prefix), r: newUserRewardsReplay(c, prefix, prefix+"~replay")}
}

// other returns another copy of the read model with its own prefix.
func (f *replayFixture) other(name string) *UserRewards {
	return newUserRewards(&Client{rdb: f.live.rdb}, f.prefix+"-"+name)
}

func (f *replayFixture) apply(u *UserRewards, inc incentive.Issued) bool {
	f.t.Helper()
	applied, err := u.ApplyIncentive(context.Background(), checkpoint(0, 1, 1), inc)
	if err != nil {
		f.t.Fatalf("ApplyIncentive(%s): %v", inc.IncentiveID, err)
	}
	return applied
}

func (f *replayFixture) dump(u *UserRewards, tenants ...uuid.UUID) projections.UserRewardTotals {
	f.t.Helper()
	got, err := u.Dump(context.Background(), tenants...)
	if err != nil {
		f.t.Fatalf("Dump: %v", err)
	}
	return got
}

// keys returns the keys matching pattern.
func (f *replayFixture) keys(pattern string) []string {
	f.t.Helper()
	var keys []string
	if err := scanKeys(context.Background(), f.live.rdb, pattern, func(k string) { keys = append(keys, k) }); err != nil {
		f.t.Fatal(err)
	}
	return keys
}

// fold folds incs into a rebuild, writing the shadow every `every`
// incentives.
func (f *replayFixture) fold(incs []incentive.Issued, every int) *projections.UserRewardsRebuild {
	f.t.Helper()
	rb := projections.NewUserRewardsRebuild()
	for i, inc := range incs {
		if err := rb.Apply(domain.RecordedEvent{Stream: incentive.Stream(inc.IncentiveID), Version: 1, Event: inc}); err != nil {
			f.t.Fatal(err)
		}
		if (i+1)%every == 0 || i == len(incs)-1 {
			if err := f.r.Write(context.Background(), rb.TakeDirty(), rb.TakeSeen()); err != nil {
				f.t.Fatalf("Write: %v", err)
			}
		}
	}
	return rb
}

func randomIncentives(r *rand.Rand, n int, tenants []uuid.UUID, now time.Time) []incentive.Issued {
	campaigns := []uuid.UUID{uuid.New(), uuid.New()}
	types := []struct {
		typ      rules.RewardType
		currency string
	}{{rules.RewardCashback, "INR"}, {rules.RewardPoints, "POINTS"}, {rules.RewardCoupon, "COUPON"}}
	incs := make([]incentive.Issued, n)
	for i := range incs {
		ty := types[r.IntN(len(types))]
		// Up to 12 days back: some days have left the seen horizon.
		incs[i] = reward(tenants[r.IntN(len(tenants))], fmt.Sprintf("user-%d", r.IntN(6)), campaigns[r.IntN(2)], ty.typ, ty.currency,
			decimal.New(r.Int64N(1_000_000), -int32(r.IntN(5))).String(), now.Add(-time.Duration(r.IntN(12*24*3600))*time.Second))
	}
	return incs
}

func TestUserRewardsReplaySwapEqualsLiveApplication(t *testing.T) {
	t.Parallel()
	for _, maxKeys := range []int{0, 4} {
		t.Run(fmt.Sprintf("MaxSwapKeys=%d", maxKeys), func(t *testing.T) {
			t.Parallel()
			f := mustReplay(t)
			f.r.MaxSwapKeys = maxKeys
			ctx := context.Background()
			// acme has live keys and events, shadowOnly only events (the
			// live projection has not reached them), liveOnly only live
			// keys (the event store has nothing of it).
			acme, shadowOnly, liveOnly := uuid.New(), uuid.New(), uuid.New()
			now := recent()
			incs := randomIncentives(rand.New(rand.NewPCG(3, uint64(maxKeys))), 240, []uuid.UUID{acme, shadowOnly}, now)

			// The live projection has consumed some of acme's incentives,
			// and holds users and days the event store does not.
			consumed := 0
			for _, inc := range incs[:150] {
				if inc.TenantID == acme {
					f.apply(f.live, inc)
					consumed++
				}
			}
			ghost := reward(acme, "ghost", uuid.New(), rules.RewardPoints, "POINTS", "5", now)
			extra := reward(acme, "user-0", uuid.New(), rules.RewardCashback, "USD", "9", now.Add(-time.Hour))
			lone := reward(liveOnly, "u1", uuid.New(), rules.RewardPoints, "POINTS", "1", now)
			for _, inc := range []incentive.Issued{ghost, extra, lone} {
				f.apply(f.live, inc)
			}
			cpsBefore, err := f.live.Checkpoints(ctx, acme)
			if err != nil || len(cpsBefore) == 0 {
				t.Fatalf("Checkpoints = %v, %v", cpsBefore, err)
			}

			rb := f.fold(incs, 70)
			got, err := f.r.Tenants(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if want := sortedTenants(acme, shadowOnly, liveOnly); !reflect.DeepEqual(got, want) {
				t.Fatalf("Tenants = %v, want %v", got, want)
			}
			all := []uuid.UUID{acme, shadowOnly, liveOnly}
			if err := f.r.Fence(ctx, all); err != nil {
				t.Fatal(err)
			}
			if err := f.r.Swap(ctx, all); err != nil {
				t.Fatalf("Swap: %v", err)
			}

			// The live keys now equal what applying the event store's
			// incentives to an empty read model gives.
			ref := f.other("ref")
			for _, inc := range incs {
				f.apply(ref, inc)
			}
			sameTotals(t, f.dump(f.live, all...), f.dump(ref, all...))
			sameTotals(t, f.dump(f.live, all...), rb.Totals)
			if _, ok := f.dump(f.live, acme)[projections.UserKey{TenantID: acme, UserID: "ghost"}]; ok {
				t.Fatal("a live user absent from the shadow is still there")
			}
			// The checkpoints stay, without the fence; no shadow key is left.
			if cps, err := f.live.Checkpoints(ctx, acme); err != nil || !reflect.DeepEqual(cps, cpsBefore) {
				t.Fatalf("Checkpoints after the swap = %v, %v, want %v", cps, err, cpsBefore)
			}
			for _, tenant := range all {
				if fenced, err := f.live.rdb.HExists(ctx, f.live.keys.checkpoint(tenant), fenceField).Result(); err != nil || fenced {
					t.Fatalf("tenant %s still fenced (%v)", tenant, err)
				}
			}
			if left := f.keys(f.prefix + "~replay*"); len(left) != 0 {
				t.Fatalf("shadow keys left after the swap: %v", left)
			}
			// The seen sets came with the shadow, with the live TTL rule.
			for _, inc := range incs {
				if inc.IssuedAt.Before(now.Add(-24 * time.Hour)) {
					continue
				}
				user := projections.UserKey{TenantID: inc.TenantID, UserID: inc.UserID}
				day := projections.UserRewardsDay(inc.IssuedAt)
				got, err1 := f.live.rdb.ExpireTime(ctx, f.live.keys.seen(user, day)).Result()
				want, err2 := ref.rdb.ExpireTime(ctx, ref.keys.seen(user, day)).Result()
				if err := errors.Join(err1, err2); err != nil || got <= 0 || (got-want).Abs() > time.Minute {
					t.Fatalf("seen set of %v on %s expires at %v, want %v (%v)", user, day, got, want, err)
				}
				break
			}

			// After the swap the live projection goes on: a redelivery of an
			// incentive the shadow holds (recent, the live projection had not
			// consumed it) counts nothing; one the shadow does not hold counts.
			before := f.dump(f.live, all...)
			redelivered := 0
			for _, inc := range incs[150:] {
				if inc.IssuedAt.After(now.Add(-2 * 24 * time.Hour)) {
					if f.apply(f.live, inc) {
						t.Fatalf("incentive %s the shadow holds counted again", inc.IncentiveID)
					}
					redelivered++
				}
			}
			if redelivered == 0 {
				t.Fatal("no recent incentive to redeliver")
			}
			sameTotals(t, f.dump(f.live, all...), before)
			// The live seen sets stay (merged with the shadow's): what the
			// live projection applied, even where the event store has
			// nothing of it (ghost, extra: which cannot happen), counts
			// nothing again.
			for _, inc := range []incentive.Issued{ghost, extra} {
				if f.apply(f.live, inc) {
					t.Fatalf("incentive %s the live projection had applied counted again", inc.IncentiveID)
				}
			}
			sameTotals(t, f.dump(f.live, all...), before)
			fresh := reward(shadowOnly, "user-1", uuid.New(), rules.RewardCoupon, "COUPON", "1", now)
			for _, inc := range []incentive.Issued{fresh} {
				if !f.apply(f.live, inc) {
					t.Fatalf("incentive %s the shadow does not hold was not counted", inc.IncentiveID)
				}
				if err := rb.Totals.Add(inc); err != nil {
					t.Fatal(err)
				}
			}
			sameTotals(t, f.dump(f.live, all...), rb.Totals)
		})
	}
}

func sortedTenants(ids ...uuid.UUID) []uuid.UUID {
	out := slices.Clone(ids)
	slices.SortFunc(out, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
	return out
}

func TestUserRewardsFencedApplyRefusesAndChangesNothing(t *testing.T) {
	t.Parallel()
	f := mustReplay(t)
	ctx := context.Background()
	acme, other := uuid.New(), uuid.New()
	now := recent()
	first := reward(acme, "u1", uuid.New(), rules.RewardCashback, "INR", "10", now)
	f.apply(f.live, first)
	before := f.dump(f.live, acme)
	cps, err := f.live.Checkpoints(ctx, acme)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.r.Fence(ctx, []uuid.UUID{acme}); err != nil {
		t.Fatal(err)
	}
	next := reward(acme, "u1", uuid.New(), rules.RewardCashback, "INR", "5", now)
	for _, inc := range []incentive.Issued{next, first} { // new, and a redelivery
		applied, err := f.live.ApplyIncentive(ctx, checkpoint(0, 9, 9), inc)
		if applied || !errors.Is(err, ErrFenced) || errors.Is(err, projections.ErrUnprojectable) {
			t.Fatalf("fenced ApplyIncentive = %v, %v, want ErrFenced (and not ErrUnprojectable)", applied, err)
		}
	}
	sameTotals(t, f.dump(f.live, acme), before)
	if got, err := f.live.Checkpoints(ctx, acme); err != nil || !reflect.DeepEqual(got, cps) {
		t.Fatalf("a fenced delivery moved the checkpoint: %v, %v, want %v", got, err, cps)
	}
	seen := f.live.keys.seen(projections.UserKey{TenantID: acme, UserID: "u1"}, projections.UserRewardsDay(now))
	if member, err := f.live.rdb.SIsMember(ctx, seen, next.IncentiveID.String()).Result(); err != nil || member {
		t.Fatalf("a fenced delivery is remembered (%v)", err)
	}
	// Other tenants are not fenced.
	if !f.apply(f.live, reward(other, "u1", uuid.New(), rules.RewardPoints, "POINTS", "1", now)) {
		t.Fatal("another tenant's delivery was not applied")
	}
	if err := f.r.Unfence(ctx, []uuid.UUID{acme}); err != nil {
		t.Fatal(err)
	}
	if !f.apply(f.live, next) {
		t.Fatal("not applied once unfenced")
	}

	// A fence is a lease: it lapses, and Swap then refuses, changing nothing.
	f.r.FenceLease = 300 * time.Millisecond
	if err := f.r.Fence(ctx, []uuid.UUID{acme}); err != nil {
		t.Fatal(err)
	}
	late := reward(acme, "u1", uuid.New(), rules.RewardPoints, "POINTS", "2", now)
	if _, err := f.live.ApplyIncentive(ctx, checkpoint(0, 10, 10), late); !errors.Is(err, ErrFenced) {
		t.Fatalf("ApplyIncentive = %v, want ErrFenced", err)
	}
	time.Sleep(400 * time.Millisecond)
	if !f.apply(f.live, late) {
		t.Fatal("not applied once the lease ran out")
	}
	rb := f.fold([]incentive.Issued{first}, 1)
	before = f.dump(f.live, acme)
	if err := f.r.Swap(ctx, []uuid.UUID{acme}); !errors.Is(err, ErrNotFenced) {
		t.Fatalf("Swap of a tenant whose fence lapsed = %v, want ErrNotFenced", err)
	}
	sameTotals(t, f.dump(f.live, acme), before)
	shadow, err := f.r.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sameTotals(t, shadow, rb.Totals)
}

func TestUserRewardsReplayLoadReturnsWhatWriteWrote(t *testing.T) {
	t.Parallel()
	f := mustReplay(t)
	ctx := context.Background()
	acme, other := uuid.New(), uuid.New()
	now := recent()
	incs := randomIncentives(rand.New(rand.NewPCG(5, 8)), 120, []uuid.UUID{acme, other}, now)
	f.r.Batch = 7 // several round trips
	rb := f.fold(incs, 25)
	got, err := f.r.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sameTotals(t, got, rb.Totals)

	// A Write replaces a user's hash: fields the new view lacks go.
	u := projections.UserKey{TenantID: acme, UserID: "user-0"}
	campaign := uuid.New()
	v := projections.UserRewardsView{
		Rewards:      map[projections.RewardKey]projections.RewardTotal{{Type: rules.RewardPoints, Currency: "POINTS"}: {Count: 2, Units: 7}},
		Campaigns:    map[uuid.UUID]int64{campaign: 2},
		LastIssuedAt: now,
	}
	if err := f.r.Write(ctx, map[projections.UserKey]projections.UserRewardsView{u: v}, nil); err != nil {
		t.Fatal(err)
	}
	rb.Totals[u] = v
	got, err = f.r.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sameTotals(t, got, rb.Totals)

	// Resuming: the loaded users and the rest of the events give the whole fold.
	resumed := projections.NewUserRewardsRebuild()
	for k, v := range got {
		resumed.LoadUser(k, v)
	}
	if !reflect.DeepEqual(resumed.Totals.Lines(), rb.Totals.Lines()) {
		t.Fatal("LoadUser did not restore the totals")
	}

	if err := f.r.Write(ctx, map[projections.UserKey]projections.UserRewardsView{u: v}, projections.UserRewardsSeen{{User: u, Day: "2024-03-10"}: {uuid.New()}}); err == nil {
		t.Fatal("Write accepted a day that is not yyyymmdd")
	}

	// A Write that did not finish tears the shadow, until DropShadow.
	if err := f.live.rdb.Set(ctx, f.r.writing(), "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.r.Load(ctx); !errors.Is(err, ErrShadowTorn) {
		t.Fatalf("Load of a torn shadow = %v, want ErrShadowTorn", err)
	}
	if err := f.r.Swap(ctx, []uuid.UUID{acme}); !errors.Is(err, ErrShadowTorn) {
		t.Fatalf("Swap of a torn shadow = %v, want ErrShadowTorn", err)
	}
	if err := f.r.Write(ctx, map[projections.UserKey]projections.UserRewardsView{u: v}, nil); !errors.Is(err, ErrShadowTorn) {
		t.Fatalf("Write to a torn shadow = %v, want ErrShadowTorn", err)
	}
	if err := f.r.DropShadow(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.r.Write(ctx, map[projections.UserKey]projections.UserRewardsView{u: v}, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := f.r.Load(ctx); err != nil || !reflect.DeepEqual(got, map[projections.UserKey]projections.UserRewardsView{u: v}) {
		t.Fatalf("Load after starting over = %v, %v", got, err)
	}
}

func TestUserRewardsReplayDropShadowLeavesNoShadowKeys(t *testing.T) {
	t.Parallel()
	f := mustReplay(t)
	ctx := context.Background()
	acme := uuid.New()
	now := recent()
	live := reward(acme, "u1", uuid.New(), rules.RewardPoints, "POINTS", "1", now)
	f.apply(f.live, live)
	before := f.dump(f.live, acme)
	f.fold(randomIncentives(rand.New(rand.NewPCG(1, 1)), 30, []uuid.UUID{acme, uuid.New()}, now), 10)
	if len(f.keys(f.prefix+"~replay*")) == 0 {
		t.Fatal("Write wrote no shadow key")
	}
	if err := f.r.DropShadow(ctx); err != nil {
		t.Fatal(err)
	}
	if left := f.keys(f.prefix + "~replay*"); len(left) != 0 {
		t.Fatalf("DropShadow left %v", left)
	}
	if got, err := f.r.Load(ctx); err != nil || len(got) != 0 {
		t.Fatalf("Load after DropShadow = %v, %v", got, err)
	}
	sameTotals(t, f.dump(f.live, acme), before)
	if tenants, err := f.r.Tenants(ctx); err != nil || !reflect.DeepEqual(tenants, []uuid.UUID{acme}) {
		t.Fatalf("Tenants after DropShadow = %v, %v, want the live one", tenants, err)
	}
}

func TestUserRewardsReplayKeysShareTheLiveSlot(t *testing.T) {
	r := NewUserRewardsReplay(MustClient(t))
	u := projections.UserKey{TenantID: uuid.New(), UserID: "u1"}
	if r.live.user(u) != "uagg:{"+u.TenantID.String()+"}:u:u1" || r.shadow.user(u) != "uagg~replay:{"+u.TenantID.String()+"}:u:u1" {
		t.Fatalf("keys %s, %s", r.live.user(u), r.shadow.user(u))
	}
	if r.pattern() != "uagg*" || r.registry() != "uagg~replay:tenants" {
		t.Fatalf("pattern %s, registry %s", r.pattern(), r.registry())
	}
	for key, ok := range map[string]bool{
		r.shadow.seen(u, "20240310"):                      true,
		r.live.checkpoint(u.TenantID):                     true,
		"uagg:{zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz}:u:x": false,
		"uagg~replay:tenants":                             false,
	} {
		tenant, _, parsed := r.shadow.parse(key)
		if !parsed {
			tenant, _, parsed = r.live.parse(key)
		}
		if parsed != ok || (ok && tenant != u.TenantID) {
			t.Errorf("parse(%s) = %s, %v", key, tenant, parsed)
		}
	}
}

// An incentive may be delivered long after its day (issuedAt is the
// action's time): the live store then remembers it SeenFloor from its
// delivery only. A swap must not forget such ids, whether the live
// projection had applied the incentive (its seen set is kept, merged with
// the shadow's) or not yet (the fold remembers it too).
func TestUserRewardsReplaySwapRemembersLateIncentives(t *testing.T) {
	t.Parallel()
	f := mustReplay(t)
	ctx := context.Background()
	acme, campaign := uuid.New(), uuid.New()
	now := recent()
	late := now.AddDate(0, 0, -10)
	// queued: recorded just now; the live projection (fenced) has not
	// applied it yet. applied: recorded two days ago; the live projection,
	// lagging, applied it just now: only the floor remembers it. alone: as
	// applied, on a day the fold remembers nothing of. today: recent.
	queued := reward(acme, "u1", campaign, rules.RewardCashback, "INR", "10", late)
	applied := reward(acme, "u1", campaign, rules.RewardCashback, "INR", "20", late.Add(time.Hour))
	alone := reward(acme, "u1", campaign, rules.RewardCashback, "INR", "40", late.AddDate(0, 0, -1))
	today := reward(acme, "u1", campaign, rules.RewardCashback, "INR", "80", now)
	for _, inc := range []incentive.Issued{applied, alone, today} {
		f.apply(f.live, inc)
	}
	user := projections.UserKey{TenantID: acme, UserID: "u1"}
	liveExpiry := map[string]time.Duration{}
	for _, inc := range []incentive.Issued{applied, alone} {
		day := projections.UserRewardsDay(inc.IssuedAt)
		at, err := f.live.rdb.ExpireTime(ctx, f.live.keys.seen(user, day)).Result()
		if err != nil || at <= 0 {
			t.Fatalf("live seen set of %s expires at %v (%v)", day, at, err)
		}
		liveExpiry[day] = at
	}

	rb := projections.NewUserRewardsRebuild()
	for _, x := range []struct {
		inc incentive.Issued
		at  time.Time
	}{{applied, now.Add(-48 * time.Hour)}, {alone, now.Add(-48 * time.Hour)}, {today, now}, {queued, now}} {
		rec := domain.RecordedEvent{Stream: incentive.Stream(x.inc.IncentiveID), Version: 1, Event: x.inc, RecordedAt: x.at}
		if err := rb.Apply(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.r.Write(ctx, rb.TakeDirty(), rb.TakeSeen()); err != nil {
		t.Fatal(err)
	}
	if err := f.r.Fence(ctx, []uuid.UUID{acme}); err != nil {
		t.Fatal(err)
	}
	if err := f.r.Swap(ctx, []uuid.UUID{acme}); err != nil {
		t.Fatalf("Swap: %v", err)
	}
	sameTotals(t, f.dump(f.live, acme), rb.Totals)
	// The live sets live on, at least as long as they would have.
	for day, want := range liveExpiry {
		got, err := f.live.rdb.ExpireTime(ctx, f.live.keys.seen(user, day)).Result()
		if err != nil || got < want {
			t.Fatalf("seen set of %s expires at %v after the swap, want at least %v (%v)", day, got, want, err)
		}
	}
	// The queued incentive is delivered, the others redelivered: nothing
	// counts again.
	for _, inc := range []incentive.Issued{queued, applied, alone, today} {
		if f.apply(f.live, inc) {
			t.Errorf("incentive of %s (%s) counted again after the swap", inc.IssuedAt.Format(time.DateOnly), inc.RewardAmount)
		}
	}
	sameTotals(t, f.dump(f.live, acme), rb.Totals)
}

// A tenant swapped in several scripts keeps each user's hash and seen sets
// in one script: a swap that fails midway leaves every user either wholly
// swapped or wholly live, and the tenant fenced; once the lease runs out
// the live projection delivers everything and counts each incentive once.
func TestUserRewardsReplayFailedChunkedSwapKeepsEachUserWhole(t *testing.T) {
	t.Parallel()
	f := mustReplay(t)
	f.r.MaxSwapKeys = 6
	ctx := context.Background()
	acme, campaign := uuid.New(), uuid.New()
	now := recent()
	// Recent incentives only (both copies remember them), over three days.
	var incs []incentive.Issued
	for i := range 60 {
		incs = append(incs, reward(acme, fmt.Sprintf("user-%d", i%5), campaign, rules.RewardPoints, "POINTS",
			fmt.Sprint(i+1), now.Add(-time.Duration(i)*time.Hour)))
	}
	for i, inc := range incs {
		if i%2 == 0 {
			f.apply(f.live, inc)
		}
	}
	rb := f.fold(incs, 25)
	if err := f.r.Fence(ctx, []uuid.UUID{acme}); err != nil {
		t.Fatal(err)
	}
	lost := errors.New("connection lost")
	f.r.beforeChunk = func(_ uuid.UUID, chunk int) error {
		if chunk == 2 {
			return lost
		}
		return nil
	}
	if err := f.r.Swap(ctx, []uuid.UUID{acme}); !errors.Is(err, lost) {
		t.Fatalf("Swap = %v, want it to fail midway", err)
	}
	if fenced, err := f.live.rdb.HExists(ctx, f.live.keys.checkpoint(acme), fenceField).Result(); err != nil || !fenced {
		t.Fatalf("a tenant swapped partly is not left fenced (%v)", err)
	}
	// The lease runs out; the live projection delivers every incentive
	// (those it had not consumed, and redeliveries).
	if err := f.r.Unfence(ctx, []uuid.UUID{acme}); err != nil {
		t.Fatal(err)
	}
	for _, inc := range incs {
		f.apply(f.live, inc)
	}
	sameTotals(t, f.dump(f.live, acme), rb.Totals)
}
