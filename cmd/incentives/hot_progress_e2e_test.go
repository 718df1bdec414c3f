package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/adapters/auth"
	"github.com/incentives-platform/incentives/adapters/avro"
	"github.com/incentives-platform/incentives/adapters/kafka"
	"github.com/incentives-platform/incentives/adapters/postgres"
	"github.com/incentives-platform/incentives/adapters/redis"
	engineapp "github.com/incentives-platform/incentives/commands/engine"
	"github.com/incentives-platform/incentives/domain/campaign"
	"github.com/incentives-platform/incentives/domain/engine"
	"github.com/incentives-platform/incentives/domain/rules"
)

// switchFilter is a hot filter whose answer the test sets: what it proves
// is the hand-over, which must hold whatever the sketch says and whenever.
type switchFilter struct{ hot atomic.Bool }

func (f *switchFilter) Observe(_ context.Context, occ map[uuid.UUID][]uuid.UUID) (map[uuid.UUID]bool, error) {
	out := map[uuid.UUID]bool{}
	for _, ids := range occ {
		for _, id := range ids {
			out[id] = f.hot.Load()
		}
	}
	return out, nil
}

// failingStore rolls back instead of committing while fail is set: a batch
// that wrote Redis and then lost its database transaction.
type failingStore struct {
	engineapp.BatchStore
	fail atomic.Bool
}

var errCommitLost = errors.New("commit lost (test)")

func (s *failingStore) Begin(ctx context.Context) (engineapp.BatchTx, error) {
	tx, err := s.BatchStore.Begin(ctx)
	if err != nil || !s.fail.Load() {
		return tx, err
	}
	return failingTx{tx}, nil
}

type failingTx struct{ engineapp.BatchTx }

func (t failingTx) Commit(ctx context.Context) error {
	return errors.Join(errCommitLost, t.BatchTx.Rollback(ctx))
}

