package projections

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/incentive"
	"github.com/incentives-platform/incentives/domain/rules"
)

// UserRewardsName is the stable name of the user-aggregation projection:
// the seed's "Redis Aggregation Pipeline" (db.incentives.redis), its own
// consumer group on the incentive domain topic (DESIGN.md §4).
const UserRewardsName = "user-aggregation"

// RewardScale is the number of decimals a reward amount has at most (the
// incentive table's numeric(20,4)). Sums are kept as integers in units of
// 10^-RewardScale of the currency, so adding amounts never rounds.
const RewardScale = 4

// UserRewardsSeenHorizon is how long after its UTC day ends a store
// remembers that it applied an incentive (by id), so that a redelivery
// changes nothing (UserRewardsStore). A replay gives its shadow copy the
// ids the live store may still hold (UserRewardsRebuild.TakeSeen).
const UserRewardsSeenHorizon = 8 * 24 * time.Hour

// UserRewardsSeenFloor is the least time a store remembers an applied
// incentive after applying it, whatever its day: an incentive delivered
// after its day's horizon (issuedAt is the action's time, which may be
// days old) is remembered that long, so a redelivery soon after counts
// nothing either.
const UserRewardsSeenFloor = 24 * time.Hour

// UserRewardsDay names the UTC day of t as the stores' remembered ids are
// grouped by it: yyyymmdd.
func UserRewardsDay(t time.Time) string { return t.UTC().Format("20060102") }

// UserKey names one user of one tenant: user ids are the tenant's own and
// unique only within it.
type UserKey struct {
	TenantID uuid.UUID
	UserID   string
}

// RewardKey names what a reward paid in: its type and currency.
type RewardKey struct {
	Type     rules.RewardType
	Currency string
}

// RewardTotal is how many rewards of one type and currency a user earned
// and their sum in units of 10^-RewardScale (RewardUnits).
type RewardTotal struct {
	Count int64
	Units int64
}

// Amount returns the sum as a decimal amount of the currency.
func (r RewardTotal) Amount() decimal.Decimal { return decimal.New(r.Units, -RewardScale) }

// UserRewardsView is what one user earned: the read model of the
// user-aggregation projection.
type UserRewardsView struct {
	// Rewards are the count and sum by reward type and currency.
	Rewards map[RewardKey]RewardTotal
	// Campaigns counts the user's rewards by campaign.
	Campaigns map[uuid.UUID]int64
	// LastIssuedAt is the latest IssuedAt of the user's rewards, to the
	// millisecond (the Avro event's precision), in UTC. It is the latest,
	// not the last delivered, so the view does not depend on the order in
	// which incentives arrive.
	LastIssuedAt time.Time
}

// UserRewardsStore is the port of the user-aggregation projection.
//
// ApplyIncentive adds inc to its user's view and records cp, as one atomic
// step, unless the store has applied inc before (by incentive id): then it
// records cp only and answers applied false. The store remembers applied
// incentives for a bounded horizon (documented by the implementation),
// which must be far longer than any redelivery. It returns an error
// wrapping ErrUnprojectable, and changes nothing, for an incentive its view
// can never hold (see UserRewardTotals.Add). It is safe for concurrent use.
type UserRewardsStore interface {
	ApplyIncentive(ctx context.Context, cp Checkpoint, inc incentive.Issued) (applied bool, err error)
}

// UserRewards keeps, per user, the count and sum of the rewards they earned
// by type and currency, the count by campaign, and the latest issue time.
// Unlike the other projections it is not an evolve of a versioned view: a
// user's view sums many streams (one per incentive), so it is idempotent by
// incentive id instead (UserRewardsStore).
type UserRewards struct {
	store UserRewardsStore
}

// NewUserRewards returns the projection; it panics on a nil store.
func NewUserRewards(store UserRewardsStore) *UserRewards {
	if store == nil {
		panic("projections: NewUserRewards needs a store")
	}
	return &UserRewards{store: store}
}

// Name implements Projector.
func (*UserRewards) Name() string { return UserRewardsName }

// Aggregates implements Projector.
func (*UserRewards) Aggregates() []string { return []string{incentive.Aggregate} }

// Handle implements Projector. Events other than incentive.Issued are
// ignored (and not checkpointed: the checkpoint lives with a user's view).
func (p *UserRewards) Handle(ctx context.Context, d Delivery) error {
	inc, ok := d.Event.Event.(incentive.Issued)
	if !ok {
		return nil
	}
	_, err := p.store.ApplyIncentive(ctx, d.Checkpoint, inc)
	return err
}

// RewardUnits returns amount in units of 10^-RewardScale of its currency.
// It returns an error wrapping ErrUnprojectable when amount has more than
// RewardScale decimals or does not fit an int64 in those units.
func RewardUnits(amount decimal.Decimal) (int64, error) {
	scaled := amount.Shift(RewardScale)
	if !scaled.IsInteger() {
		return 0, fmt.Errorf("%w: reward amount %s has more than %d decimals", ErrUnprojectable, amount, RewardScale)
	}
	b := scaled.BigInt()
	if !b.IsInt64() {
		return 0, fmt.Errorf("%w: reward amount %s is too large to sum", ErrUnprojectable, amount)
	}
	return b.Int64(), nil
}

