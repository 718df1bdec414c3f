package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/incentives-platform/incentives/adapters/auth"
	"github.com/incentives-platform/incentives/adapters/avro"
	"github.com/incentives-platform/incentives/adapters/kafka"
	"github.com/incentives-platform/incentives/adapters/postgres"
	"github.com/incentives-platform/incentives/adapters/redis"
	"github.com/incentives-platform/incentives/domain/incentive"
	"github.com/incentives-platform/incentives/domain/rules"
	"github.com/incentives-platform/incentives/projections"
)

// readModels are the read-model tables replay rebuilds, with their keys,
// and the stream each row reflects: a row is projected once its version is
// its stream's last.
var readModels = []struct {
	table, key, aggregate, stream string
}{
	{"tenant", "tenant_id", "tenant", "tenant_id"},
	{"tenant_limit", "tenant_id, scope", "limits", "tenant_id"},
	{"campaign", "campaign_id", "campaign", "campaign_id"},
	{"cohort", "cohort_id", "cohort", "cohort_id"},
	{"incentive_view", "incentive_id", "incentive", "incentive_id"},
}

// tableRows returns every row of a table as text, in key order: what the
// determinism test compares, row by row.
func (p *testPlatform) tableRows(table, key string) []string {
	return p.texts(`SELECT t::text FROM ` + table + ` t ORDER BY ` + key)
}

// texts returns the one text column of a query's rows.
func (p *testPlatform) texts(query string, args ...any) []string {
	p.t.Helper()
	rows, err := p.db.Pool.Query(context.Background(), query, args...)
	if err != nil {
		p.t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		p.t.Fatal(err)
	}
	return out
}

// checksum is the md5 of a table's rows in key order.
func (p *testPlatform) checksum(table, key string) string {
	p.t.Helper()
	var sum string
	if err := p.db.Pool.QueryRow(context.Background(),
		`SELECT coalesce(md5(string_agg(t::text, E'\n' ORDER BY `+key+`)), '') FROM `+table+` t`).Scan(&sum); err != nil {
		p.t.Fatal(err)
	}
	return sum
}

// waitProjected waits until every read model reflects the last event of
// every stream in the event store.
func (p *testPlatform) waitProjected() {
	p.t.Helper()
	for _, m := range readModels {
		eventually(p.t, m.table+" projected", func() bool {
			return p.count(`SELECT count(*) FROM (SELECT aggregate_id, max(version) AS v FROM event_store WHERE aggregate = $1 GROUP BY 1) e
				WHERE NOT EXISTS (SELECT 1 FROM `+m.table+` r WHERE r.`+m.stream+` = e.aggregate_id AND r.version = e.v)`, m.aggregate) == 0
		})
	}
}

// buildReadModels makes a history touching every read model: tenants (one
// suspended), limits set twice, campaigns created, updated, activated,
// paused and ended, and cohorts.
func (p *testPlatform) buildReadModels(tenants int, withIncentives bool) {
	p.t.Helper()
	platform := p.token(auth.RolePlatformAdmin, uuid.Nil)
	for i := range tenants {
		id := p.newTenant(fmt.Sprintf("Replay %d", i))
		admin := p.token(auth.RoleTenantAdmin, uuid.MustParse(id))
		if r := p.request("POST", "/api/v1/tenants/"+id+"/user-limits", admin, fmt.Sprintf(`{"maxPerDay":%d}`, 20+i)); r.status != http.StatusOK {
			p.t.Fatalf("user limits: %d %s", r.status, r.body)
		}
		body := func(j int) string {
			return fmt.Sprintf(`{"name":"C%d","type":"SIMPLE","rule":{"action":"LOGIN","reward":{"type":"POINTS","currency":"POINTS","amount":"%d"}}}`, j, j+1)
		}
		for j := range 2 {
			c := p.activeCampaign(admin, body(j))
			if j == 1 {
				if r := p.request("POST", "/api/v1/campaigns/"+c+":pause", admin, nil); r.status != http.StatusOK {
					p.t.Fatalf("pause: %d %s", r.status, r.body)
				}
			}
		}
		if withIncentives {
			p.waitForEngineCatalog(admin, id, "LOGIN", 1)
			produceActions(p.t, p.app.Brokers(), newAction(id, "u1", "LOGIN", ""), newAction(id, "u2", "LOGIN", ""), newAction(id, "u1", "LOGIN", ""))
			eventually(p.t, "incentives issued", func() bool {
				return p.count(`SELECT count(*) FROM incentive WHERE tenant_id = $1`, id) == 3
			})
		}
		draft := p.request("POST", "/api/v1/campaigns", admin, body(2))
		if draft.status != http.StatusCreated {
			p.t.Fatalf("create: %d %s", draft.status, draft.body)
		}
		if r := p.request("PUT", "/api/v1/campaigns/"+draft.json(p.t)["campaignId"].(string), admin, body(3)); r.status != http.StatusOK {
			p.t.Fatalf("update: %d %s", r.status, r.body)
		}
		if r := p.request("POST", "/api/v1/cohorts", admin, `{"name":"VIP","kind":"STATIC","userIds":["a","b"]}`); r.status != http.StatusCreated {
			p.t.Fatalf("cohort: %d %s", r.status, r.body)
		}
		if i == 0 {
			if r := p.request("POST", "/api/v1/tenants/"+id+":suspend", platform, nil); r.status != http.StatusOK {
				p.t.Fatalf("suspend: %d %s", r.status, r.body)
			}
		}
	}
}

