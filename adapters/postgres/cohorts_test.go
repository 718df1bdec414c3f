package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/adapters/postgres"
	"github.com/incentives-platform/incentives/adapters/postgres/pgtest"
	"github.com/incentives-platform/incentives/commands"
	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/cohort"
	"github.com/incentives-platform/incentives/domain/rules"
	"github.com/incentives-platform/incentives/projections"
)

func TestCohortsProjectionIsIdempotentAndCheckpointed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.MustOpen(t)
	store := postgres.NewCohorts(db)
	p := projections.NewCohorts(store)
	id, tenantID := uuid.New(), uuid.New()
	t0 := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	members := cohort.Members{Generation: uuid.New(), Count: 7}
	deliver := func(offset, version int64, e domain.Event) {
		t.Helper()
		err := p.Handle(ctx, projections.Delivery{
			Event:      domain.RecordedEvent{Stream: cohort.Stream(id), Version: version, Event: e, Position: 100 + offset},
			Checkpoint: projections.Checkpoint{Projection: p.Name(), Topic: "ic.domain.cohort", Partition: 1, Offset: offset, Position: 100 + offset},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	created := cohort.Created{CohortID: id, TenantID: tenantID, Name: "Buyers", Kind: cohort.Dynamic, Rule: "user.total > 1", CreatedAt: t0}
	deliver(0, 1, created)
	got, err := store.Cohort(ctx, id)
	want := projections.CohortView{CohortID: id, TenantID: tenantID, Name: "Buyers", Kind: cohort.Dynamic, Rule: "user.total > 1",
		CreatedAt: t0, UpdatedAt: t0, Version: 1}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("never computed: Cohort = %+v, %v; want %+v", got, err, want)
	}
	recomputed := cohort.Recomputed{CohortID: id, JobID: uuid.New(), Members: members, ComputedAt: t0.Add(time.Hour)}
	deliver(1, 2, recomputed)
	deliver(2, 1, created) // redelivered
	deliver(3, 2, recomputed)
	want.Members, want.ComputedAt, want.UpdatedAt, want.Version = members, t0.Add(time.Hour), t0.Add(time.Hour), 2
	if got, err := store.Cohort(ctx, id); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("recomputed: Cohort = %+v, %v; want %+v", got, err, want)
	}
	cps, err := db.Checkpoints(ctx, p.Name())
	if err != nil || len(cps) != 1 || cps[0].Offset != 3 || cps[0].Position != 103 {
		t.Fatalf("checkpoints = %+v, %v", cps, err)
	}
	if _, err := store.Cohort(ctx, uuid.New()); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("Cohort(unknown) error = %v, want ErrNotFound", err)
	}
}

func TestMemberSetsCountEachIDOnceAndDeleteInChunks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sets := postgres.NewMemberSets(pgtest.MustOpen(t))
	gen, other := uuid.New(), uuid.New()
	add := func(g uuid.UUID, ids []string, want int64) {
		t.Helper()
		if n, err := sets.Add(ctx, g, ids); err != nil || n != want {
			t.Fatalf("Add(%d ids) = %d, %v; want %d new", len(ids), n, err, want)
		}
	}
	add(gen, []string{"a", "b", "a"}, 2)      // repeated within a batch
	add(gen, []string{"c", "b", "d", "c"}, 2) // and across batches
	add(gen, nil, 0)
	add(other, []string{"a"}, 1) // another set is another set
	for id, want := range map[string]bool{"a": true, "d": true, "e": false} {
		if ok, err := sets.IsMember(ctx, gen, id); err != nil || ok != want {
			t.Errorf("IsMember(%q) = %v, %v; want %v", id, ok, err, want)
		}
	}
	// More rows than one delete statement removes.
	big := make([]string, 25_000)
	for i := range big {
		big[i] = fmt.Sprint("u-", i)
	}
	add(gen, big, 25_000)
	if err := sets.Delete(ctx, gen); err != nil {
		t.Fatal(err)
	}
	if n, err := sets.Size(ctx, gen); err != nil || n != 0 {
		t.Fatalf("after Delete the set holds %d, %v", n, err)
	}
	if n, err := sets.Size(ctx, other); err != nil || n != 1 {
		t.Fatalf("deleting one set changed another: %d, %v", n, err)
	}
	if err := sets.Delete(ctx, uuid.New()); err != nil {
		t.Fatalf("Delete(unknown) = %v", err)
	}
}