// CheckUserReward returns an error wrapping ErrUnprojectable when inc cannot
// be held by a user's view: no tenant or user, no reward type or currency, a
// reward type with a colon (it names a stored field), or an amount
// RewardUnits refuses. Otherwise it returns the amount in units.
func CheckUserReward(inc incentive.Issued) (int64, error) {
	var errs []error
	if inc.TenantID == uuid.Nil {
		errs = append(errs, errors.New("no tenant id"))
	}
	if inc.UserID == "" {
		errs = append(errs, errors.New("no user id"))
	}
	if inc.RewardType == "" || strings.Contains(string(inc.RewardType), ":") {
		errs = append(errs, fmt.Errorf("reward type %q", inc.RewardType))
	}
	if inc.RewardCurrency == "" {
		errs = append(errs, errors.New("no reward currency"))
	}
	if err := errors.Join(errs...); err != nil {
		return 0, fmt.Errorf("%w: incentive %s: %w", ErrUnprojectable, inc.IncentiveID, err)
	}
	units, err := RewardUnits(inc.RewardAmount)
	if err != nil {
		return 0, fmt.Errorf("incentive %s: %w", inc.IncentiveID, err)
	}
	return units, nil
}

// UserRewardTotals is the user-aggregation read model in memory: every
// user's view, by tenant and user. It is what a replay folds from the event
// store, and what a test compares a store with.
type UserRewardTotals map[UserKey]UserRewardsView

// Add folds one incentive into its user's view, exactly as the store does
// on a first delivery: count and sum by type and currency (the sum in
// RewardUnits), count by campaign, the latest IssuedAt to the millisecond.
// Add is not idempotent: give it each incentive once, as the event store
// holds it.
//
// It returns an error wrapping ErrUnprojectable and changes nothing when
// CheckUserReward refuses inc, or when the user's sum would overflow an
// int64 (as Redis's HINCRBY refuses to).
func (t UserRewardTotals) Add(inc incentive.Issued) error {
	units, err := CheckUserReward(inc)
	if err != nil {
		return err
	}
	key := UserKey{TenantID: inc.TenantID, UserID: inc.UserID}
	rk := RewardKey{Type: inc.RewardType, Currency: inc.RewardCurrency}
	at := time.UnixMilli(inc.IssuedAt.UnixMilli()).UTC()
	v, ok := t[key]
	sum := v.Rewards[rk]
	if (units > 0 && sum.Units > math.MaxInt64-units) || (units < 0 && sum.Units < math.MinInt64-units) {
		return fmt.Errorf("%w: incentive %s: the sum of %s %s of user %q would overflow",
			ErrUnprojectable, inc.IncentiveID, rk.Type, rk.Currency, inc.UserID)
	}
	if !ok {
		v = UserRewardsView{Rewards: map[RewardKey]RewardTotal{}, Campaigns: map[uuid.UUID]int64{}, LastIssuedAt: at}
	}
	v.Rewards[rk] = RewardTotal{Count: sum.Count + 1, Units: sum.Units + units}
	v.Campaigns[inc.CampaignID]++
	if at.After(v.LastIssuedAt) {
		v.LastIssuedAt = at
	}
	t[key] = v
	return nil
}

// Users returns the users in a deterministic order: by tenant id, then
// user id.
func (t UserRewardTotals) Users() []UserKey {
	keys := make([]UserKey, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b UserKey) int {
		if c := slices.Compare(a.TenantID[:], b.TenantID[:]); c != 0 {
			return c
		}
		return strings.Compare(a.UserID, b.UserID)
	})
	return keys
}

// Lines writes the totals as sorted text lines, one per user and
// aggregate: a canonical form to compare, diff or checksum two copies of
// the read model by (a live one and a replay's, Redis and the fold).
//
//	<tenantId> <quoted userId> n <TYPE> <CURRENCY> <count>
//	<tenantId> <quoted userId> s <TYPE> <CURRENCY> <units>
//	<tenantId> <quoted userId> c <campaignId> <count>
//	<tenantId> <quoted userId> last <Unix ms>
func (t UserRewardTotals) Lines() []string {
	var lines []string
	for _, k := range t.Users() {
		v := t[k]
		head := k.TenantID.String() + " " + strconv.Quote(k.UserID) + " "
		var user []string
		for rk, r := range v.Rewards {
			rest := string(rk.Type) + " " + strconv.Quote(rk.Currency) + " "
			user = append(user, head+"n "+rest+strconv.FormatInt(r.Count, 10), head+"s "+rest+strconv.FormatInt(r.Units, 10))
		}
		for id, n := range v.Campaigns {
			user = append(user, head+"c "+id.String()+" "+strconv.FormatInt(n, 10))
		}
		user = append(user, head+"last "+strconv.FormatInt(v.LastIssuedAt.UnixMilli(), 10))
		slices.Sort(user)
		lines = append(lines, user...)
	}
	return lines
}

// SeenKey names one group of remembered incentive ids: one user's
// incentives issued on one UTC day (Day, yyyymmdd: UserRewardsDay).
type SeenKey struct {
	User UserKey
	Day  string
}

