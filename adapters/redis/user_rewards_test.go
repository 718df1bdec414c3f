package redis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/incentives-platform/incentives/domain/incentive"
	"github.com/incentives-platform/incentives/domain/rules"
	"github.com/incentives-platform/incentives/projections"
)

// Each test writes under its own random tenants, so its keys
// (uagg:{<tenant>}:...) are its own: tests run in parallel with each other
// and with other packages on the same Redis, and each deletes its keys when
// it ends.

const incentiveTopic = "ic.domain.incentive"

type userRewardsFixture struct {
	t *testing.T
	u *UserRewards
}

func mustUserRewards(t *testing.T) *userRewardsFixture {
	t.Helper()
	return &userRewardsFixture{t: t, u: NewUserRewards(MustClient(t))}
}

// tenant returns a new tenant id whose keys are deleted when the test ends.
func (f *userRewardsFixture) tenant() uuid.UUID {
	id := uuid.New()
	f.t.Cleanup(func() {
		if _, err := f.u.ForgetTenant(context.Background(), id); err != nil {
			f.t.Errorf("forget tenant: %v", err)
		}
	})
	return id
}

func (f *userRewardsFixture) apply(cp projections.Checkpoint, inc incentive.Issued) bool {
	f.t.Helper()
	applied, err := f.u.ApplyIncentive(context.Background(), cp, inc)
	if err != nil {
		f.t.Fatalf("ApplyIncentive(%s): %v", inc.IncentiveID, err)
	}
	return applied
}

func (f *userRewardsFixture) dump(tenants ...uuid.UUID) projections.UserRewardTotals {
	f.t.Helper()
	got, err := f.u.Dump(context.Background(), tenants...)
	if err != nil {
		f.t.Fatalf("Dump: %v", err)
	}
	return got
}

// sameTotals fails the test when got and want differ, showing the lines
// that differ.
func sameTotals(t *testing.T, got, want projections.UserRewardTotals) {
	t.Helper()
	g, w := got.Lines(), want.Lines()
	if reflect.DeepEqual(g, w) {
		return
	}
	in := func(lines []string) map[string]bool {
		m := map[string]bool{}
		for _, l := range lines {
			m[l] = true
		}
		return m
	}
	gs, ws := in(g), in(w)
	var diff []string
	for _, l := range g {
		if !ws[l] {
			diff = append(diff, "+ "+l)
		}
	}
	for _, l := range w {
		if !gs[l] {
			diff = append(diff, "- "+l)
		}
	}
	t.Fatalf("Redis (+) and the fold (-) differ:\n%s", strings.Join(diff, "\n"))
}

func reward(tenant uuid.UUID, user string, campaign uuid.UUID, typ rules.RewardType, currency, amount string, at time.Time) incentive.Issued {
	return incentive.Issued{IncentiveID: uuid.New(), DecisionID: uuid.New(), TenantID: tenant, CampaignID: campaign, CampaignVersion: 1,
		UserID: user, SourceEventID: uuid.New(), RewardType: typ, RewardCurrency: currency,
		RewardAmount: decimal.RequireFromString(amount), IssuedAt: at}
}

func checkpoint(partition int32, offset, position int64) projections.Checkpoint {
	return projections.Checkpoint{Projection: projections.UserRewardsName, Topic: incentiveTopic, Partition: partition, Offset: offset, Position: position}
}

// recent is a millisecond instant of today, as the engine issues.
func recent() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