// Writing a large set in batches costs one batch of memory, not the set.
// Not parallel: it measures this process's heap.
func TestMemberSetOf200kIDsInBatchesKeepsMemoryFlat(t *testing.T) {
	ctx := context.Background()
	sets := postgres.NewMemberSets(pgtest.MustOpen(t))
	gen := uuid.New()
	const total, batchSize = 200_000, 10_000
	batch := make([]string, batchSize)
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapAlloc, uint64(0)
	start := time.Now()
	var count int64
	for b := range total / batchSize {
		for i := range batch {
			batch[i] = fmt.Sprintf("user-%08d", b*batchSize+i)
		}
		n, err := sets.Add(ctx, gen, batch)
		if err != nil {
			t.Fatal(err)
		}
		count += n
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapAlloc)
	}
	took := time.Since(start)
	if count != total {
		t.Fatalf("stored %d of %d", count, total)
	}
	grew := int64(peak) - int64(base)
	t.Logf("%d ids in %v (%.0f ids/s); live heap %.1f MiB at the start, at most %.1f MiB while writing",
		total, took, total/took.Seconds(), float64(base)/(1<<20), float64(peak)/(1<<20))
	// The ids alone are about 10 MiB; a leak of the set would show far more.
	if grew > 24<<20 {
		t.Fatalf("heap grew %d MiB while writing the set in batches", grew>>20)
	}
}