// A QUEST campaign turns hot and cold between batches, and batches fail
// after writing Redis, then are retried hot, cold, or after the campaign
// left the catalog. Every decision, every reward and every user's final
// progress equal those of the same events decided one at a time with the
// progress in memory; and once the campaign is cold again, Redis holds
// nothing of it.
func TestQuestProgressSurvivesHotColdHandOversAndLostCommits(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.Roles = "api,projector,relay"
	p := startPlatform(t, cfg)
	ctx := context.Background()
	tenantID := p.newTenant("Hot and cold")
	tenant := uuid.MustParse(tenantID)
	admin := p.token(auth.RoleTenantAdmin, tenant)
	const rule = `{"steps":[{"action":"LOGIN","count":3},{"action":"PURCHASE","count":2}],"windowDays":7,` +
		`"reward":{"type":"POINTS","currency":"POINTS","amount":"10"}}`
	campaignID := uuid.MustParse(p.activeCampaign(admin, `{"tenantId":"`+tenantID+`","name":"Quest","type":"QUEST","rule":`+rule+`}`))
	p.waitForEngineCatalog(admin, tenantID, "LOGIN", 1)

	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	_, codec, err := avro.LoadPlatform()
	if err != nil {
		t.Fatal(err)
	}
	events, err := postgres.NewEventStore(p.db, postgres.EventStoreConfig{Codec: codec, Outbox: kafka.DomainMessages{Codec: codec}})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := redis.Open(ctx, cfg.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rc.Close() })
	limiter, err := redis.NewLimiter(rc, redis.LimiterConfig{})
	if err != nil {
		t.Fatal(err)
	}
	hotStore := redis.NewHotProgress(rc)
	t.Cleanup(func() { _, _ = hotStore.ForgetCampaign(context.Background(), campaignID) })
	store := &failingStore{BatchStore: postgres.NewEngineStore(p.db, events)}
	filter := &switchFilter{}
	withCampaign := engineapp.NewCatalog(postgres.NewEngineCatalog(p.db, logger), time.Hour, logger)
	if err := withCampaign.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	// A catalog loaded before the campaign was active: it decides nothing
	// for it, as after a pause.
	without := engineapp.NewCatalog(staticCatalog{}, time.Hour, logger)
	if err := without.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	// A catalog in which the campaign is for a cohort nobody is in: the
	// retry of a lost batch decides its events without changing progress
	// (a cohort recomputed, a rule edited between the attempts), and
	// records the same decision ids as the lost attempt.
	snap, err := postgres.NewEngineCatalog(p.db, logger).LoadSnapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range snap.Campaigns {
		snap.Campaigns[i].CohortID = uuid.New()
	}
	outside := engineapp.NewCatalog(snapshotCatalog{snap}, time.Hour, logger)
	if err := outside.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	limits := redis.EngineLimits{Limiter: limiter}
	live := engineapp.New(store, withCampaign, limits, engineapp.WithHotProgress(filter, hotStore))
	paused := engineapp.New(store, without, limits, engineapp.WithHotProgress(filter, hotStore))
	notMember := engineapp.New(store, outside, limits, engineapp.WithHotProgress(filter, hotStore))
	// An engine that dies after its commit, before dropping what Redis
	// held of keys it moved to the database.
	crashing := engineapp.New(store, outside, limits, engineapp.WithHotProgress(filter, droplessProgress{hotStore}))

	users := []string{"u1", "u2", "u3", "u4"}
	at := time.Now().UTC().Truncate(time.Millisecond)
	var all []engine.ActionEvent // every event, in order
	var skipped, outOfCohort = map[uuid.UUID]bool{}, map[uuid.UUID]bool{}
	next := func(pattern string) []engine.ActionEvent {
		var batch []engine.ActionEvent
		for i, c := range pattern {
			code := "LOGIN"
			if c == 'P' {
				code = "PURCHASE"
			}
			at = at.Add(time.Second)
			batch = append(batch, engine.ActionEvent{EventID: uuid.New(), TenantID: tenant, UserID: users[i%len(users)],
				ActionCode: code, EventTs: at, Payload: map[string]any{}})
		}
		all = append(all, batch...)
		return batch
	}
	process := func(e *engineapp.Engine, batch []engine.ActionEvent, hot, fail bool) {
		t.Helper()
		filter.hot.Store(hot)
		store.fail.Store(fail)
		_, err := e.Process(ctx, batch)
		if fail != errors.Is(err, errCommitLost) {
			t.Fatalf("Process (hot %v, failing %v): %v", hot, fail, err)
		}
	}
	entry := func(user string) (engineapp.HotEntry, bool) {
		k := engineapp.ProgressKey{CampaignID: campaignID, UserID: user}
		got, err := hotStore.Load(ctx, []engineapp.ProgressKey{k})
		if err != nil {
			t.Fatal(err)
		}
		e, ok := got[k]
		return e, ok
	}

	process(live, next("LLLL"), false, false) // cold: the database
	process(live, next("LLPP"), true, false)  // hot: carried over to Redis
	if e, ok := entry("u1"); !ok || e.Pending != uuid.Nil || e.Latest.Version != 2 || !slices.Equal(e.Latest.Counts, []int{2, 0}) {
		t.Fatalf("u1 in Redis after a hot batch: %+v (held %v); want version 2, counts [2 0], settled", e, ok)
	}
	b := next("LPLP")
	process(live, b, true, true)
	process(notMember, b, true, false) // retried hot, deciding the same ids, changing nothing
	b = next("PLPL")
	process(live, b, true, true)
	process(crashing, b, false, false) // retried cold, changing nothing, Redis never cleaned
	for _, ev := range all[len(all)-8:] {
		outOfCohort[ev.EventID] = true
	}
	b = next("PLLP")
	process(live, b, true, true) // hot, lost: Redis was written, pending
	if e, ok := entry("u1"); !ok || e.Pending == uuid.Nil || !slices.Equal(e.Base.Counts, []int{2, 0}) {
		t.Fatalf("u1 in Redis after a lost hot batch: %+v; want pending on a base of counts [2 0]", e)
	}
	process(live, b, true, false) // retried hot: from the base, not the lost write
	b = next("LPLP")
	process(live, b, true, true)
	process(live, b, false, false) // retried cold: the database takes over
	if _, ok := entry("u2"); ok {
		t.Fatal("u2's progress is still in Redis after the database took it over")
	}
	process(live, next("PPLL"), true, false)
	b = next("LLLL")
	process(live, b, true, true)
	process(paused, b, true, false) // retried while the campaign is out of the catalog
	for _, ev := range b {
		skipped[ev.EventID] = true
	}
	process(live, next("PPPP"), true, false) // the lost write stays lost
	process(live, next("LLPL"), false, false)
	process(live, next("LPLP"), true, false)
	process(live, next("LLLL"), false, false) // cold at last: Redis drained

	// The reference: the same events one at a time, progress in memory.
	r, err := rules.Parse(rules.Quest, []byte(rule))
	if err != nil {
		t.Fatal(err)
	}
	c := engine.Campaign{ID: campaignID, TenantID: tenant, Version: 1, Status: campaign.StatusActive, Rule: r}
	progress := map[string]*engine.QuestProgress{}
	want := map[uuid.UUID]engine.Outcome{}
	issued := 0
	for _, ev := range all {
		if skipped[ev.EventID] {
			continue
		}
		cc := c
		if outOfCohort[ev.EventID] {
			cc.CohortID = uuid.New() // a cohort the user is not in
		}
		d, np := engine.Evaluate(ev, cc, false, progress[ev.UserID])
		if np != nil {
			progress[ev.UserID] = np
		}
		want[ev.EventID] = d.Outcome
		if d.Outcome == engine.OutcomeIssued {
			issued++
		}
	}
	if issued == 0 {
		t.Fatal("the reference completes no quest: the test proves too little")
	}

	rows, err := p.db.Pool.Query(ctx, `SELECT source_event_id, outcome FROM decision WHERE campaign_id = $1`, campaignID)
	if err != nil {
		t.Fatal(err)
	}
	got := map[uuid.UUID]engine.Outcome{}
	for rows.Next() {
		var id uuid.UUID
		var o string
		if err := rows.Scan(&id, &o); err != nil {
			t.Fatal(err)
		}
		got[id] = engine.Outcome(o)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, ev := range all {
		if got[ev.EventID] != want[ev.EventID] {
			t.Errorf("event %s of %s at %s: decided %q, want %q", ev.ActionCode, ev.UserID, ev.EventTs.Format(time.TimeOnly), got[ev.EventID], want[ev.EventID])
		}
	}
	if n := p.count(`SELECT count(*) FROM incentive WHERE campaign_id = $1`, campaignID); n != issued {
		t.Errorf("%d incentives, want %d", n, issued)
	}
	for _, u := range users {
		var counts []int32
		var completed *time.Time
		if err := p.db.Pool.QueryRow(ctx, `SELECT step_counts, completed_at FROM user_aggregation WHERE campaign_id = $1 AND user_id = $2`,
			campaignID, u).Scan(&counts, &completed); err != nil {
			t.Fatalf("%s's progress: %v", u, err)
		}
		w := progress[u]
		gotCounts := make([]int, len(counts))
		for i, n := range counts {
			gotCounts[i] = int(n)
		}
		if !slices.Equal(gotCounts, w.Counts) || (completed == nil) != w.Completed.IsZero() || (completed != nil && !completed.Equal(w.Completed)) {
			t.Errorf("%s's progress in the database: counts %v, completed %v; want %v, %v", u, gotCounts, completed, w.Counts, w.Completed)
		}
		if e, ok := entry(u); ok {
			t.Errorf("%s's progress is still in Redis once the campaign is cold: %+v", u, e)
		}
	}
	if t.Failed() {
		t.Log(fmt.Sprintf("%d events", len(all)))
	}
}

