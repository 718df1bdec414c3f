// This file keeps the user-aggregation projection's read model (DESIGN.md
// §4, the seed's db.incentives.redis "Redis Aggregation Pipeline"): per
// user, what they earned, written by one Lua script per delivery,
// USER_REWARDS (user_rewards.lua).
//
// Keys (the tenant id in braces is the Redis Cluster hash tag, so a
// delivery's keys, and all of a tenant's, live in one slot):
//
//	uagg:{<tenantId>}:u:<userId>                  hash, the user's aggregates:
//	  n:<TYPE>:<CURRENCY>   how many rewards of that type and currency
//	  s:<TYPE>:<CURRENCY>   their sum, an integer in 1/10,000 of the currency
//	  c:<campaignId>        how many rewards from that campaign
//	  last                  latest issuedAt of the user's rewards, Unix ms
//	  never expires
//	uagg:{<tenantId>}:seen:<yyyymmdd>:<userId>    set, ids of the user's
//	  incentives issued that UTC day that were applied; expires 8 days
//	  after that day ends (and never less than SeenFloor after a write)
//	uagg:{<tenantId>}:checkpoint                  hash, <topic>:<partition> →
//	  <kafka offset>:<event-store position> of the tenant's latest delivery;
//	  and, while a replay swaps the tenant's keys, the field
//	  fence           Unix ms (Redis's clock) until which USER_REWARDS
//	                  refuses the tenant's deliveries (ErrFenced)
//
// The user id is the tenant's own, unescaped. It comes last, after a kind
// (u, seen:<day>) that no other key of the tenant has at that place, so
// no user id (not "checkpoint", not "x:seen:20240310") can name another
// user's key or another kind of key, and a SCAN of uagg:{<tenantId>}:u:*
// finds exactly the tenant's users.
//
// # Idempotency
//
// Kafka delivers at least once and no transaction spans Kafka and Redis, so
// the script adds an incentive only if its id is not yet in its day's set,
// and adds it to the set in the same call. A redelivery comes seconds to
// minutes after the first delivery (a relay batch retried, a consumer
// restarted before committing its offset); the set remembers an id for at
// least 8 days after its incentive's day, far beyond that, and memory stays
// bounded by about a week of incentive ids per user. A redelivery after
// that horizon (a consumer group rewound by hand to a week-old offset)
// would count again. An incentive delivered after its horizon has passed
// (a new consumer group reading the topic from its start) is remembered
// SeenFloor from its delivery, so a restart during such a catch-up counts
// nothing twice either.
//
// # Prefix
//
// Every key starts with a prefix, "uagg" for the live read model. A
// replay writes the same layout under another prefix (say "uagg~replay");
// the hash tag is the same, so a tenant's shadow and live keys share a slot
// and one script can swap them atomically (RENAME): see
// user_rewards_replay.go.

package redis

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/incentives-platform/incentives/domain/incentive"
	"github.com/incentives-platform/incentives/domain/rules"
	"github.com/incentives-platform/incentives/projections"
)

//go:embed user_rewards.lua
var userRewardsSource string

var _ projections.UserRewardsStore = (*UserRewards)(nil)

const (
	// UserRewardsPrefix is the prefix of the live user-aggregation keys.
	UserRewardsPrefix = "uagg"
	// SeenHorizon is how long after its UTC day ends an incentive's id is
	// remembered, so that a redelivery changes nothing.
	SeenHorizon = projections.UserRewardsSeenHorizon
	// SeenFloor is the least time an id is remembered after its delivery.
	SeenFloor = projections.UserRewardsSeenFloor
)

// ErrFenced is returned (wrapped) by UserRewards.ApplyIncentive while a
// replay holds the tenant's fence (UserRewardsReplay.Fence) to swap its
// keys: nothing was written, and the delivery must be retried later. It is
// not projections.ErrUnprojectable: the incentive must not go to the DLQ.
var ErrFenced = errors.New("user aggregates fenced by a replay")

// fenceField is the checkpoint hash's field holding a replay's fence.
const fenceField = "fence"

// UserRewards implements projections.UserRewardsStore on Redis. It is safe
// for concurrent use by any number of goroutines and processes: each
// delivery is one Lua script, which Redis runs atomically.
type UserRewards struct {
	rdb    *goredis.Client
	script *goredis.Script
	keys   userRewardKeys
}

// NewUserRewards returns the live user-aggregation read model on c's Redis.
func NewUserRewards(c *Client) *UserRewards { return newUserRewards(c, UserRewardsPrefix) }

// newUserRewards returns the read model whose keys start with prefix.
func newUserRewards(c *Client, prefix string) *UserRewards {
	return &UserRewards{rdb: c.rdb, script: goredis.NewScript(userRewardsSource), keys: userRewardKeys{prefix: prefix}}
}

// userRewardKeys names the keys of one copy of the read model.
type userRewardKeys struct{ prefix string }

// tenant is the prefix of every key of a tenant, hash tag included.
func (k userRewardKeys) tenant(tenantID uuid.UUID) string {
	return k.prefix + ":{" + tenantID.String() + "}"
}