// Read models built live by the projections and rebuilt by `incentives
// replay` are identical, row by row; and a replay swaps in the rebuilt
// tables while the platform keeps serving and writing.
func TestReplayRebuildsIdenticalReadModelsWhileServing(t *testing.T) {
	t.Parallel()
	p := startPlatform(t, testConfig(t))
	p.buildReadModels(3, true)
	p.waitProjected()
	before := map[string][]string{}
	sums := map[string]string{}
	for _, m := range readModels {
		before[m.table], sums[m.table] = p.tableRows(m.table, m.key), p.checksum(m.table, m.key)
		if len(before[m.table]) == 0 {
			t.Fatalf("%s is empty: the test proves nothing", m.table)
		}
	}
	env := map[string]string{"DATABASE_URL": p.cfg.DatabaseURL, "REDIS_URL": p.cfg.RedisURL}
	oids := p.tableOIDs()
	// Another platform's tenant in the same Redis (a developer's, another
	// test's): the replay must leave its aggregates alone.
	rc, err := redis.Open(context.Background(), p.cfg.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	alien, aliens := uuid.New(), redis.NewUserRewards(rc)
	t.Cleanup(func() { _, _ = aliens.ForgetTenant(context.Background(), alien) })
	if _, err := aliens.ApplyIncentive(context.Background(), projections.Checkpoint{Projection: projections.UserRewardsName, Topic: "ic.domain.incentive", Offset: 1, Position: 1},
		incentive.Issued{IncentiveID: uuid.New(), DecisionID: uuid.New(), TenantID: alien, CampaignID: uuid.New(), CampaignVersion: 1, UserID: "someone",
			SourceEventID: uuid.New(), RewardType: rules.RewardPoints, RewardCurrency: "POINTS", RewardAmount: decimal.NewFromInt(5), IssuedAt: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	rewards := p.userRewardLines()
	if len(rewards) == 0 {
		t.Fatal("no user aggregates in Redis: the test proves nothing")
	}
	// One incentive the live projection has not written yet, as when it
	// lags: the swap publishes its change event, and only its.
	var lagging string
	if err := p.db.Pool.QueryRow(context.Background(), `DELETE FROM incentive_view WHERE incentive_id = (SELECT incentive_id FROM incentive_view ORDER BY position LIMIT 1) RETURNING incentive_id::text`).Scan(&lagging); err != nil {
		t.Fatal(err)
	}
	changes := p.changeEvents()

	code, out, errOut := runCLI(t, env, "replay", "--projection", "all")
	if code != 0 {
		t.Fatalf("replay: exit %d: %s%s", code, out, errOut)
	}
	// Not a terminal: progress as log lines, with the rate and what is left.
	if !strings.Contains(errOut, "events/s") || !strings.Contains(errOut, "left") || !strings.Contains(out, "the rebuilt tables are live") {
		t.Errorf("replay output: stdout %q, stderr %q", out, errOut)
	}
	for _, m := range readModels {
		if got := p.checksum(m.table, m.key); got != sums[m.table] {
			after := p.tableRows(m.table, m.key)
			t.Errorf("%s after replay: checksum %s, want %s\nrows only before: %v\nrows only after: %v", m.table, got, sums[m.table],
				minus(before[m.table], after), minus(after, before[m.table]))
		}
	}
	if got := p.changeEvents(); len(got) != len(changes)+1 || !strings.Contains(got[len(got)-1], `"op":"c"`) ||
		!strings.Contains(got[len(got)-1], lagging) {
		t.Errorf("db.incentives after the replay: %d change events, want %d, the last the create of %s: %v", len(got), len(changes)+1, lagging, got[len(changes):])
	}
	if got := p.userRewardLines(); !slices.Equal(got, rewards) {
		t.Errorf("Redis user aggregates after replay:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(rewards, "\n"))
	}
	if v, ok, err := aliens.Load(context.Background(), alien, "someone"); err != nil || !ok || v.Rewards[projections.RewardKey{Type: rules.RewardPoints, Currency: "POINTS"}].Count != 1 {
		t.Errorf("another platform's tenant after the replay: %+v (held %v, %v); want its one reward untouched", v, ok, err)
	}
	for table, oid := range p.tableOIDs() {
		if oid == oids[table] {
			t.Errorf("%s is the same table after the replay: nothing was swapped in", table)
		}
	}
	if n := p.count(`SELECT count(*) FROM replay_state`); n != 0 {
		t.Errorf("%d replay_state rows left", n)
	}
	if n := p.count(`SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'replay\_%'`); n != 0 {
		t.Errorf("%d shadow schemas left", n)
	}
	var idx []string
	rows, err := p.db.Pool.Query(context.Background(), `SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND tablename = ANY($1) ORDER BY 1`,
		[]string{"tenant", "tenant_limit", "campaign", "cohort", "incentive_view"})
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		_ = rows.Scan(&n)
		idx = append(idx, n)
	}
	rows.Close()
	for _, want := range []string{"tenant_created_idx", "campaign_tenant_status_idx", "campaign_rule_json_idx", "cohort_tenant_created_idx", "cohort_dynamic_computed_idx", "incentive_view_user_issued_idx"} {
		if !slices.Contains(idx, want) {
			t.Errorf("index %s is gone after the swap (indexes: %v)", want, idx)
		}
	}

	// Replays while the API writes: everything written before, during and
	// after is in the read models once projected.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			p.buildReadModels(1, false)
		}
	}()
	for range 3 {
		if code, out, errOut := runCLI(t, env, "replay", "--projection", "tenants,campaigns,cohorts,incentives,user-aggregation"); code != 0 {
			t.Errorf("replay while serving: exit %d: %s%s", code, out, errOut)
		}
	}
	close(stop)
	wg.Wait()
	p.waitProjected()
	for _, m := range readModels {
		sums[m.table] = p.checksum(m.table, m.key)
	}
	rewards = p.userRewardLines()
	if code, out, errOut := runCLI(t, env, "replay"); code != 0 {
		t.Fatalf("replay: exit %d: %s%s", code, out, errOut)
	}
	if got := p.userRewardLines(); !slices.Equal(got, rewards) {
		t.Errorf("Redis user aggregates after replays under load changed:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(rewards, "\n"))
	}
	for _, m := range readModels {
		if got := p.checksum(m.table, m.key); got != sums[m.table] {
			t.Errorf("%s: a replay after replays under load changed it (checksum %s, want %s)", m.table, got, sums[m.table])
		}
	}
}

// changeEvents returns the db.incentives change events in the outbox, in
// order.
func (p *testPlatform) changeEvents() []string {
	return p.texts(`SELECT convert_from(decode(payload->>'payload', 'base64'), 'UTF8') FROM watermill_outbox
		WHERE payload->>'destination_topic' = 'db.incentives' ORDER BY transaction_id, "offset"`)
}

// userRewardLines returns the Redis user aggregates of the platform's
// tenants as sorted lines, once the projection has counted every incentive.
func (p *testPlatform) userRewardLines() []string {
	p.t.Helper()
	ctx := context.Background()
	var tenants []uuid.UUID
	rows, err := p.db.Pool.Query(ctx, `SELECT tenant_id FROM tenant`)
	if err != nil {
		p.t.Fatal(err)
	}
	for rows.Next() {
		var id uuid.UUID
		_ = rows.Scan(&id)
		tenants = append(tenants, id)
	}
	rows.Close()
	for _, id := range tenants {
		p.awaitUserRewards(id)
	}
	c, err := redis.Open(ctx, p.cfg.RedisURL)
	if err != nil {
		p.t.Fatal(err)
	}
	defer c.Close()
	totals, err := redis.NewUserRewards(c).Dump(ctx, tenants...)
	if err != nil {
		p.t.Fatal(err)
	}
	return totals.Lines()
}

// tableOIDs returns the identity of each read-model table.
func (p *testPlatform) tableOIDs() map[string]uint32 {
	p.t.Helper()
	out := map[string]uint32{}
	for _, m := range readModels {
		var oid uint32
		if err := p.db.Pool.QueryRow(context.Background(), `SELECT $1::regclass::oid`, m.table).Scan(&oid); err != nil {
			p.t.Fatal(err)
		}
		out[m.table] = oid
	}
	return out
}

// minus returns the rows of a not in b.
func minus(a, b []string) []string {
	var out []string
	for _, r := range a {
		if !slices.Contains(b, r) {
			out = append(out, r)
		}
	}
	return out
}

func TestReplayRefusesBadFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"replay", "--projection", "nope"},
		{"replay", "--projection", ""},
		{"replay", "--from", "5", "--since", "2026-01-01T00:00:00Z"},
		{"replay", "--since", "yesterday"},
		{"replay", "--from", "-1"},
	} {
		code, _, errOut := runCLI(t, nil, args...)
		if code != 2 || !strings.Contains(errOut, "--") {
			t.Errorf("%v: exit %d, stderr %q; want 2 naming the flag", args, code, errOut)
		}
	}
}

