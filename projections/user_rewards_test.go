package projections_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/incentive"
	"github.com/incentives-platform/incentives/domain/rules"
	"github.com/incentives-platform/incentives/domain/tenant"
	"github.com/incentives-platform/incentives/projections"
)

func TestRewardUnits(t *testing.T) {
	tests := []struct {
		amount string
		want   int64
		bad    bool
	}{
		{"0", 0, false},
		{"12.5", 125_000, false},
		{"0.0001", 1, false},
		{"100.10000", 1_001_000, false},
		{"-3.25", -32_500, false},
		{"922337203685477.5807", math.MaxInt64, false},
		{"-922337203685477.5808", math.MinInt64, false},
		{"1.00005", 0, true},
		{"0.00001", 0, true},
		{"922337203685477.5808", 0, true},
		{"1e30", 0, true},
	}
	for _, tt := range tests {
		got, err := projections.RewardUnits(decimal.RequireFromString(tt.amount))
		if tt.bad {
			if !errors.Is(err, projections.ErrUnprojectable) {
				t.Errorf("RewardUnits(%s) = %d, %v, want ErrUnprojectable", tt.amount, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("RewardUnits(%s) = %d, %v, want %d", tt.amount, got, err, tt.want)
		}
	}
}

// urAt is a fixed instant for the user-aggregation tests.
var urAt = time.Date(2024, 3, 10, 18, 0, 0, 0, time.UTC)

func userReward(tenantID uuid.UUID, user string, campaignID uuid.UUID, typ rules.RewardType, currency, amount string, at time.Time) incentive.Issued {
	return incentive.Issued{IncentiveID: uuid.New(), DecisionID: uuid.New(), TenantID: tenantID, CampaignID: campaignID, CampaignVersion: 1,
		UserID: user, SourceEventID: uuid.New(), RewardType: typ, RewardCurrency: currency,
		RewardAmount: decimal.RequireFromString(amount), IssuedAt: at}
}

func TestUserRewardTotalsAdd(t *testing.T) {
	acme, other := uuid.New(), uuid.New()
	cashback, quest := uuid.New(), uuid.New()
	incs := []incentive.Issued{
		userReward(acme, "u1", cashback, rules.RewardCashback, "INR", "12.5", urAt),
		userReward(acme, "u1", cashback, rules.RewardCashback, "INR", "0.0001", urAt.Add(-time.Hour)),
		userReward(acme, "u1", quest, rules.RewardPoints, "POINTS", "500", urAt.Add(1500*time.Microsecond)), // latest, to the ms
		userReward(acme, "u1", cashback, rules.RewardCashback, "USD", "100", urAt.Add(-48*time.Hour)),
		userReward(acme, "u2", cashback, rules.RewardCashback, "INR", "50", urAt),
		userReward(other, "u1", quest, rules.RewardCoupon, "COUPON", "1", urAt.Add(-time.Minute)),
	}
	want := projections.UserRewardTotals{
		{TenantID: acme, UserID: "u1"}: {
			Rewards: map[projections.RewardKey]projections.RewardTotal{
				{Type: rules.RewardCashback, Currency: "INR"}:  {Count: 2, Units: 125_001},
				{Type: rules.RewardCashback, Currency: "USD"}:  {Count: 1, Units: 1_000_000},
				{Type: rules.RewardPoints, Currency: "POINTS"}: {Count: 1, Units: 5_000_000},
			},
			Campaigns:    map[uuid.UUID]int64{cashback: 3, quest: 1},
			LastIssuedAt: urAt.Add(time.Millisecond),
		},
		{TenantID: acme, UserID: "u2"}: {
			Rewards:      map[projections.RewardKey]projections.RewardTotal{{Type: rules.RewardCashback, Currency: "INR"}: {Count: 1, Units: 500_000}},
			Campaigns:    map[uuid.UUID]int64{cashback: 1},
			LastIssuedAt: urAt,
		},
		{TenantID: other, UserID: "u1"}: {
			Rewards:      map[projections.RewardKey]projections.RewardTotal{{Type: rules.RewardCoupon, Currency: "COUPON"}: {Count: 1, Units: 10_000}},
			Campaigns:    map[uuid.UUID]int64{quest: 1},
			LastIssuedAt: urAt.Add(-time.Minute),
		},
	}
	// Any order gives the same totals: sums and counts commute, and the
	// last issue time is a maximum, not the last delivered.
	r := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		r.Shuffle(len(incs), func(i, j int) { incs[i], incs[j] = incs[j], incs[i] })
		got := projections.UserRewardTotals{}
		for _, inc := range incs {
			if err := got.Add(inc); err != nil {
				t.Fatalf("Add(%+v): %v", inc, err)
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("totals = %+v\nwant %+v", got, want)
		}
		if !reflect.DeepEqual(got.Lines(), want.Lines()) {
			t.Fatalf("Lines differ for equal totals:\n%s\nwant\n%s", strings.Join(got.Lines(), "\n"), strings.Join(want.Lines(), "\n"))
		}
	}
	if got := want[projections.UserKey{TenantID: acme, UserID: "u1"}].Rewards[projections.RewardKey{Type: rules.RewardCashback, Currency: "INR"}].Amount(); got.String() != "12.5001" {
		t.Errorf("Amount() = %s, want 12.5001", got)
	}
}

func TestUserRewardTotalsRefuseWhatTheyCannotHold(t *testing.T) {
	acme, campaign := uuid.New(), uuid.New()
	good := userReward(acme, "u1", campaign, rules.RewardCashback, "INR", "922337203685477", urAt)
	tests := []struct {
		name   string
		change func(*incentive.Issued)
	}{
		{"five decimals", func(i *incentive.Issued) { i.RewardAmount = decimal.RequireFromString("1.00001") }},
		{"an amount past int64 units", func(i *incentive.Issued) { i.RewardAmount = decimal.RequireFromString("1e20") }},
		{"a sum past int64 units", func(i *incentive.Issued) { i.RewardAmount = decimal.RequireFromString("0.5808") }},
		{"no tenant", func(i *incentive.Issued) { i.TenantID = uuid.Nil }},
		{"no user", func(i *incentive.Issued) { i.UserID = "" }},
		{"no reward type", func(i *incentive.Issued) { i.RewardType = "" }},
		{"a colon in the reward type", func(i *incentive.Issued) { i.RewardType = "A:B" }},
		{"no currency", func(i *incentive.Issued) { i.RewardCurrency = "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			totals := projections.UserRewardTotals{}
			if err := totals.Add(good); err != nil {
				t.Fatal(err)
			}
			before := totals.Lines()
			bad := userReward(acme, "u1", campaign, rules.RewardCashback, "INR", "1", urAt.Add(time.Hour))
			tt.change(&bad)
			if err := totals.Add(bad); !errors.Is(err, projections.ErrUnprojectable) {
				t.Fatalf("Add = %v, want ErrUnprojectable", err)
			}
			if after := totals.Lines(); !reflect.DeepEqual(after, before) {
				t.Fatalf("a refused incentive changed the totals:\n%s\nwant\n%s", strings.Join(after, "\n"), strings.Join(before, "\n"))
			}
		})
	}
}

func TestUserRewardTotalsLines(t *testing.T) {
	acme := uuid.MustParse("00000000-0000-0000-0000-00000000000a")
	campaign := uuid.MustParse("00000000-0000-0000-0000-0000000000cc")
	totals := projections.UserRewardTotals{}
	for _, inc := range []incentive.Issued{
		userReward(acme, "b", campaign, rules.RewardPoints, "POINTS", "10", urAt),
		userReward(acme, `a "quoted" user`, campaign, rules.RewardCashback, "INR", "1.5", urAt),
	} {
		if err := totals.Add(inc); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{
		`00000000-0000-0000-0000-00000000000a "a \"quoted\" user" c 00000000-0000-0000-0000-0000000000cc 1`,
		`00000000-0000-0000-0000-00000000000a "a \"quoted\" user" last 1710093600000`,
		`00000000-0000-0000-0000-00000000000a "a \"quoted\" user" n CASHBACK "INR" 1`,
		`00000000-0000-0000-0000-00000000000a "a \"quoted\" user" s CASHBACK "INR" 15000`,
		`00000000-0000-0000-0000-00000000000a "b" c 00000000-0000-0000-0000-0000000000cc 1`,
		`00000000-0000-0000-0000-00000000000a "b" last 1710093600000`,
		`00000000-0000-0000-0000-00000000000a "b" n POINTS "POINTS" 1`,
		`00000000-0000-0000-0000-00000000000a "b" s POINTS "POINTS" 100000`,
	}
	if got := totals.Lines(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Lines() =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

type fakeUserRewardsStore struct {
	cps  []projections.Checkpoint
	incs []incentive.Issued
}

func (s *fakeUserRewardsStore) ApplyIncentive(_ context.Context, cp projections.Checkpoint, inc incentive.Issued) (bool, error) {
	s.cps, s.incs = append(s.cps, cp), append(s.incs, inc)
	return true, nil
}

func TestUserRewardsHandlesIncentivesOnly(t *testing.T) {
	store := &fakeUserRewardsStore{}
	p := projections.NewUserRewards(store)
	if p.Name() != "user-aggregation" || !reflect.DeepEqual(p.Aggregates(), []string{incentive.Aggregate}) {
		t.Fatalf("Name, Aggregates = %q, %v", p.Name(), p.Aggregates())
	}
	inc := userReward(uuid.New(), "u1", uuid.New(), rules.RewardPoints, "POINTS", "5", urAt)
	cp := projections.Checkpoint{Projection: p.Name(), Topic: "ic.domain.incentive", Partition: 2, Offset: 7, Position: 42}
	ctx := context.Background()
	if err := p.Handle(ctx, projections.Delivery{Event: domain.RecordedEvent{Stream: incentive.Stream(inc.IncentiveID), Version: 1, Event: inc}, Checkpoint: cp}); err != nil {
		t.Fatal(err)
	}
	other := tenant.Created{TenantID: uuid.New(), Name: "x", CreatedAt: urAt}
	if err := p.Handle(ctx, projections.Delivery{Event: domain.RecordedEvent{Stream: tenant.Stream(other.TenantID), Version: 1, Event: other}, Checkpoint: cp}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(store.incs, []incentive.Issued{inc}) || !reflect.DeepEqual(store.cps, []projections.Checkpoint{cp}) {
		t.Fatalf("store got %+v at %+v", store.incs, store.cps)
	}
}

func issuedRecord(inc incentive.Issued) domain.RecordedEvent {
	return domain.RecordedEvent{Stream: incentive.Stream(inc.IncentiveID), Version: 1, Event: inc}
}

func TestUserRewardsRebuildFoldsIncentivesOnly(t *testing.T) {
	r := projections.NewUserRewardsRebuild()
	if r.Name() != projections.UserRewardsName || !reflect.DeepEqual(r.Aggregates(), []string{incentive.Aggregate}) {
		t.Fatalf("Name, Aggregates = %q, %v", r.Name(), r.Aggregates())
	}
	acme, campaign := uuid.New(), uuid.New()
	incs := []incentive.Issued{
		userReward(acme, "u1", campaign, rules.RewardCashback, "INR", "12.5", urAt),
		userReward(acme, "u1", campaign, rules.RewardPoints, "POINTS", "3", urAt.Add(-time.Hour)),
		userReward(acme, "u2", campaign, rules.RewardCashback, "INR", "1", urAt),
	}
	want := projections.UserRewardTotals{}
	for _, inc := range incs {
		if err := r.Apply(issuedRecord(inc)); err != nil {
			t.Fatal(err)
		}
		if err := want.Add(inc); err != nil {
			t.Fatal(err)
		}
	}
	other := tenant.Created{TenantID: uuid.New(), Name: "x", CreatedAt: urAt}
	if err := r.Apply(domain.RecordedEvent{Stream: tenant.Stream(other.TenantID), Version: 1, Event: other}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r.Totals, want) || r.Skipped != 0 {
		t.Fatalf("Totals = %+v (skipped %d), want %+v", r.Totals, r.Skipped, want)
	}
}

func TestUserRewardsRebuildSkipsWhatTheLiveProjectionSendsToTheDLQ(t *testing.T) {
	r := projections.NewUserRewardsRebuild()
	r.Now = func() time.Time { return urAt }
	acme, campaign := uuid.New(), uuid.New()
	good := userReward(acme, "u1", campaign, rules.RewardCashback, "INR", "922337203685477", urAt)
	if err := r.Apply(issuedRecord(good)); err != nil {
		t.Fatal(err)
	}
	r.TakeDirty()
	r.TakeSeen()
	before := r.Totals.Lines()
	for _, bad := range []incentive.Issued{
		userReward(acme, "u1", campaign, rules.RewardCashback, "INR", "1.00001", urAt), // five decimals
		userReward(acme, "u1", campaign, rules.RewardCashback, "INR", "0.5808", urAt),  // the sum would overflow
		userReward(acme, "", campaign, rules.RewardCashback, "INR", "1", urAt),         // no user
	} {
		if err := r.Apply(issuedRecord(bad)); err != nil {
			t.Fatalf("Apply(%s) = %v, want it skipped", bad.RewardAmount, err)
		}
	}
	if r.Skipped != 3 {
		t.Fatalf("Skipped = %d, want 3", r.Skipped)
	}
	if after := r.Totals.Lines(); !reflect.DeepEqual(after, before) {
		t.Fatalf("skipped incentives changed the totals:\n%s", strings.Join(after, "\n"))
	}
	if d, s := r.TakeDirty(), r.TakeSeen(); len(d) != 0 || len(s) != 0 {
		t.Fatalf("skipped incentives left dirty users %v or seen ids %v", d, s)
	}
}

func TestUserRewardsRebuildTakeDirty(t *testing.T) {
	r := projections.NewUserRewardsRebuild()
	acme, campaign := uuid.New(), uuid.New()
	u1, u2 := projections.UserKey{TenantID: acme, UserID: "u1"}, projections.UserKey{TenantID: acme, UserID: "u2"}
	apply := func(user string, amount string) {
		t.Helper()
		if err := r.Apply(issuedRecord(userReward(acme, user, campaign, rules.RewardPoints, "POINTS", amount, urAt))); err != nil {
			t.Fatal(err)
		}
	}
	apply("u1", "1")
	apply("u2", "2")
	d := r.TakeDirty()
	if len(d) != 2 || !reflect.DeepEqual(d[u1], r.Totals[u1]) || !reflect.DeepEqual(d[u2], r.Totals[u2]) {
		t.Fatalf("TakeDirty = %+v, want u1 and u2 as folded", d)
	}
	if d := r.TakeDirty(); len(d) != 0 {
		t.Fatalf("TakeDirty again = %+v, want nothing", d)
	}
	apply("u1", "5")
	d2 := r.TakeDirty()
	if len(d2) != 1 || !reflect.DeepEqual(d2[u1], r.Totals[u1]) {
		t.Fatalf("TakeDirty = %+v, want u1 only", d2)
	}
	// What TakeDirty returned is a copy: folding on does not change it.
	pts := projections.RewardKey{Type: rules.RewardPoints, Currency: "POINTS"}
	if got := d[u1].Rewards[pts]; got.Count != 1 || got.Units != 10_000 {
		t.Fatalf("an earlier TakeDirty's view changed: %+v", got)
	}
}

func TestUserRewardsRebuildTakeSeenWithinTheHorizon(t *testing.T) {
	r := projections.NewUserRewardsRebuild()
	now := urAt // 2024-03-10 18:00 UTC
	r.Now = func() time.Time { return now }
	acme, campaign := uuid.New(), uuid.New()
	u1, u2 := projections.UserKey{TenantID: acme, UserID: "u1"}, projections.UserKey{TenantID: acme, UserID: "u2"}
	mk := func(user string, at time.Time) incentive.Issued {
		return userReward(acme, user, campaign, rules.RewardCoupon, "COUPON", "1", at)
	}
	// 2024-03-02 ends at 03-03 00:00, remembered until 03-11 00:00: still
	// in the horizon at 03-10 18:00; 2024-03-01's horizon ended at 03-10
	// 00:00.
	today1, today2 := mk("u1", now), mk("u1", now.Add(-time.Hour))
	edge, gone := mk("u1", time.Date(2024, 3, 2, 23, 59, 0, 0, time.UTC)), mk("u1", time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC))
	other := mk("u2", now.Add(time.Minute))
	for _, inc := range []incentive.Issued{today1, today2, edge, gone, other} {
		if err := r.Apply(issuedRecord(inc)); err != nil {
			t.Fatal(err)
		}
	}
	want := projections.UserRewardsSeen{
		{User: u1, Day: "20240310"}: {today1.IncentiveID, today2.IncentiveID},
		{User: u1, Day: "20240302"}: {edge.IncentiveID},
		{User: u2, Day: "20240310"}: {other.IncentiveID},
	}
	if got := r.TakeSeen(); !reflect.DeepEqual(got, want) {
		t.Fatalf("TakeSeen = %v, want %v", got, want)
	}
	if got := r.TakeSeen(); len(got) != 0 {
		t.Fatalf("TakeSeen again = %v, want nothing", got)
	}
	// The horizon moves with the clock.
	now = now.Add(7 * time.Hour) // 03-11 01:00: 2024-03-02 has left it
	late := mk("u2", time.Date(2024, 3, 2, 10, 0, 0, 0, time.UTC))
	next := mk("u2", time.Date(2024, 3, 3, 10, 0, 0, 0, time.UTC))
	for _, inc := range []incentive.Issued{late, next} {
		if err := r.Apply(issuedRecord(inc)); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := r.TakeSeen(), (projections.UserRewardsSeen{{User: u2, Day: "20240303"}: {next.IncentiveID}}); !reflect.DeepEqual(got, want) {
		t.Fatalf("TakeSeen = %v, want %v", got, want)
	}
	if r.Totals[u2].Rewards[projections.RewardKey{Type: rules.RewardCoupon, Currency: "COUPON"}].Count != 3 {
		t.Fatal("incentives outside the horizon must still be counted")
	}
}

// An incentive whose day has left the horizon (issuedAt is the action's
// time, days old) is still remembered by the live store SeenFloor after
// its delivery, which comes after the event store recorded it: the fold
// gives the shadow its id while RecordedAt + SeenFloor is after Now.
func TestUserRewardsRebuildTakeSeenRemembersLateIncentivesForTheFloor(t *testing.T) {
	r := projections.NewUserRewardsRebuild()
	now := urAt // 2024-03-10 18:00 UTC
	r.Now = func() time.Time { return now }
	acme, campaign := uuid.New(), uuid.New()
	u1 := projections.UserKey{TenantID: acme, UserID: "u1"}
	tenDaysAgo := now.AddDate(0, 0, -10) // 2024-02-29: its horizon ended 03-09
	record := func(inc incentive.Issued, recordedAt time.Time) {
		t.Helper()
		rec := issuedRecord(inc)
		rec.RecordedAt = recordedAt
		if err := r.Apply(rec); err != nil {
			t.Fatal(err)
		}
	}
	fresh := userReward(acme, "u1", campaign, rules.RewardCoupon, "COUPON", "1", tenDaysAgo)
	edge := userReward(acme, "u1", campaign, rules.RewardCoupon, "COUPON", "1", tenDaysAgo.Add(time.Hour))
	stale := userReward(acme, "u1", campaign, rules.RewardCoupon, "COUPON", "1", tenDaysAgo)
	unknown := userReward(acme, "u1", campaign, rules.RewardCoupon, "COUPON", "1", tenDaysAgo)
	record(fresh, now.Add(-time.Hour))
	record(edge, now.Add(-projections.UserRewardsSeenFloor).Add(time.Minute))
	record(stale, now.Add(-projections.UserRewardsSeenFloor).Add(-time.Minute))
	record(unknown, time.Time{}) // no record time: the horizon alone
	want := projections.UserRewardsSeen{{User: u1, Day: "20240229"}: {fresh.IncentiveID, edge.IncentiveID}}
	if got := r.TakeSeen(); !reflect.DeepEqual(got, want) {
		t.Fatalf("TakeSeen = %v, want %v", got, want)
	}
	if n := r.Totals[u1].Rewards[projections.RewardKey{Type: rules.RewardCoupon, Currency: "COUPON"}].Count; n != 4 {
		t.Fatalf("count = %d, want 4", n)
	}
}

func TestUserRewardsRebuildLoadUserResumes(t *testing.T) {
	acme, campaign := uuid.New(), uuid.New()
	var incs []incentive.Issued
	for i := range 10 {
		incs = append(incs, userReward(acme, []string{"u1", "u2", "u3"}[i%3], campaign, rules.RewardCashback, "INR", "1.25", urAt.Add(time.Duration(i)*time.Minute)))
	}
	whole := projections.NewUserRewardsRebuild()
	first := projections.NewUserRewardsRebuild()
	for i, inc := range incs {
		if err := whole.Apply(issuedRecord(inc)); err != nil {
			t.Fatal(err)
		}
		if i < 4 {
			if err := first.Apply(issuedRecord(inc)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// An interrupted replay wrote what first folded; a new one loads it
	// back and folds the rest.
	resumed := projections.NewUserRewardsRebuild()
	for k, v := range first.TakeDirty() {
		resumed.LoadUser(k, v)
	}
	if d := resumed.TakeDirty(); len(d) != 0 {
		t.Fatalf("loaded users are dirty: %v", d)
	}
	for _, inc := range incs[4:] {
		if err := resumed.Apply(issuedRecord(inc)); err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(resumed.Totals.Lines(), whole.Totals.Lines()) {
		t.Fatalf("resumed totals:\n%s\nwant\n%s", strings.Join(resumed.Totals.Lines(), "\n"), strings.Join(whole.Totals.Lines(), "\n"))
	}
	if d := resumed.TakeDirty(); len(d) != 3 {
		t.Fatalf("TakeDirty after resuming = %d users, want 3", len(d))
	}
}