func (k userRewardKeys) user(u projections.UserKey) string { return k.users(u.TenantID) + u.UserID }

// users is the prefix of the tenant's user hashes.
func (k userRewardKeys) users(tenantID uuid.UUID) string { return k.tenant(tenantID) + ":u:" }

func (k userRewardKeys) seen(u projections.UserKey, day string) string {
	return k.tenant(u.TenantID) + ":seen:" + day + ":" + u.UserID
}

func (k userRewardKeys) checkpoint(tenantID uuid.UUID) string {
	return k.tenant(tenantID) + ":checkpoint"
}

// Hash fields of a user's aggregates.
const (
	countField    = "n:"
	sumField      = "s:"
	campaignField = "c:"
	lastField     = "last"
)

func rewardField(kind string, r projections.RewardKey) string {
	return kind + string(r.Type) + ":" + r.Currency
}

// ApplyIncentive implements projections.UserRewardsStore: one USER_REWARDS
// call. It returns an error wrapping projections.ErrUnprojectable, sending
// nothing, for an incentive projections.CheckUserReward refuses, and
// writing nothing when the user's sum would overflow; and an error
// wrapping ErrFenced, writing nothing, while a replay fences the tenant.
func (u *UserRewards) ApplyIncentive(ctx context.Context, cp projections.Checkpoint, inc incentive.Issued) (bool, error) {
	units, err := projections.CheckUserReward(inc)
	if err != nil {
		return false, err
	}
	user := projections.UserKey{TenantID: inc.TenantID, UserID: inc.UserID}
	at := inc.IssuedAt.UTC()
	dayEnd := time.Date(at.Year(), at.Month(), at.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, 1)
	reward := projections.RewardKey{Type: inc.RewardType, Currency: inc.RewardCurrency}
	call := scriptCall{
		keys: []string{u.keys.user(user), u.keys.seen(user, projections.UserRewardsDay(at)), u.keys.checkpoint(inc.TenantID)},
		args: []any{inc.IncentiveID.String(),
			strconv.FormatInt(dayEnd.Add(SeenHorizon).Unix(), 10), strconv.FormatInt(int64(SeenFloor/time.Second), 10),
			rewardField(sumField, reward), rewardField(countField, reward), strconv.FormatInt(units, 10),
			campaignField + inc.CampaignID.String(), strconv.FormatInt(inc.IssuedAt.UnixMilli(), 10),
			cp.Topic + ":" + strconv.FormatInt(int64(cp.Partition), 10),
			strconv.FormatInt(cp.Offset, 10) + ":" + strconv.FormatInt(cp.Position, 10)},
	}
	cmds, err := runScript(ctx, u.rdb, u.script, "USER_REWARDS", []scriptCall{call})
	if err != nil {
		if goredis.HasErrorPrefix(err, "UNPROJECTABLE") {
			return false, fmt.Errorf("%w: incentive %s: %w", projections.ErrUnprojectable, inc.IncentiveID, err)
		}
		if goredis.HasErrorPrefix(err, "FENCED") {
			return false, fmt.Errorf("%w: incentive %s: %w", ErrFenced, inc.IncentiveID, err)
		}
		return false, err
	}
	applied, err := cmds[0].Int64()
	if err != nil {
		return false, fmt.Errorf("USER_REWARDS (%s): %w", call.keys[0], err)
	}
	return applied == 1, nil
}

// Load returns one user's aggregates, and false if the user has none.
func (u *UserRewards) Load(ctx context.Context, tenantID uuid.UUID, userID string) (projections.UserRewardsView, bool, error) {
	key := u.keys.user(projections.UserKey{TenantID: tenantID, UserID: userID})
	fields, err := u.rdb.HGetAll(ctx, key).Result()
	if err != nil {
		return projections.UserRewardsView{}, false, fmt.Errorf("load user rewards %s: %w", key, err)
	}
	if len(fields) == 0 {
		return projections.UserRewardsView{}, false, nil
	}
	v, err := parseUserRewards(fields)
	if err != nil {
		return v, false, fmt.Errorf("load user rewards %s: %w", key, err)
	}
	return v, true, nil
}

// Dump returns the aggregates of every user of the given tenants. It scans
// the keyspace: for tests, checks and operators, never the hot path. In a
// Redis Cluster it must run on the node that owns each tenant's slot.
func (u *UserRewards) Dump(ctx context.Context, tenantIDs ...uuid.UUID) (projections.UserRewardTotals, error) {
	out := projections.UserRewardTotals{}
	for _, tenantID := range tenantIDs {
		prefix := u.keys.users(tenantID)
		var keys []string
		iter := u.rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			return nil, fmt.Errorf("dump user rewards of tenant %s: %w", tenantID, err)
		}
		slices.Sort(keys)
		for chunk := range slices.Chunk(keys, 500) {
			pipe := u.rdb.Pipeline()
			cmds := make([]*goredis.MapStringStringCmd, len(chunk))
			for i, k := range chunk {
				cmds[i] = pipe.HGetAll(ctx, k)
			}
			// Exec's error is the first command's; each command is checked below.
			_, _ = pipe.Exec(ctx)
			for i, cmd := range cmds {
				fields, err := cmd.Result()
				if err != nil {
					return nil, fmt.Errorf("dump user rewards %s: %w", chunk[i], err)
				}
				if len(fields) == 0 { // deleted since the scan
					continue
				}
				v, err := parseUserRewards(fields)
				if err != nil {
					return nil, fmt.Errorf("dump user rewards %s: %w", chunk[i], err)
				}
				out[projections.UserKey{TenantID: tenantID, UserID: strings.TrimPrefix(chunk[i], prefix)}] = v
			}
		}
	}
	return out, nil
}