func TestCohortJobsClaimSkipsLockedJobsAndTakesOverDeadWorkers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.MustOpen(t)
	jobs := postgres.NewCohortJobs(db)
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	enqueue := func(cohortID uuid.UUID, at time.Time) commands.CohortJob {
		t.Helper()
		j, err := jobs.Enqueue(ctx, commands.CohortJob{JobID: uuid.New(), CohortID: cohortID, TenantID: uuid.New(), Status: commands.JobQueued, CreatedAt: at})
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	a, b := enqueue(uuid.New(), t0), enqueue(uuid.New(), t0.Add(time.Millisecond))
	if again := enqueue(a.CohortID, t0); again.JobID != a.JobID {
		t.Fatalf("a second Enqueue of a queued cohort made job %v, want %v", again.JobID, a.JobID)
	}

	// A worker holds the oldest job's row mid-claim; another claims the next
	// one instead of waiting.
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM cohort_job WHERE job_id = $1 FOR UPDATE`, a.JobID); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	got, ok, err := jobs.Claim(cctx, time.Hour)
	cancel()
	if err != nil || !ok || got.JobID != b.JobID || got.Status != commands.JobRunning || got.Attempt != 1 || got.StartedAt.IsZero() {
		t.Fatalf("Claim past a locked job = %+v, %v, %v; want job b running", got, ok, err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	// Racing workers each get a different job, or none.
	var (
		mu      sync.Mutex
		claimed []uuid.UUID
		wg      sync.WaitGroup
	)
	for range 4 {
		wg.Go(func() {
			j, ok, err := jobs.Claim(ctx, time.Hour)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				claimed = append(claimed, j.JobID)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if !slices.Equal(claimed, []uuid.UUID{a.JobID}) {
		t.Fatalf("four racing claims got %v, want job a once", claimed)
	}
	if running := enqueue(b.CohortID, t0); running.JobID != b.JobID || running.Status != commands.JobRunning {
		t.Fatalf("Enqueue of a cohort whose job runs = %+v, want that job", running)
	}

	// a's worker dies while b's keeps reporting: after the lease a is
	// claimed again, and its dead worker's late reports are refused.
	time.Sleep(20 * time.Millisecond)
	if err := jobs.Report(ctx, got); err != nil {
		t.Fatal(err)
	}
	retaken, ok, err := jobs.Claim(ctx, 10*time.Millisecond)
	if err != nil || !ok || retaken.JobID != a.JobID || retaken.Attempt != 2 {
		t.Fatalf("claim after the lease = %+v, %v, %v; want job a, attempt 2", retaken, ok, err)
	}
	stale := retaken
	stale.Attempt, stale.ProcessedUsers = 1, 5
	if err := jobs.Report(ctx, stale); !errors.Is(err, commands.ErrCohortJobLost) {
		t.Fatalf("Report of the dead worker = %v, want ErrCohortJobLost", err)
	}
	if _, err := jobs.Succeed(ctx, stale); !errors.Is(err, commands.ErrCohortJobLost) {
		t.Fatalf("Succeed of the dead worker = %v, want ErrCohortJobLost", err)
	}
	retaken.ProcessedUsers, retaken.TotalUsers = 3, 10
	if err := jobs.Report(ctx, retaken); err != nil {
		t.Fatal(err)
	}
	if j, err := jobs.CohortJob(ctx, retaken.JobID); err != nil || j.ProcessedUsers != 3 || j.TotalUsers != 10 || j.Progress() != 0.3 {
		t.Fatalf("after Report: %+v, %v", j, err)
	}
	if err := jobs.Release(ctx, retaken); err != nil {
		t.Fatal(err)
	}
	// A released claim (its worker stopping) is not an attempt that failed.
	if j, ok, err := jobs.Claim(ctx, time.Hour); err != nil || !ok || j.JobID != a.JobID || j.Attempt != 2 {
		t.Fatalf("claim of a released job = %+v, %v, %v", j, ok, err)
	}
	if _, ok, err := jobs.Claim(ctx, time.Hour); err != nil || ok {
		t.Fatalf("claim with every job taken = %v, %v", ok, err)
	}
	if _, err := jobs.CohortJob(ctx, uuid.New()); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("CohortJob(unknown) = %v, want ErrNotFound", err)
	}
}

func TestCohortJobSuccessesSupersedeOldMemberSets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.MustOpen(t)
	jobs := postgres.NewCohortJobs(db)
	cohortID := uuid.New()
	var generations []uuid.UUID
	for i := range 4 {
		// The earlier jobs finished long enough ago for their sets to go:
		// a set younger than the grace stays, for a catalog that trails.
		if _, err := db.Pool.Exec(ctx, `UPDATE cohort_job SET finished_at = finished_at - interval '1 hour' WHERE cohort_id = $1`, cohortID); err != nil {
			t.Fatal(err)
		}
		if _, err := jobs.Enqueue(ctx, commands.CohortJob{JobID: uuid.New(), CohortID: cohortID, TenantID: uuid.New(), CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		j, ok, err := jobs.Claim(ctx, time.Hour)
		if err != nil || !ok {
			t.Fatalf("claim %d: %v, %v", i, ok, err)
		}
		j.Members, j.CohortVersion = cohort.Members{Generation: uuid.New(), Count: int64(i)}, int64(i+2)
		generations = append(generations, j.Members.Generation)
		superseded, err := jobs.Succeed(ctx, j)
		if err != nil {
			t.Fatal(err)
		}
		// The current set and the one before stay, for readers that trail.
		// (A set younger than the grace would stay too; see below.)
		var want []uuid.UUID
		if i >= 2 {
			want = []uuid.UUID{generations[i-2]}
		}
		if !slices.Equal(superseded, want) {
			t.Fatalf("success %d superseded %v, want %v", i, superseded, want)
		}
		last, ok, err := jobs.LastCohortJob(ctx, cohortID)
		if err != nil || !ok || last.JobID != j.JobID || last.Status != commands.JobSucceeded || last.Members != j.Members ||
			last.CohortVersion != j.CohortVersion || last.Progress() != 1 || last.FinishedAt.IsZero() {
			t.Fatalf("LastCohortJob after success %d = %+v, %v, %v", i, last, ok, err)
		}
	}
	// Two recomputations within the grace: the first drops only the old
	// set (generations[2], an hour old); the second drops nothing, though
	// the set of generations[3] is now third newest: it is minutes old, and
	// a catalog may still name it.
	for k := range 2 {
		if _, err := jobs.Enqueue(ctx, commands.CohortJob{JobID: uuid.New(), CohortID: cohortID, TenantID: uuid.New(), CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		j, _, err := jobs.Claim(ctx, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		j.Members, j.CohortVersion = cohort.Members{Generation: uuid.New(), Count: 1}, 9
		var want []uuid.UUID
		if k == 0 {
			want = []uuid.UUID{generations[2]}
		}
		if superseded, err := jobs.Succeed(ctx, j); err != nil || !slices.Equal(superseded, want) {
			t.Fatalf("success %d within the grace superseded %v (%v), want %v", k, superseded, err, want)
		}
	}
	if _, ok, err := jobs.LastCohortJob(ctx, uuid.New()); err != nil || ok {
		t.Fatalf("LastCohortJob(no jobs) = %v, %v", ok, err)
	}
}

func TestDueCohorts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.MustOpen(t)
	views, jobs := postgres.NewCohorts(db), postgres.NewCohortJobs(db)
	now := time.Now().UTC()
	put := func(kind cohort.Kind, computedAt time.Time) uuid.UUID {
		t.Helper()
		id := uuid.New()
		err := views.UpdateCohort(ctx, projections.Checkpoint{Projection: "test"}, id, func(*projections.CohortView) *projections.CohortView {
			return &projections.CohortView{CohortID: id, TenantID: uuid.New(), Name: "c", Kind: kind, ComputedAt: computedAt,
				CreatedAt: now.Add(-3 * time.Hour), UpdatedAt: now, Version: 1}
		})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	never := put(cohort.Dynamic, time.Time{})
	stale := put(cohort.Dynamic, now.Add(-2*time.Hour))
	put(cohort.Dynamic, now.Add(-time.Minute)) // fresh
	put(cohort.Static, now.Add(-2*time.Hour))
	staleButQueued := put(cohort.Dynamic, now.Add(-2*time.Hour))
	staleButFailedLately := put(cohort.Dynamic, now.Add(-2*time.Hour))
	enqueue := func(id uuid.UUID) {
		t.Helper()
		if _, err := jobs.Enqueue(ctx, commands.CohortJob{JobID: uuid.New(), CohortID: id, TenantID: uuid.New(), CreatedAt: now.Add(-time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	enqueue(staleButFailedLately)
	j, ok, err := jobs.Claim(ctx, time.Hour)
	if err != nil || !ok || j.CohortID != staleButFailedLately {
		t.Fatalf("claim = %+v, %v, %v", j, ok, err)
	}
	if err := jobs.Fail(ctx, j, "bad rule"); err != nil {
		t.Fatal(err)
	}
	if failed, err := jobs.CohortJob(ctx, j.JobID); err != nil || failed.Status != commands.JobFailed || failed.Error != "bad rule" || failed.FinishedAt.IsZero() {
		t.Fatalf("failed job = %+v, %v", failed, err)
	}
	enqueue(staleButQueued)
	for every, want := range map[time.Duration][]uuid.UUID{
		time.Hour: {never, stale},
		0:         {never}, // the schedule is off; only cohorts never computed nor queued
	} {
		due, err := jobs.DueCohorts(ctx, every)
		if err != nil {
			t.Fatal(err)
		}
		var got []uuid.UUID
		for _, d := range due {
			got = append(got, d.CohortID)
		}
		if !slices.Equal(got, want) {
			t.Errorf("DueCohorts(%v) = %v, want %v", every, got, want)
		}
	}
}

func TestActionLogAggregatesEachUsersActions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.MustOpen(t)
	log := postgres.NewActionLog(db)
	tenantID, other := uuid.New(), uuid.New()
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	insert := func(tenant uuid.UUID, user, code string, at time.Time, payload string) {
		t.Helper()
		_, err := db.Pool.Exec(ctx, `INSERT INTO event (event_id, tenant_id, user_id, action_code, event_ts, payload) VALUES ($1, $2, $3, $4, $5, $6)`,
			uuid.New(), tenant, user, code, at, payload)
		if err != nil {
			t.Fatal(err)
		}
	}
	insert(tenantID, "bob", "PURCHASE", t0, `{"amount": 100.5}`)
	insert(tenantID, "bob", "PURCHASE", t0.Add(time.Hour), `{"amount": "20.25"}`)  // money as a decimal string
	insert(tenantID, "bob", "PURCHASE", t0.Add(2*time.Hour), `{"amount": "lots"}`) // counted, adds nothing
	insert(tenantID, "bob", "GIFT", t0.Add(-time.Hour), `{}`)
	insert(tenantID, "alice", "LOGIN", t0, `{}`)
	insert(other, "carol", "LOGIN", t0, `{}`)

	users, codes, err := log.UserSummary(ctx, tenantID)
	if err != nil || users != 2 || !slices.Contains(codes, "GIFT") || !slices.Contains(codes, "REFERRAL") || slices.Contains(codes, "") {
		t.Fatalf("UserSummary = %d, %v, %v; want 2 users, the catalogue and GIFT", users, codes, err)
	}
	var got []rules.UserActivity
	if err := log.EachUser(ctx, tenantID, func(u rules.UserActivity) error { got = append(got, u); return nil }); err != nil {
		t.Fatal(err)
	}
	want := []rules.UserActivity{
		{UserID: "alice", Total: 1, Counts: map[string]int64{"LOGIN": 1}, Amounts: map[string]float64{"LOGIN": 0}, FirstSeen: t0, LastSeen: t0},
		{UserID: "bob", Total: 4, Counts: map[string]int64{"PURCHASE": 3, "GIFT": 1}, Amounts: map[string]float64{"PURCHASE": 120.75, "GIFT": 0},
			FirstSeen: t0.Add(-time.Hour), LastSeen: t0.Add(2 * time.Hour)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("EachUser gave %+v\nwant %+v", got, want)
	}
	stop := errors.New("stop")
	calls := 0
	if err := log.EachUser(ctx, tenantID, func(rules.UserActivity) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("EachUser after fn fails = %v after %d calls", err, calls)
	}
}
