package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/incentives-platform/incentives/adapters/auth"
	"github.com/incentives-platform/incentives/adapters/avro"
	"github.com/incentives-platform/incentives/adapters/kafka/kafkatest"
)

// action is an action event a test produces to tenant-events.
type action struct {
	id      uuid.UUID
	tenant  string
	user    string
	code    string
	at      time.Time
	payload string
}

func newAction(tenant, user, code, payload string) action {
	if payload == "" {
		payload = "{}"
	}
	return action{id: uuid.New(), tenant: tenant, user: user, code: code, at: time.Now().UTC().Truncate(time.Millisecond), payload: payload}
}

// produceActions writes actions to tenant-events, Avro single-object
// encoded and keyed by tenant, as a tenant's producer would.
func produceActions(t *testing.T, brokers []string, actions ...action) {
	t.Helper()
	reg, _, err := avro.LoadPlatform()
	if err != nil {
		t.Fatal(err)
	}
	schema, _ := reg.Schema("action-event")
	records := make([][2][]byte, len(actions))
	for i, a := range actions {
		v, err := schema.AppendSingleObject(nil, map[string]any{"eventId": a.id.String(), "tenantId": a.tenant, "userId": a.user,
			"actionCode": a.code, "eventTs": a.at, "payload": a.payload})
		if err != nil {
			t.Fatal(err)
		}
		records[i] = [2][]byte{[]byte(a.tenant), v}
	}
	kafkatest.Produce(t, brokers, "tenant-events", records...)
}

type issued struct {
	campaign, user, currency string
	amount                   decimal.Decimal
}

// incentives returns every incentive issued, by source event and campaign.
func (p *testPlatform) incentives() map[string]issued {
	p.t.Helper()
	rows, err := p.db.Pool.Query(context.Background(), `SELECT source_event_id, campaign_id::text, user_id, reward_currency, reward_amount::text FROM incentive`)
	if err != nil {
		p.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]issued{}
	for rows.Next() {
		var src, amount string
		var in issued
		if err := rows.Scan(&src, &in.campaign, &in.user, &in.currency, &amount); err != nil {
			p.t.Fatal(err)
		}
		in.amount = decimal.RequireFromString(amount)
		out[src+"/"+in.campaign] = in
	}
	return out
}