func TestUserRewardsApplyAggregatesExactly(t *testing.T) {
	t.Parallel()
	f := mustUserRewards(t)
	tenant := f.tenant()
	cashback, quest := uuid.New(), uuid.New()
	now := recent()
	incs := []incentive.Issued{
		reward(tenant, "u1", cashback, rules.RewardCashback, "INR", "12.3456", now.Add(-time.Hour)),
		reward(tenant, "u1", cashback, rules.RewardCashback, "INR", "0.0001", now),
		reward(tenant, "u1", cashback, rules.RewardCashback, "INR", "99999999.9999", now.Add(-time.Minute)),
		reward(tenant, "u1", quest, rules.RewardPoints, "POINTS", "500", now.Add(-48*time.Hour)),
	}
	want := projections.UserRewardTotals{}
	for i, inc := range incs {
		if !f.apply(checkpoint(1, int64(10+i), int64(100+i)), inc) {
			t.Fatalf("incentive %d not applied", i)
		}
		if err := want.Add(inc); err != nil {
			t.Fatal(err)
		}
	}
	got, ok, err := f.u.Load(context.Background(), tenant, "u1")
	if err != nil || !ok {
		t.Fatalf("Load = %v, %v", ok, err)
	}
	wantU1 := projections.UserRewardsView{
		Rewards: map[projections.RewardKey]projections.RewardTotal{
			{Type: rules.RewardCashback, Currency: "INR"}:  {Count: 3, Units: 1_000_000_123_456},
			{Type: rules.RewardPoints, Currency: "POINTS"}: {Count: 1, Units: 5_000_000},
		},
		Campaigns:    map[uuid.UUID]int64{cashback: 3, quest: 1},
		LastIssuedAt: now,
	}
	if !reflect.DeepEqual(got, wantU1) {
		t.Fatalf("Load = %+v, want %+v", got, wantU1)
	}
	if a := got.Rewards[projections.RewardKey{Type: rules.RewardCashback, Currency: "INR"}].Amount(); a.String() != "100000012.3456" {
		t.Fatalf("INR sum = %s, want 100000012.3456", a)
	}
	sameTotals(t, f.dump(tenant), want)
	if _, ok, err := f.u.Load(context.Background(), tenant, "nobody"); ok || err != nil {
		t.Fatalf("Load of a user without rewards = %v, %v", ok, err)
	}
	cps, err := f.u.Checkpoints(context.Background(), tenant)
	if err != nil || !reflect.DeepEqual(cps, []projections.Checkpoint{checkpoint(1, 13, 103)}) {
		t.Fatalf("Checkpoints = %+v, %v", cps, err)
	}
}

func TestUserRewardsRedeliveryAppliesOnceButMovesTheCheckpoint(t *testing.T) {
	t.Parallel()
	f := mustUserRewards(t)
	tenant := f.tenant()
	ctx := context.Background()
	inc := reward(tenant, "u1", uuid.New(), rules.RewardCashback, "INR", "50", recent())
	if !f.apply(checkpoint(0, 5, 50), inc) {
		t.Fatal("first delivery not applied")
	}
	before := f.dump(tenant)
	// The same delivery again, then a later one of the same event (a relay
	// retry publishes it at a new offset).
	if f.apply(checkpoint(0, 5, 50), inc) || f.apply(checkpoint(0, 9, 50), inc) {
		t.Fatal("a redelivery was applied")
	}
	sameTotals(t, f.dump(tenant), before)
	if cps, err := f.u.Checkpoints(ctx, tenant); err != nil || !reflect.DeepEqual(cps, []projections.Checkpoint{checkpoint(0, 9, 50)}) {
		t.Fatalf("Checkpoints = %+v, %v", cps, err)
	}
	// Other partitions have their own checkpoint.
	f.apply(checkpoint(3, 1, 60), reward(tenant, "u2", uuid.New(), rules.RewardPoints, "POINTS", "1", recent()))
	if cps, err := f.u.Checkpoints(ctx, tenant); err != nil || !reflect.DeepEqual(cps, []projections.Checkpoint{checkpoint(0, 9, 50), checkpoint(3, 1, 60)}) {
		t.Fatalf("Checkpoints = %+v, %v", cps, err)
	}
}

func TestUserRewardsRememberIncentivesForTheirHorizon(t *testing.T) {
	t.Parallel()
	f := mustUserRewards(t)
	tenant := f.tenant()
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		at   time.Time
		// want is the expiry of the incentive's day set, within a minute.
		want time.Time
	}{
		{"today: 8 days after today ends", recent(), time.Now().UTC().Truncate(24 * time.Hour).Add(24*time.Hour + SeenHorizon)},
		{"a month ago: SeenFloor after delivery", recent().AddDate(0, -1, 0), time.Now().Add(SeenFloor)},
	} {
		inc := reward(tenant, "u1", uuid.New(), rules.RewardCoupon, "COUPON", "1", tt.at)
		f.apply(checkpoint(0, 1, 1), inc)
		key := f.u.keys.seen(projections.UserKey{TenantID: tenant, UserID: "u1"}, tt.at.Format("20060102"))
		expiry, err := f.u.rdb.ExpireTime(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got := time.Unix(int64(expiry/time.Second), 0); got.Sub(tt.want).Abs() > time.Minute {
			t.Errorf("%s: %s expires at %s, want %s", tt.name, key, got.UTC(), tt.want.UTC())
		}
		if member, err := f.u.rdb.SIsMember(ctx, key, inc.IncentiveID.String()).Result(); err != nil || !member {
			t.Errorf("%s: %s does not hold the incentive: %v", tt.name, key, err)
		}
		if f.apply(checkpoint(0, 2, 2), inc) {
			t.Errorf("%s: redelivery applied", tt.name)
		}
	}
}

