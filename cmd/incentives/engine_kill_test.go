package main

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/incentives-platform/incentives/adapters/auth"
	"github.com/incentives-platform/incentives/adapters/kafka/kafkatest"
)

// Two engine processes share the stream; one is killed mid-stream (SIGKILL,
// no goodbye) and a third joins, so partitions move twice while events flow,
// some of them sent twice. Every reward is still issued exactly once: the
// count and the sum of the incentives equal what the rule gives for the
// distinct events, computed here without the engine's code.
func TestEngineKilledMidStreamIssuesEachRewardOnce(t *testing.T) {
	t.Parallel()
	broker := kafkatest.MustBroker(t)
	cfg := testConfig(t)
	cfg.KafkaBrokers, cfg.Roles = broker.Addr(), "api,projector,relay"
	p := startPlatform(t, cfg)
	const tenants, events = 3, 6000
	var ids []string
	for i := range tenants {
		id := p.newTenant(fmt.Sprint("Tenant ", i))
		admin := p.token(auth.RoleTenantAdmin, uuid.MustParse(id))
		for _, path := range []string{"limits", "user-limits"} {
			if r := p.request("POST", "/api/v1/tenants/"+id+"/"+path, admin, `{}`); r.status != http.StatusOK {
				t.Fatalf("unbounded %s: %d %s", path, r.status, r.body)
			}
		}
		p.activeCampaign(admin, `{"name":"Cashback","type":"SIMPLE","rule":{"action":"PURCHASE","condition":"event.payload.amount >= 100",
			"reward":{"type":"CASHBACK","currency":"INR","percent":"5","percentOf":"amount","maxAmount":"100"}}}`)
		p.waitForEngineCatalog(admin, id, "PURCHASE", 1)
		ids = append(ids, id)
	}
	engineEnv := []string{"DATABASE_URL=" + cfg.DatabaseURL, "KAFKA_BROKERS=" + broker.Addr(), "REDIS_URL=" + cfg.RedisURL,
		"ROLES=engine", "LOG_LEVEL=warn", "HTTP_ADDR=127.0.0.1:0", "ENGINE_MAX_BATCH=200", "ENGINE_CATALOG_REFRESH=100ms", "ENGINE_SESSION_TIMEOUT=6s"}
	first := startProcess(t, engineEnv, "serve")
	startProcess(t, engineEnv, "serve")

	// The events, and what the rule pays for them: 5% of amounts of 100 or
	// more, rounded down to the paisa, at most 100.
	rng := rand.New(rand.NewPCG(7, 11))
	all := make([]action, events)
	wantSum, wantCount := decimal.Zero, 0
	for i := range all {
		code, amount := "PURCHASE", rng.IntN(3000)
		if rng.IntN(4) == 0 {
			code = "LOGIN"
		}
		cents := rng.IntN(100)
		all[i] = newAction(ids[i%tenants], fmt.Sprint("user-", rng.IntN(500)), code, fmt.Sprintf(`{"amount": %d.%02d}`, amount, cents))
		if code == "PURCHASE" && amount >= 100 {
			pay := decimal.New(int64(amount*100+cents), -2).Mul(decimal.NewFromInt(5)).Div(decimal.NewFromInt(100)).Truncate(2)
			wantSum = wantSum.Add(decimal.Min(pay, decimal.NewFromInt(100)))
			wantCount++
		}
	}
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for i := 0; i < len(all); i += 500 {
			chunk := all[i:min(i+500, len(all))]
			produceActions(t, broker.Brokers(), chunk...)
			produceActions(t, broker.Brokers(), chunk[:25]...) // redelivered by the producer
			time.Sleep(20 * time.Millisecond)
		}
	}()
	eventually(t, "the engines under way", func() bool { return p.loggedEvents() >= events/4 })
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.cmd.Wait()
	startProcess(t, engineEnv, "serve")
	<-produced
	deadline := time.Now().Add(60 * time.Second)
	for p.loggedEvents() < events {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events logged after 60s", p.loggedEvents(), events)
		}
		time.Sleep(100 * time.Millisecond)
	}
	got := p.incentives()
	sum := decimal.Zero
	for _, in := range got {
		sum = sum.Add(in.amount)
	}
	if len(got) != wantCount || !sum.Equal(wantSum) {
		t.Fatalf("%d incentives worth %s, want %d worth %s", len(got), sum, wantCount, wantSum)
	}
	// Every one of them reached incentive-generated (at least once).
	seen := map[string]bool{}
	kafkatest.ReadUntil(t, broker.Brokers(), 30*time.Second, func(rs []kafkatest.Record) bool {
		clear(seen)
		for _, r := range rs {
			seen[r.Headers["incentive-id"]] = true
		}
		return len(seen) >= wantCount
	}, "incentive-generated")
	t.Logf("%d events (%d sent twice), %d incentives worth %s", events, events/20, len(got), sum)
}