// loggedEvents is how many action events the engine has logged.
func (p *testPlatform) loggedEvents() int {
	p.t.Helper()
	var n int
	if err := p.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM event`).Scan(&n); err != nil {
		p.t.Fatal(err)
	}
	return n
}

// activeCampaign creates and activates a campaign, returning its id.
func (p *testPlatform) activeCampaign(token, body string) string {
	p.t.Helper()
	r := p.request("POST", "/api/v1/campaigns", token, body)
	if r.status != http.StatusCreated {
		p.t.Fatalf("create campaign: %d %s", r.status, r.body)
	}
	id := r.json(p.t)["campaignId"].(string)
	if r := p.request("POST", "/api/v1/campaigns/"+id+":activate", token, nil); r.status != http.StatusOK {
		p.t.Fatalf("activate: %d %s", r.status, r.body)
	}
	return id
}

// waitForEngineCatalog waits until the read models the engine's catalog is
// loaded from hold the tenant, its limits and n active campaigns for action,
// then for the catalog to refresh past that. (A catalog that has the
// campaigns but not yet the tenant decides TENANT_SUSPENDED.)
func (p *testPlatform) waitForEngineCatalog(token, tenant, action string, n int) {
	p.t.Helper()
	var limitsVersion int
	if err := p.db.Pool.QueryRow(context.Background(), `SELECT max(version) FROM event_store WHERE stream_id = $1`,
		"limits-"+tenant).Scan(&limitsVersion); err != nil {
		p.t.Fatal(err)
	}
	eventually(p.t, "the tenant and its latest limits projected", func() bool {
		return p.request("GET", "/api/v1/tenants/"+tenant, token, nil).status == http.StatusOK &&
			p.request("GET", "/api/v1/tenants/"+tenant+"/limits", token, nil, "X-Min-Version", fmt.Sprint(limitsVersion)).status == http.StatusOK
	})
	eventually(p.t, fmt.Sprintf("%d active %s campaigns searchable", n, action), func() bool {
		r := p.request("GET", "/api/v1/campaigns/search?tenantId="+tenant+"&action="+action, token, nil)
		return strings.Count(string(r.body), `"campaignId"`) == n
	})
	time.Sleep(3 * p.cfg.EngineCatalogRefresh)
}

func TestEngineRewardsSimpleQuestAndCohortCampaigns(t *testing.T) {
	t.Parallel()
	p := startPlatform(t, testConfig(t))
	tenantID := p.newTenant("Acme")
	admin := p.token(auth.RoleTenantAdmin, uuid.MustParse(tenantID))
	if r := p.request("POST", "/api/v1/tenants/"+tenantID+"/user-limits", admin, `{"maxPerDay":100}`); r.status != http.StatusOK {
		t.Fatalf("user limits: %d %s", r.status, r.body)
	}
	cohort := p.request("POST", "/api/v1/cohorts", admin, `{"name":"VIP","kind":"STATIC","userIds":["vip-1"]}`)
	if cohort.status != http.StatusCreated {
		t.Fatalf("cohort: %d %s", cohort.status, cohort.body)
	}
	cohortID := cohort.json(t)["cohortId"].(string)
	cashback := p.activeCampaign(admin, `{"name":"Cashback","type":"SIMPLE","rule":{"action":"PURCHASE","condition":"event.payload.amount >= 100",
		"reward":{"type":"CASHBACK","currency":"INR","percent":"5","percentOf":"amount","maxAmount":"100"}}}`)
	ordered := p.activeCampaign(admin, `{"name":"Login twice then buy","type":"QUEST","rule":{"steps":[{"action":"LOGIN","count":2},{"action":"PURCHASE"}],
		"ordered":true,"windowDays":7,"reward":{"type":"POINTS","currency":"POINTS","amount":"500"}}}`)
	unordered := p.activeCampaign(admin, `{"name":"Share and refer","type":"QUEST","rule":{"steps":[{"action":"REFERRAL"},
		{"action":"SHARE","count":2,"condition":"event.payload.channel == 'app'"}],"reward":{"type":"COUPON","currency":"COUPON","amount":"1"}}}`)
	vip := p.activeCampaign(admin, `{"name":"VIP login","type":"SIMPLE","cohortId":"`+cohortID+`","rule":{"action":"LOGIN",
		"reward":{"type":"POINTS","currency":"POINTS","amount":"10"}}}`)
	p.waitForEngineCatalog(admin, tenantID, "LOGIN", 2)

	u1 := []action{
		newAction(tenantID, "u1", "LOGIN", ""),
		newAction(tenantID, "u1", "PURCHASE", `{"amount": 250}`), // cashback 12.50; the quest wants a second LOGIN first
		newAction(tenantID, "u1", "LOGIN", ""),
		newAction(tenantID, "u1", "PURCHASE", `{"amount": 80}`),   // below the condition; completes the quest
		newAction(tenantID, "u1", "PURCHASE", `{"amount": 5000}`), // cashback capped at 100; the quest rewards once
	}
	others := []action{
		newAction(tenantID, "vip-1", "LOGIN", ""),
		newAction(tenantID, "u2", "LOGIN", ""),
		newAction(tenantID, "u3", "SHARE", `{"channel":"app"}`),
		newAction(tenantID, "u3", "SHARE", `{"channel":"web"}`),
		newAction(tenantID, "u3", "SHARE", `{"channel":"app"}`),
		newAction(tenantID, "u3", "REFERRAL", ""),
	}
	all := append(append([]action{}, u1...), others...)
	produceActions(t, p.app.Brokers(), all...)
	want := map[string]issued{
		u1[1].id.String() + "/" + cashback:      {cashback, "u1", "INR", decimal.RequireFromString("12.5")},
		u1[3].id.String() + "/" + ordered:       {ordered, "u1", "POINTS", decimal.NewFromInt(500)},
		u1[4].id.String() + "/" + cashback:      {cashback, "u1", "INR", decimal.NewFromInt(100)},
		others[0].id.String() + "/" + vip:       {vip, "vip-1", "POINTS", decimal.NewFromInt(10)},
		others[5].id.String() + "/" + unordered: {unordered, "u3", "COUPON", decimal.NewFromInt(1)},
	}
	eventually(t, "every event logged and decided", func() bool { return p.loggedEvents() == len(all) })
	assertIncentives(t, p.incentives(), want)

	// Each incentive reached incentive-generated, keyed by user.
	reg, _, _ := avro.LoadPlatform()
	recs := kafkatest.ReadN(t, p.app.Brokers(), len(want), 15*time.Second, "incentive-generated")
	for _, r := range recs {
		_, v, err := reg.Decode(r.Value)
		if err != nil || r.Key != v["userId"] {
			t.Fatalf("incentive-generated record %+v: %v %v", r, v, err)
		}
	}

	// Why u1 got what it got.
	r := p.request("GET", "/api/v1/tenants/"+tenantID+"/users/u1/decisions?limit=100", admin, nil)
	if r.status != http.StatusOK {
		t.Fatalf("decisions: %d %s", r.status, r.body)
	}
	var page struct {
		Items []map[string]any `json:"items"`
	}
	if err := json.Unmarshal(r.body, &page); err != nil {
		t.Fatal(err)
	}
	outcomes := map[string]int{}
	for _, d := range page.Items {
		outcomes[d["outcome"].(string)]++
	}
	if outcomes["ISSUED"] != 3 || outcomes["CONDITION_FALSE"] == 0 || outcomes["ALREADY_COMPLETED"] != 1 {
		t.Fatalf("u1's decisions by outcome: %v", outcomes)
	}

	// Redelivery changes nothing; garbage goes to the DLQ and the stream goes on.
	kafkatest.Produce(t, p.app.Brokers(), "tenant-events", [2][]byte{[]byte(tenantID), []byte("not avro")})
	produceActions(t, p.app.Brokers(), all...)
	marker := newAction(tenantID, "u9", "PURCHASE", `{"amount": 1000}`)
	produceActions(t, p.app.Brokers(), marker)
	want[marker.id.String()+"/"+cashback] = issued{cashback, "u9", "INR", decimal.NewFromInt(50)}
	eventually(t, "the marker decided", func() bool { return len(p.incentives()) == len(want) })
	assertIncentives(t, p.incentives(), want)
	dlq := kafkatest.ReadN(t, p.app.Brokers(), 1, 15*time.Second, "tenant-events.dlq")
	if string(dlq[0].Value) != "not avro" || dlq[0].Headers["error"] == "" {
		t.Fatalf("dead letter %+v", dlq[0])
	}
	// Operators see the same counts.
	var m string
	defer func() {
		if t.Failed() {
			for _, l := range strings.Split(m, "\n") {
				if strings.HasPrefix(l, "incentives_engine") {
					t.Log(l)
				}
			}
		}
	}()
	eventually(t, "engine metrics", func() bool {
		m = string(p.request("GET", "/metrics", "", nil).body)
		return strings.Contains(m, fmt.Sprintf("incentives_engine_incentives_total %d\n", len(want))) &&
			strings.Contains(m, `incentives_engine_events_total{result="invalid"} 1`+"\n")
	})
}

func assertIncentives(t *testing.T, got, want map[string]issued) {
	t.Helper()
	for k, w := range want {
		g, ok := got[k]
		if !ok || g.user != w.user || g.currency != w.currency || !g.amount.Equal(w.amount) {
			t.Errorf("incentive %s = %+v (present %v), want %+v", k, g, ok, w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d incentives issued, want %d: %v", len(got), len(want), got)
	}
}

// Eight producers hammer one tenant's users at once: no user ever gets more
// than the user cap, the tenant no more than its cap, and the caps are
// reached exactly.
func TestEngineNeverExceedsLimitsUnderConcurrentProducers(t *testing.T) {
	t.Parallel()
	p := startPlatform(t, testConfig(t))
	tenantID := p.newTenant("Acme")
	admin := p.token(auth.RoleTenantAdmin, uuid.MustParse(tenantID))
	for path, body := range map[string]string{"limits": `{"maxPerDay":20}`, "user-limits": `{"maxPerDay":7}`} {
		if r := p.request("POST", "/api/v1/tenants/"+tenantID+"/"+path, admin, body); r.status != http.StatusOK {
			t.Fatalf("%s: %d %s", path, r.status, r.body)
		}
	}
	p.activeCampaign(admin, `{"name":"Login points","type":"SIMPLE","rule":{"action":"LOGIN","reward":{"type":"POINTS","currency":"POINTS","amount":"1"}}}`)
	p.waitForEngineCatalog(admin, tenantID, "LOGIN", 1)
	const producers, each = 8, 50
	var wg sync.WaitGroup
	for w := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			batch := make([]action, each)
			for i := range batch {
				batch[i] = newAction(tenantID, fmt.Sprint("user-", (w+i)%5), "LOGIN", "")
			}
			produceActions(t, p.app.Brokers(), batch...)
		}()
	}
	wg.Wait()
	eventually(t, "every event logged", func() bool { return p.loggedEvents() == producers*each })
	got := p.incentives()
	perUser := map[string]int{}
	for _, in := range got {
		perUser[in.user]++
	}
	for u, n := range perUser {
		if n > 7 {
			t.Errorf("%s got %d rewards, over its daily cap of 7", u, n)
		}
	}
	if len(got) != 20 {
		t.Fatalf("%d rewards issued, want the tenant's daily cap of 20 exactly (per user %v)", len(got), perUser)
	}
}