func TestUserRewardsKeepUsersTenantsAndPrefixesApart(t *testing.T) {
	t.Parallel()
	f := mustUserRewards(t)
	acme, other := f.tenant(), f.tenant()
	campaign := uuid.New()
	now := recent()
	// User ids that would name another kind of key in a layout with the
	// user id first.
	users := []string{"u1", "checkpoint", "u1:seen:" + now.Format("20060102"), "{braces}", "*", ""}
	wantAcme, wantOther := projections.UserRewardTotals{}, projections.UserRewardTotals{}
	for i, user := range users[:len(users)-1] {
		a := reward(acme, user, campaign, rules.RewardPoints, "POINTS", fmt.Sprint(i+1), now)
		o := reward(other, user, campaign, rules.RewardPoints, "POINTS", fmt.Sprint(100*(i+1)), now)
		f.apply(checkpoint(0, int64(i), int64(i)), a)
		f.apply(checkpoint(0, int64(i), int64(i)), o)
		if err := errors.Join(wantAcme.Add(a), wantOther.Add(o)); err != nil {
			t.Fatal(err)
		}
	}
	sameTotals(t, f.dump(acme), wantAcme)
	sameTotals(t, f.dump(other), wantOther)
	if _, err := f.u.ApplyIncentive(context.Background(), checkpoint(0, 1, 1), reward(acme, "", campaign, rules.RewardPoints, "POINTS", "1", now)); !errors.Is(err, projections.ErrUnprojectable) {
		t.Fatalf("a user without an id: %v, want ErrUnprojectable", err)
	}

	// Another prefix is another copy of the read model, in the same slot.
	shadow := newUserRewards(MustClient(t), "uagg~test")
	t.Cleanup(func() {
		if _, err := shadow.ForgetTenant(context.Background(), acme); err != nil {
			t.Errorf("forget shadow: %v", err)
		}
	})
	inc := reward(acme, "u1", campaign, rules.RewardCashback, "INR", "7", now)
	if applied, err := shadow.ApplyIncentive(context.Background(), checkpoint(0, 1, 1), inc); err != nil || !applied {
		t.Fatalf("shadow ApplyIncentive = %v, %v", applied, err)
	}
	sameTotals(t, f.dump(acme), wantAcme)
	got, err := shadow.Dump(context.Background(), acme)
	if err != nil {
		t.Fatal(err)
	}
	wantShadow := projections.UserRewardTotals{}
	if err := wantShadow.Add(inc); err != nil {
		t.Fatal(err)
	}
	sameTotals(t, got, wantShadow)
	if !strings.HasPrefix(shadow.keys.user(projections.UserKey{TenantID: acme, UserID: "u1"}), "uagg~test:{"+acme.String()+"}:") {
		t.Fatal("the shadow key does not share the live key's hash tag")
	}
}