// Checkpoints returns the tenant's checkpoints, by topic and partition: the
// latest delivery of one of its incentives in each partition. A replay's
// fence is not a checkpoint.
func (u *UserRewards) Checkpoints(ctx context.Context, tenantID uuid.UUID) ([]projections.Checkpoint, error) {
	key := u.keys.checkpoint(tenantID)
	fields, err := u.rdb.HGetAll(ctx, key).Result()
	if err != nil {
		return nil, fmt.Errorf("load checkpoints %s: %w", key, err)
	}
	cps := make([]projections.Checkpoint, 0, len(fields))
	for f, v := range fields {
		if f == fenceField {
			continue
		}
		cp, err := parseCheckpoint(f, v)
		if err != nil {
			return nil, fmt.Errorf("load checkpoints %s: field %q: %w", key, f, err)
		}
		cps = append(cps, cp)
	}
	slices.SortFunc(cps, func(a, b projections.Checkpoint) int {
		if c := strings.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return int(a.Partition) - int(b.Partition)
	})
	return cps, nil
}

// ForgetTenant deletes every user-aggregation key of a tenant (aggregates,
// remembered ids, checkpoints) and returns how many it deleted: for tests
// and removing a tenant, never the hot path, since it scans the keyspace.
func (u *UserRewards) ForgetTenant(ctx context.Context, tenantID uuid.UUID) (int64, error) {
	n, err := unlinkMatching(ctx, u.rdb, u.keys.tenant(tenantID)+":*")
	if err != nil {
		return n, fmt.Errorf("forget user rewards of tenant %s: %w", tenantID, err)
	}
	return n, nil
}

// parseCheckpoint reads "<topic>:<partition>" → "<offset>:<position>".
// Kafka topic names hold no colon.
func parseCheckpoint(field, value string) (projections.Checkpoint, error) {
	cp := projections.Checkpoint{Projection: projections.UserRewardsName}
	topic, partition, ok := strings.Cut(field, ":")
	p, err := strconv.ParseInt(partition, 10, 32)
	if !ok || err != nil {
		return cp, errors.New("not <topic>:<partition>")
	}
	offset, position, ok := strings.Cut(value, ":")
	if cp.Offset, err = strconv.ParseInt(offset, 10, 64); !ok || err != nil {
		return cp, fmt.Errorf("value %q is not <offset>:<position>", value)
	}
	if cp.Position, err = strconv.ParseInt(position, 10, 64); err != nil {
		return cp, fmt.Errorf("value %q is not <offset>:<position>", value)
	}
	cp.Topic, cp.Partition = topic, int32(p)
	return cp, nil
}

// parseUserRewards reads a user's hash. Fields it does not know are an
// error: only USER_REWARDS writes these keys.
func parseUserRewards(fields map[string]string) (projections.UserRewardsView, error) {
	v := projections.UserRewardsView{Rewards: map[projections.RewardKey]projections.RewardTotal{}, Campaigns: map[uuid.UUID]int64{}}
	hasLast := false
	for f, s := range fields {
		if f == lastField {
			ms, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return v, fmt.Errorf("field %s %q is not Unix milliseconds", f, s)
			}
			v.LastIssuedAt, hasLast = time.UnixMilli(ms).UTC(), true
			continue
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return v, fmt.Errorf("field %s %q is not an integer", f, s)
		}
		switch {
		case strings.HasPrefix(f, campaignField):
			id, err := uuid.Parse(f[len(campaignField):])
			if err != nil {
				return v, fmt.Errorf("field %s does not name a campaign", f)
			}
			v.Campaigns[id] = n
		case strings.HasPrefix(f, countField), strings.HasPrefix(f, sumField):
			typ, currency, ok := strings.Cut(f[2:], ":")
			if !ok {
				return v, fmt.Errorf("field %s is not <n|s>:<TYPE>:<CURRENCY>", f)
			}
			rk := projections.RewardKey{Type: rules.RewardType(typ), Currency: currency}
			r := v.Rewards[rk]
			if f[:2] == countField {
				r.Count = n
			} else {
				r.Units = n
			}
			v.Rewards[rk] = r
		default:
			return v, fmt.Errorf("unknown field %s", f)
		}
	}
	if !hasLast {
		return v, errors.New("no field last")
	}
	return v, nil
}