// staticCatalog is a catalog source without campaigns.
type staticCatalog struct{}

func (staticCatalog) LoadSnapshot(context.Context) (engineapp.Snapshot, error) {
	return engineapp.Snapshot{}, nil
}

// With a low threshold, a quest turns hot during a stream of events produced
// to tenant-events: the sketch lists it, its users' progress moves to Redis,
// the metrics say so, and every user who completes it is paid once.
func TestHotQuestEndToEnd(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.HotCampaignThreshold = 20
	cfg.HotCampaignSampleEvery = 1
	p := startPlatform(t, cfg)
	tenantID := p.newTenant("Hot quest")
	admin := p.token(auth.RoleTenantAdmin, uuid.MustParse(tenantID))
	quest := p.activeCampaign(admin, `{"name":"Three logins","type":"QUEST","rule":{"steps":[{"action":"LOGIN","count":3}],
		"reward":{"type":"POINTS","currency":"POINTS","amount":"30"}}}`)
	p.waitForEngineCatalog(admin, tenantID, "LOGIN", 1)

	const users = 40
	want := 0
	for round := range 3 {
		var batch []action
		for u := range users {
			batch = append(batch, newAction(tenantID, fmt.Sprintf("user-%02d", u), "LOGIN", ""))
		}
		produceActions(t, p.app.Brokers(), batch...)
		want += len(batch)
		eventually(t, fmt.Sprintf("round %d's events decided", round+1), func() bool {
			return p.count(`SELECT count(*) FROM decision WHERE campaign_id = $1`, quest) == want
		})
	}
	if n := p.count(`SELECT count(DISTINCT user_id) FROM incentive WHERE campaign_id = $1`, quest); n != users {
		t.Errorf("%d users paid, want all %d", n, users)
	}
	if n := p.count(`SELECT count(*) FROM incentive WHERE campaign_id = $1`, quest); n != users {
		t.Errorf("%d incentives, want %d: one per user", n, users)
	}
	rc, err := redis.Open(context.Background(), cfg.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	hot := redis.NewHotProgress(rc)
	var keys []engineapp.ProgressKey
	for u := range users {
		keys = append(keys, engineapp.ProgressKey{CampaignID: uuid.MustParse(quest), UserID: fmt.Sprintf("user-%02d", u)})
	}
	inRedis, err := hot.Load(context.Background(), keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(inRedis) == 0 {
		t.Fatal("no user's progress is in Redis: the quest never turned hot")
	}
	for k, e := range inRedis {
		if !slices.Equal(e.Latest.Counts, []int{3}) || e.Latest.Completed.IsZero() || e.Pending != uuid.Nil {
			t.Errorf("%s in Redis: %+v; want a settled, completed quest", k.UserID, e)
		}
	}
	metrics := string(p.request("GET", "/metrics", "", nil).body)
	for _, m := range []string{"campaign_hot_ratio 1", "cms_false_positive_rate 0"} {
		if !strings.Contains(metrics, "\n"+m+"\n") {
			t.Errorf("/metrics lacks %q", m)
		}
	}
	if !regexp.MustCompile(`\ncms_memory_bytes [1-9]`).MatchString(metrics) {
		t.Error("/metrics shows no sketch memory")
	}
}

type snapshotCatalog struct{ snap engineapp.Snapshot }

func (s snapshotCatalog) LoadSnapshot(context.Context) (engineapp.Snapshot, error) {
	return s.snap, nil
}

// droplessProgress never drops: an engine that died right after its commit.
type droplessProgress struct{ engineapp.HotProgress }

func (droplessProgress) Drop(context.Context, []engineapp.HotDrop) error {
	return errors.New("died before dropping (test)")
}