func TestUserRewardsConcurrentAppliesSumExactly(t *testing.T) {
	t.Parallel()
	f := mustUserRewards(t)
	tenant := f.tenant()
	campaign := uuid.New()
	const workers, each = 32, 25
	now := recent()
	incs := make([]incentive.Issued, workers*each)
	want := projections.UserRewardTotals{}
	for i := range incs {
		amount := decimal.New(int64(i*7919%100_000+1), -4) // 0.0001 .. 10.0000, four decimals
		incs[i] = reward(tenant, "u1", campaign, rules.RewardCashback, "INR", amount.String(), now.Add(-time.Duration(i)*time.Second))
		if err := want.Add(incs[i]); err != nil {
			t.Fatal(err)
		}
	}
	// Every incentive is delivered twice, by two workers at once.
	var applied sync.Map
	var wg sync.WaitGroup
	errs := make(chan error, 2*workers)
	for w := range 2 * workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			part := w % workers
			for i := part * each; i < (part+1)*each; i++ {
				ok, err := f.u.ApplyIncentive(context.Background(), checkpoint(int32(w%4), int64(i), int64(i)), incs[i])
				if err != nil {
					errs <- err
					return
				}
				if ok {
					if _, dup := applied.LoadOrStore(i, true); dup {
						errs <- fmt.Errorf("incentive %d applied twice", i)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	n := 0
	applied.Range(func(any, any) bool { n++; return true })
	if n != len(incs) {
		t.Fatalf("%d incentives applied, want %d", n, len(incs))
	}
	sameTotals(t, f.dump(tenant), want)
}

func TestUserRewardsEqualTheFoldInAnyOrderAndUnderRedelivery(t *testing.T) {
	t.Parallel()
	f := mustUserRewards(t)
	tenants := []uuid.UUID{f.tenant(), f.tenant()}
	campaigns := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	types := []struct {
		typ      rules.RewardType
		currency string
	}{{rules.RewardCashback, "INR"}, {rules.RewardCashback, "USD"}, {rules.RewardPoints, "POINTS"}, {rules.RewardCoupon, "COUPON"}}
	r := rand.New(rand.NewPCG(7, 11))
	now := recent()
	incs := make([]incentive.Issued, 300)
	fold := projections.UserRewardTotals{}
	for i := range incs {
		ty := types[r.IntN(len(types))]
		incs[i] = reward(tenants[r.IntN(2)], fmt.Sprintf("user-%d", r.IntN(7)), campaigns[r.IntN(3)], ty.typ, ty.currency,
			decimal.New(r.Int64N(10_000_000), -int32(r.IntN(5))).String(), now.Add(-time.Duration(r.IntN(10*24*3600))*time.Second))
		if err := fold.Add(incs[i]); err != nil {
			t.Fatal(err)
		}
	}
	// Deliver in another order, a third of them twice and some of those
	// far apart.
	deliveries := append([]incentive.Issued{}, incs...)
	for _, i := range r.Perm(len(incs))[:len(incs)/3] {
		deliveries = append(deliveries, incs[i])
	}
	r.Shuffle(len(deliveries), func(i, j int) { deliveries[i], deliveries[j] = deliveries[j], deliveries[i] })
	applied := 0
	for i, inc := range deliveries {
		if f.apply(checkpoint(int32(i%4), int64(i), int64(i)), inc) {
			applied++
		}
	}
	if applied != len(incs) {
		t.Fatalf("%d deliveries applied, want %d", applied, len(incs))
	}
	sameTotals(t, f.dump(tenants...), fold)
}

func TestUserRewardsRefuseWhatTheyCannotHoldAndWriteNothing(t *testing.T) {
	t.Parallel()
	f := mustUserRewards(t)
	tenant := f.tenant()
	ctx := context.Background()
	campaign := uuid.New()
	fold := projections.UserRewardTotals{}
	big := reward(tenant, "u1", campaign, rules.RewardCashback, "INR", "922337203685477.5807", recent())
	if !f.apply(checkpoint(0, 1, 1), big) {
		t.Fatal("not applied")
	}
	if err := fold.Add(big); err != nil {
		t.Fatal(err)
	}
	before := f.dump(tenant)
	for _, amount := range []string{"0.00001", "1e20", "0.0001"} { // five decimals, past int64 units, a sum past int64
		inc := reward(tenant, "u1", campaign, rules.RewardCashback, "INR", amount, recent().Add(time.Hour))
		applied, err := f.u.ApplyIncentive(ctx, checkpoint(0, 2, 2), inc)
		if applied || !errors.Is(err, projections.ErrUnprojectable) {
			t.Fatalf("amount %s: ApplyIncentive = %v, %v, want ErrUnprojectable", amount, applied, err)
		}
		if err := fold.Add(inc); !errors.Is(err, projections.ErrUnprojectable) {
			t.Fatalf("amount %s: the fold's Add = %v, want ErrUnprojectable", amount, err)
		}
		sameTotals(t, f.dump(tenant), before)
		sameTotals(t, f.dump(tenant), fold)
		key := f.u.keys.seen(projections.UserKey{TenantID: tenant, UserID: "u1"}, inc.IssuedAt.UTC().Format("20060102"))
		if member, err := f.u.rdb.SIsMember(ctx, key, inc.IncentiveID.String()).Result(); err != nil || member {
			t.Fatalf("amount %s: a refused incentive is remembered as applied (%v)", amount, err)
		}
	}
	if cps, err := f.u.Checkpoints(ctx, tenant); err != nil || !reflect.DeepEqual(cps, []projections.Checkpoint{checkpoint(0, 1, 1)}) {
		t.Fatalf("a refused delivery moved the checkpoint: %+v, %v", cps, err)
	}
}

func TestUserRewardsForgetTenantLeavesOthers(t *testing.T) {
	t.Parallel()
	f := mustUserRewards(t)
	gone, kept := f.tenant(), f.tenant()
	ctx := context.Background()
	for _, tenant := range []uuid.UUID{gone, kept} {
		f.apply(checkpoint(0, 1, 1), reward(tenant, "u1", uuid.New(), rules.RewardPoints, "POINTS", "1", recent()))
	}
	// The user's hash, its day's set and the checkpoint.
	if n, err := f.u.ForgetTenant(ctx, gone); err != nil || n != 3 {
		t.Fatalf("ForgetTenant = %d, %v, want 3", n, err)
	}
	if got := f.dump(gone); len(got) != 0 {
		t.Fatalf("forgotten tenant still has %v", got)
	}
	if got := f.dump(kept); len(got) != 1 {
		t.Fatalf("the other tenant has %v", got)
	}
}