// An interrupted replay leaves its shadow tables and its place, and the
// live tables untouched; the next run resumes it and ends with the same
// read models. A new start point is refused while one is interrupted,
// unless --restart.
func TestReplayResumesAfterAnInterruption(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	p := startPlatform(t, cfg)
	p.buildReadModels(4, false)
	p.waitProjected()
	sums := map[string]string{}
	for _, m := range readModels {
		sums[m.table] = p.checksum(m.table, m.key)
	}
	oids := p.tableOIDs()

	_, codec, err := avro.LoadPlatform()
	if err != nil {
		t.Fatal(err)
	}
	store, err := postgres.NewEventStore(p.db, postgres.EventStoreConfig{Codec: codec, Outbox: kafka.DomainMessages{Codec: codec}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	models := []*postgres.ReplayModel{postgres.TenantsReplay(), postgres.CampaignsReplay(), postgres.CohortsReplay()}
	err = store.Replay(ctx, models, postgres.ReplayOptions{BatchSize: 4, FlushEvery: 4, Progress: func(r postgres.ReplayProgress) {
		if r.Read >= 12 {
			cancel()
		}
	}})
	if err == nil {
		t.Fatal("the interrupted replay returned no error")
	}
	if n := p.count(`SELECT count(*) FROM replay_state WHERE events > 0`); n != 3 {
		t.Fatalf("%d projections have a resume point, want 3", n)
	}
	if n := p.count(`SELECT count(*) FROM replay_tenants.tenant`); n == 0 {
		t.Fatal("the interrupted replay wrote no shadow rows")
	}
	for table, oid := range p.tableOIDs() {
		if oid != oids[table] {
			t.Fatalf("%s was swapped by an interrupted replay", table)
		}
	}
	env := map[string]string{"DATABASE_URL": cfg.DatabaseURL}
	if code, _, errOut := runCLI(t, env, "replay", "--projection", "campaigns", "--from", "1"); code != 1 || !strings.Contains(errOut, "interrupted") {
		t.Fatalf("a new start over an interrupted replay: exit %d, %s", code, errOut)
	}
	if code, out, errOut := runCLI(t, env, "replay", "--projection", "tenants,campaigns,cohorts"); code != 0 {
		t.Fatalf("resume: exit %d: %s%s", code, out, errOut)
	}
	for _, m := range readModels {
		if got := p.checksum(m.table, m.key); got != sums[m.table] {
			t.Errorf("%s after a resumed replay: checksum %s, want %s", m.table, got, sums[m.table])
		}
	}
	if n := p.count(`SELECT count(*) FROM replay_state`); n != 0 {
		t.Errorf("%d replay_state rows left after the resumed replay", n)
	}
}

// A replay of incentives from a later start rebuilds incentive_view with
// the incentives since then, and db.incentives gets a delete for each row
// the table no longer holds, so a sink stays equal to the table.
func TestReplaySincePublishesDeletesForRowsBeforeIt(t *testing.T) {
	t.Parallel()
	p := startPlatform(t, testConfig(t))
	p.buildReadModels(2, true)
	p.waitProjected()
	since := time.Now().UTC()
	time.Sleep(10 * time.Millisecond)
	p.buildReadModels(1, true)
	p.waitProjected()
	var older, newer int
	if err := p.db.Pool.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE e.recorded_at < $1), count(*) FILTER (WHERE e.recorded_at >= $1)
		FROM incentive_view v JOIN event_store e ON e.position = v.position`, since).Scan(&older, &newer); err != nil {
		t.Fatal(err)
	}
	if older == 0 || newer == 0 {
		t.Fatalf("%d incentives before and %d since the start: the test proves nothing", older, newer)
	}
	changes := len(p.changeEvents())
	env := map[string]string{"DATABASE_URL": p.cfg.DatabaseURL}
	if code, out, errOut := runCLI(t, env, "replay", "--projection", "incentives", "--since", since.Format(time.RFC3339Nano)); code != 0 {
		t.Fatalf("replay --since: exit %d: %s%s", code, out, errOut)
	}
	if n := p.count(`SELECT count(*) FROM incentive_view`); n != newer {
		t.Errorf("incentive_view holds %d rows after the replay since %s, want the %d since then", n, since, newer)
	}
	got := p.changeEvents()[changes:]
	deletes := 0
	for _, c := range got {
		if strings.Contains(c, `"op":"d"`) && strings.Contains(c, `"after":null`) {
			deletes++
		}
	}
	if deletes != older || len(got) != older {
		t.Errorf("db.incentives got %d change events, %d deletes; want %d deletes only: %v", len(got), deletes, older, got)
	}
}