// UserRewardsSeen are incentive ids a store must remember as applied, by
// user and day (UserRewardsRebuild.TakeSeen).
type UserRewardsSeen map[SeenKey][]uuid.UUID

// UserRewardsRebuild is the user-aggregation projection in memory, for
// replay: it folds every incentive.Issued once, as the event store holds
// it, with UserRewardTotals.Add. Unlike the other rebuilds, folding an
// event twice counts it twice: a replay must give it each event once, and
// resume exactly where what it wrote ends.
//
// Besides the totals it tracks what a replay must write: the users changed
// since TakeDirty last ran, and the ids of the incentives the live store
// may still remember (TakeSeen), so that a shadow copy swapped in for the
// live one counts no redelivery again.
type UserRewardsRebuild struct {
	// Totals are every user's view.
	Totals UserRewardTotals
	// Skipped counts the incentives Add refused (ErrUnprojectable): the
	// live projection sends those to the DLQ and never counts them, so the
	// rebuild skips them too.
	Skipped int
	// Now is the clock the seen horizon is measured from; nil is
	// time.Now.
	Now func() time.Time

	dirty map[UserKey]bool
	seen  UserRewardsSeen
}

var _ Rebuild = (*UserRewardsRebuild)(nil)

// NewUserRewardsRebuild returns an empty rebuild.
func NewUserRewardsRebuild() *UserRewardsRebuild {
	r := &UserRewardsRebuild{}
	r.init()
	return r
}

func (r *UserRewardsRebuild) init() {
	if r.Totals == nil {
		r.Totals = UserRewardTotals{}
	}
	if r.dirty == nil {
		r.dirty = map[UserKey]bool{}
	}
	if r.seen == nil {
		r.seen = UserRewardsSeen{}
	}
}

// Name implements Rebuild.
func (*UserRewardsRebuild) Name() string { return UserRewardsName }

// Aggregates implements Rebuild.
func (*UserRewardsRebuild) Aggregates() []string { return []string{incentive.Aggregate} }

// Apply implements Rebuild: it adds an incentive.Issued to its user's
// view and marks the user dirty; other events are ignored. An incentive
// Add refuses with ErrUnprojectable is counted in Skipped and changes
// nothing; any other error is returned.
func (r *UserRewardsRebuild) Apply(rec domain.RecordedEvent) error {
	if rec.Stream.Aggregate != incentive.Aggregate {
		return nil
	}
	inc, ok := rec.Event.(incentive.Issued)
	if !ok {
		return nil
	}
	r.init()
	if err := r.Totals.Add(inc); err != nil {
		if errors.Is(err, ErrUnprojectable) {
			r.Skipped++
			return nil
		}
		return err
	}
	user := UserKey{TenantID: inc.TenantID, UserID: inc.UserID}
	r.dirty[user] = true
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	at := inc.IssuedAt.UTC()
	dayEnd := time.Date(at.Year(), at.Month(), at.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, 1)
	// The live store remembers an id until its day's horizon ends, and at
	// least UserRewardsSeenFloor after delivering it; the delivery comes
	// after the event store recorded the incentive (RecordedAt), so the
	// live store may still remember a late incentive (issuedAt days old)
	// while RecordedAt + the floor is after now.
	t := now()
	if dayEnd.Add(UserRewardsSeenHorizon).After(t) || rec.RecordedAt.Add(UserRewardsSeenFloor).After(t) {
		k := SeenKey{User: user, Day: UserRewardsDay(at)}
		r.seen[k] = append(r.seen[k], inc.IncentiveID)
	}
	return nil
}

// TakeDirty returns a copy of the view of every user changed since its
// last call, and marks them clean.
func (r *UserRewardsRebuild) TakeDirty() map[UserKey]UserRewardsView {
	out := make(map[UserKey]UserRewardsView, len(r.dirty))
	for k := range r.dirty {
		v := r.Totals[k]
		out[k] = UserRewardsView{Rewards: maps.Clone(v.Rewards), Campaigns: maps.Clone(v.Campaigns), LastIssuedAt: v.LastIssuedAt}
	}
	clear(r.dirty)
	return out
}

// TakeSeen returns the ids of the incentives folded since its last call
// that the live store may still remember when they were folded, by user
// and day, and forgets them: those whose UTC day had not left the seen
// horizon (UserRewardsSeenHorizon) of Now, and those recorded less than
// UserRewardsSeenFloor before Now (late incentives: the live store
// remembers them that long after delivering them, and it delivers them
// after they are recorded). A live projection lagging more than the floor
// behind the event store may deliver a late incentive after that; the
// store it swaps in must keep the live ids it holds (the replay's swap
// merges them).
func (r *UserRewardsRebuild) TakeSeen() UserRewardsSeen {
	out := r.seen
	r.seen = UserRewardsSeen{}
	return out
}

// LoadUser puts back a view already written (by an interrupted replay),
// not dirty.
func (r *UserRewardsRebuild) LoadUser(k UserKey, v UserRewardsView) {
	r.init()
	r.Totals[k] = v
}
