package main

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/incentives-platform/incentives/adapters/auth"
	"github.com/incentives-platform/incentives/adapters/kafka"
	"github.com/incentives-platform/incentives/adapters/redis"
	"github.com/incentives-platform/incentives/domain/incentive"
	"github.com/incentives-platform/incentives/domain/rules"
	"github.com/incentives-platform/incentives/projections"
)

// issuedIncentives folds the engine's incentive table, the record of every
// reward paid, into the user-aggregation read model.
func (p *testPlatform) issuedIncentives() projections.UserRewardTotals {
	p.t.Helper()
	rows, err := p.db.Pool.Query(context.Background(), `
		SELECT incentive_id, tenant_id, campaign_id, user_id, type, reward_currency, reward_amount::text, issued_at FROM incentive`)
	if err != nil {
		p.t.Fatal(err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (incentive.Issued, error) {
		var inc incentive.Issued
		var typ, amount string
		err := r.Scan(&inc.IncentiveID, &inc.TenantID, &inc.CampaignID, &inc.UserID, &typ, &inc.RewardCurrency, &amount, &inc.IssuedAt)
		inc.RewardType = rules.RewardType(typ)
		if err == nil {
			inc.RewardAmount, err = decimal.NewFromString(amount)
		}
		return inc, err
	})
	if err != nil {
		p.t.Fatal(err)
	}
	totals := projections.UserRewardTotals{}
	for _, inc := range list {
		if err := totals.Add(inc); err != nil {
			p.t.Fatal(err)
		}
	}
	return totals
}

// The engine issues incentives; the user-aggregation projection keeps
// each user's totals in Redis, equal to a fold of the incentive table, with
// its checkpoints beside them.
func TestUserRewardsProjectionEndToEnd(t *testing.T) {
	t.Parallel()
	p := startPlatform(t, testConfig(t))
	tenantID := p.newTenant("Acme")
	tenant := uuid.MustParse(tenantID)
	admin := p.token(auth.RoleTenantAdmin, tenant)
	p.activeCampaign(admin, `{"name":"Cashback","type":"SIMPLE","rule":{"action":"PURCHASE","condition":"event.payload.amount >= 100",
		"reward":{"type":"CASHBACK","currency":"INR","percent":"5","percentOf":"amount","maxAmount":"100"}}}`)
	p.activeCampaign(admin, `{"name":"Points","type":"SIMPLE","rule":{"action":"PURCHASE","reward":{"type":"POINTS","currency":"POINTS","amount":"10"}}}`)
	p.waitForEngineCatalog(admin, tenantID, "PURCHASE", 2)

	c, err := redis.Open(context.Background(), p.cfg.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	store := redis.NewUserRewards(c)
	var got, want projections.UserRewardTotals
	converged := func(n int) func() bool {
		return func() bool {
			if want = p.issuedIncentives(); len(want) != n {
				return false
			}
			if got, err = store.Dump(context.Background(), tenant); err != nil {
				t.Fatal(err)
			}
			return reflect.DeepEqual(got.Lines(), want.Lines())
		}
	}
	defer func() {
		if t.Failed() {
			t.Logf("Redis:\n%s\nthe incentive table:\n%s", strings.Join(got.Lines(), "\n"), strings.Join(want.Lines(), "\n"))
		}
	}()

	var actions []action
	for u := range 4 {
		for i := range 3 {
			a := newAction(tenantID, fmt.Sprintf("u%d", u), "PURCHASE", fmt.Sprintf(`{"amount": %d.37}`, 40+u*60+i*11))
			a.at = a.at.Add(-time.Duration(i) * time.Hour)
			actions = append(actions, a)
		}
	}
	produceActions(t, p.app.Brokers(), actions...)
	eventually(t, "every action decided", func() bool { return p.loggedEvents() == len(actions) })
	eventually(t, "Redis equal to the fold of the incentive table", converged(4))
	// u3 bought for 220.37 and more: three cashbacks (5%, to the cent).
	u3 := want[projections.UserKey{TenantID: tenant, UserID: "u3"}]
	if got := u3.Rewards[projections.RewardKey{Type: rules.RewardCashback, Currency: "INR"}]; got.Count != 3 {
		t.Fatalf("u3's cashback = %+v, want 3 rewards", got)
	}

	// The same actions again (decided once, so nothing new) and one more
	// user: Redis follows, and counts nothing twice.
	produceActions(t, p.app.Brokers(), actions...)
	produceActions(t, p.app.Brokers(), newAction(tenantID, "u9", "PURCHASE", `{"amount": 1000}`))
	eventually(t, "Redis equal to the fold with the new user", converged(5))

	cps, err := store.Checkpoints(context.Background(), tenant)
	if err != nil || len(cps) == 0 {
		t.Fatalf("Checkpoints = %+v, %v", cps, err)
	}
	for _, cp := range cps {
		var stream string
		if err := p.db.Pool.QueryRow(context.Background(), `SELECT stream_id FROM event_store WHERE position = $1`, cp.Position).Scan(&stream); err != nil ||
			!strings.HasPrefix(stream, incentive.Aggregate+"-") || cp.Topic != kafka.DomainTopic(incentive.Aggregate) {
			t.Fatalf("checkpoint %+v: stream %q, %v", cp, stream, err)
		}
	}
}

// awaitUserRewards waits, up to 10s, until the user-aggregation projection
// has counted every incentive event of the tenant, so that cleaning up the
// tenant's Redis keys (forgetTenantInRedis) does not race the projection's
// last writes. Tests that never look at those keys do not wait for them.
func (p *testPlatform) awaitUserRewards(tenant uuid.UUID) {
	p.t.Helper()
	ctx := context.Background()
	c, err := redis.Open(ctx, p.cfg.RedisURL)
	if err != nil {
		p.t.Errorf("redis: %v", err)
		return
	}
	defer c.Close()
	store := redis.NewUserRewards(c)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var events int64
		if err := p.db.Pool.QueryRow(ctx, `SELECT count(*) FROM event_store WHERE aggregate = $1 AND tenant_id = $2`,
			incentive.Aggregate, tenant).Scan(&events); err != nil {
			p.t.Errorf("count incentive events of tenant %s: %v", tenant, err)
			return
		}
		if events == 0 {
			return
		}
		totals, err := store.Dump(ctx, tenant)
		if err != nil {
			p.t.Errorf("user rewards of tenant %s: %v", tenant, err)
			return
		}
		var counted int64
		for _, v := range totals {
			for _, r := range v.Rewards {
				counted += r.Count
			}
		}
		if counted >= events || time.Now().After(deadline) {
			return
		}
	}
}
