package commands_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/adapters/memstore"
	"github.com/incentives-platform/incentives/commands"
	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/cohort"
	"github.com/incentives-platform/incentives/domain/rules"
)

// memberSets keeps sets in memory.
type memberSets struct {
	mu      sync.Mutex
	sets    map[uuid.UUID]map[string]bool
	deleted []uuid.UUID
	// inflate, if set, is added to what Add reports, to reach limits cheaply.
	inflate int64
}

func newMemberSets() *memberSets { return &memberSets{sets: map[uuid.UUID]map[string]bool{}} }

func (m *memberSets) Add(_ context.Context, g uuid.UUID, ids []string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sets[g] == nil {
		m.sets[g] = map[string]bool{}
	}
	n := m.inflate
	for _, id := range ids {
		if !m.sets[g][id] {
			m.sets[g][id] = true
			n++
		}
	}
	return n, nil
}

func (m *memberSets) Delete(_ context.Context, g uuid.UUID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.sets, g)
	m.deleted = append(m.deleted, g)
	return nil
}

func (m *memberSets) members(g uuid.UUID) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for id := range m.sets[g] {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// jobQueue is a one-process CohortJobStore.
type jobQueue struct {
	mu         sync.Mutex
	jobs       []commands.CohortJob
	due        []commands.DueCohort
	superseded []uuid.UUID
	failures   map[uuid.UUID]string
}

func (q *jobQueue) Enqueue(_ context.Context, j commands.CohortJob) (commands.CohortJob, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, x := range q.jobs {
		if x.CohortID == j.CohortID && (x.Status == commands.JobQueued || x.Status == commands.JobRunning) {
			return x, nil
		}
	}
	j.Status = commands.JobQueued
	q.jobs = append(q.jobs, j)
	return j, nil
}

func (q *jobQueue) Claim(context.Context, time.Duration) (commands.CohortJob, bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, j := range q.jobs {
		if j.Status == commands.JobQueued {
			q.jobs[i].Status, q.jobs[i].Attempt = commands.JobRunning, j.Attempt+1
			return q.jobs[i], true, nil
		}
	}
	return commands.CohortJob{}, false, nil
}

func (q *jobQueue) update(j commands.CohortJob, fn func(*commands.CohortJob)) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i := range q.jobs {
		if q.jobs[i].JobID == j.JobID && q.jobs[i].Attempt == j.Attempt && q.jobs[i].Status == commands.JobRunning {
			fn(&q.jobs[i])
			return nil
		}
	}
	return commands.ErrCohortJobLost
}

func (q *jobQueue) Report(_ context.Context, j commands.CohortJob) error {
	return q.update(j, func(x *commands.CohortJob) { x.ProcessedUsers, x.TotalUsers = j.ProcessedUsers, j.TotalUsers })
}

func (q *jobQueue) Succeed(_ context.Context, j commands.CohortJob) ([]uuid.UUID, error) {
	err := q.update(j, func(x *commands.CohortJob) { *x = j; x.Status = commands.JobSucceeded })
	return q.superseded, err
}

func (q *jobQueue) Fail(_ context.Context, j commands.CohortJob, reason string) error {
	return q.update(j, func(x *commands.CohortJob) { x.Status, x.Error = commands.JobFailed, reason })
}

func (q *jobQueue) Release(_ context.Context, j commands.CohortJob) error {
	return q.update(j, func(x *commands.CohortJob) { x.Status = commands.JobQueued })
}

func (q *jobQueue) DueCohorts(context.Context, time.Duration) ([]commands.DueCohort, error) {
	return q.due, nil
}

func (q *jobQueue) all() []commands.CohortJob {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.jobs)
}

// actionLog serves fixed users.
type actionLog struct{ users []rules.UserActivity }

func (l actionLog) UserSummary(context.Context, uuid.UUID) (int64, []string, error) {
	return int64(len(l.users)), []string{"LOGIN", "PURCHASE"}, nil
}

func (l actionLog) EachUser(_ context.Context, _ uuid.UUID, fn func(rules.UserActivity) error) error {
	for _, u := range l.users {
		if err := fn(u); err != nil {
			return err
		}
	}
	return nil
}

type cohortFixture struct {
	store   *memstore.Store
	members *memberSets
	jobs    *jobQueue
	app     commands.Application
	tenant  uuid.UUID
}

func newCohortFixture(t *testing.T) *cohortFixture {
	t.Helper()
	f := &cohortFixture{store: memstore.New(), members: newMemberSets(), jobs: &jobQueue{}}
	f.app = commands.NewApplication(commands.Dependencies{
		Store: f.store, Clock: fixedClock{now}, TenantDefaults: commands.DefaultTenantDefaults(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Recorder: &recorder{},
		RuleSchema: ruleSchema, MemberSets: f.members, CohortJobs: f.jobs,
	})
	f.tenant = uuid.New()
	if _, err := f.app.CreateTenant.Handle(context.Background(), commands.CreateTenant{TenantID: f.tenant, Name: "Acme"}); err != nil {
		t.Fatal(err)
	}
	return f
}

func violationFields(err error) []string {
	var ve *domain.ValidationError
	if !errors.As(err, &ve) {
		return nil
	}
	var out []string
	for _, v := range ve.Violations {
		out = append(out, v.Field+": "+v.Message)
	}
	return out
}

func TestCreateStaticCohortStoresTheListThenRecordsIt(t *testing.T) {
	f := newCohortFixture(t)
	ctx := commands.WithOrigin(context.Background(), commands.Origin{Actor: "tenant-admin:ann", CorrelationID: "req-1"})
	id := uuid.New()
	// Fields in any order: the list is read before the name.
	read := func(_ context.Context, add func([]string) error) (commands.CohortSpec, error) {
		for _, batch := range [][]string{{"u-1", "u-2"}, {"u-2", "u-3"}} {
			if err := add(batch); err != nil {
				return commands.CohortSpec{}, err
			}
		}
		return commands.CohortSpec{Definition: cohort.Definition{Name: "VIPs", Kind: cohort.Static}, HasUserIDs: true}, nil
	}
	c, err := f.app.CreateCohort.Handle(ctx, commands.CreateCohort{CohortID: id, TenantID: f.tenant, Read: read})
	if err != nil {
		t.Fatal(err)
	}
	if c.ID() != id || c.TenantID() != f.tenant || c.Members().Count != 3 || c.Version() != 1 || !c.ComputedAt().Equal(now) {
		t.Fatalf("created %+v", c)
	}
	if got := f.members.members(c.Members().Generation); !slices.Equal(got, []string{"u-1", "u-2", "u-3"}) {
		t.Fatalf("stored members %v", got)
	}
	recs := f.store.Recorded(cohort.Stream(id))
	if len(recs) != 1 || recs[0].Metadata != (domain.Metadata{TenantID: f.tenant, CorrelationID: "req-1", Actor: "tenant-admin:ann"}) {
		t.Fatalf("recorded %+v", recs)
	}
	if len(f.jobs.all()) != 0 {
		t.Fatal("a STATIC cohort queued a job")
	}
}

func TestCreateCohortRefusalsLeaveNothing(t *testing.T) {
	f := newCohortFixture(t)
	ctx := context.Background()
	stranger := uuid.New()
	static := cohort.Definition{Name: "VIPs", Kind: cohort.Static}
	tests := []struct {
		name    string
		acting  uuid.UUID
		spec    commands.CohortSpec
		batches [][]string
		want    []string
		inflate int64
	}{
		{"a bad id, by its index", f.tenant, commands.CohortSpec{Definition: static}, [][]string{{"a", "b", "c\n"}},
			[]string{"userIds[2]: must be text without control characters"}, 0},
		{"a bad id after a stored batch", f.tenant, commands.CohortSpec{Definition: static}, [][]string{{"a", "b"}, {"c", ""}},
			[]string{"userIds[3]: must not be empty"}, 0},
		{"the list, then no name", f.tenant, commands.CohortSpec{Definition: cohort.Definition{Kind: cohort.Static}}, [][]string{{"a"}},
			[]string{"name: must not be empty"}, 0},
		{"too many distinct ids", f.tenant, commands.CohortSpec{Definition: static}, [][]string{{"a"}},
			[]string{"userIds: must hold at most 1000000 distinct ids"}, cohort.MaxStaticMembers},
		{"another tenant named by a tenant admin", f.tenant, commands.CohortSpec{TenantID: stranger, Definition: cohort.Definition{Kind: cohort.Static}}, [][]string{{"a"}},
			[]string{"tenantId: no such tenant", "name: must not be empty"}, 0},
		{"an unknown tenant named by a platform admin", uuid.Nil, commands.CohortSpec{TenantID: stranger, Definition: static}, [][]string{{"a"}},
			[]string{"tenantId: no such tenant"}, 0},
		{"no tenant named by a platform admin", uuid.Nil, commands.CohortSpec{Definition: static}, [][]string{{"a"}},
			[]string{"tenantId: is required"}, 0},
		{"a DYNAMIC cohort with a list", f.tenant, commands.CohortSpec{Definition: cohort.Definition{Name: "x", Kind: cohort.Dynamic, Rule: "user.total > 1"}}, [][]string{{"a"}},
			[]string{"userIds: is for STATIC cohorts; a DYNAMIC cohort has a rule"}, 0},
	}
	for _, tt := range tests {
		f.members.inflate = tt.inflate
		_, err := f.app.CreateCohort.Handle(ctx, commands.CreateCohort{CohortID: uuid.New(), TenantID: tt.acting,
			Read: inBatches(tt.spec, tt.batches)})
		if got := violationFields(err); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: violations %q, want %q (%v)", tt.name, got, tt.want, err)
		}
	}
	f.members.mu.Lock()
	defer f.members.mu.Unlock()
	if len(f.members.sets) != 0 || f.store.Count() != 2 {
		t.Fatalf("refusals left %d sets and %d events (want the tenant's 2)", len(f.members.sets), f.store.Count())
	}
}

// inBatches reads spec and hands over the ids in the given batches.
func inBatches(spec commands.CohortSpec, batches [][]string) func(context.Context, func([]string) error) (commands.CohortSpec, error) {
	return func(_ context.Context, add func([]string) error) (commands.CohortSpec, error) {
		spec.HasUserIDs = true
		for _, batch := range batches {
			if err := add(batch); err != nil {
				return commands.CohortSpec{}, err
			}
		}
		return spec, nil
	}
}

func TestDynamicCohortQueuesItsFirstComputation(t *testing.T) {
	f := newCohortFixture(t)
	ctx := context.Background()
	c, err := f.app.CreateCohort.Handle(ctx, commands.CreateCohort{CohortID: uuid.New(), TenantID: uuid.Nil,
		Read: commands.CohortFromList(commands.CohortSpec{TenantID: f.tenant,
			Definition: cohort.Definition{Name: "Buyers", Kind: cohort.Dynamic, Rule: "user.counts['PURCHASE'] >= 2"}}, nil)})
	if err != nil {
		t.Fatal(err)
	}
	jobs := f.jobs.all()
	if len(jobs) != 1 || jobs[0].CohortID != c.ID() || jobs[0].TenantID != f.tenant || jobs[0].Status != commands.JobQueued || c.Members() != (cohort.Members{}) {
		t.Fatalf("jobs %+v for %+v", jobs, c)
	}
	// Asking again while it is queued gets the same job.
	j, err := f.app.RecomputeCohort.Handle(ctx, commands.RecomputeCohort{CohortID: c.ID(), TenantID: f.tenant})
	if err != nil || j.JobID != jobs[0].JobID {
		t.Fatalf("RecomputeCohort = %+v, %v; want job %v", j, err, jobs[0].JobID)
	}
	if _, err := f.app.RecomputeCohort.Handle(ctx, commands.RecomputeCohort{CohortID: c.ID(), TenantID: uuid.New()}); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("another tenant's RecomputeCohort = %v, want ErrNotFound", err)
	}
	if _, err := f.app.RecomputeCohort.Handle(ctx, commands.RecomputeCohort{CohortID: uuid.New()}); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("RecomputeCohort of nothing = %v, want ErrNotFound", err)
	}
	static, err := f.app.CreateCohort.Handle(ctx, commands.CreateCohort{CohortID: uuid.New(), TenantID: f.tenant,
		Read: commands.CohortFromList(commands.CohortSpec{Definition: cohort.Definition{Name: "VIPs", Kind: cohort.Static}}, []string{})})
	if err != nil || static.Members().Count != 0 || static.Members().Generation == uuid.Nil {
		t.Fatalf("an empty STATIC list = %+v, %v", static, err)
	}
	if _, err := f.app.RecomputeCohort.Handle(ctx, commands.RecomputeCohort{CohortID: static.ID()}); !errors.Is(err, domain.ErrInvalidTransition) {
		t.Fatalf("RecomputeCohort of a STATIC cohort = %v, want ErrInvalidTransition", err)
	}
}

func newRecomputer(t *testing.T, f *cohortFixture, log commands.ActionLog) *commands.CohortRecomputer {
	t.Helper()
	r, err := commands.NewCohortRecomputer(commands.CohortRecomputerConfig{
		Jobs: f.jobs, Actions: log, Members: f.members, Store: f.store,
		Complete: f.app.CompleteCohortRecomputation, Recompute: f.app.RecomputeCohort,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), BatchSize: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRecomputerComputesRecordsAndDropsSupersededSets(t *testing.T) {
	f := newCohortFixture(t)
	ctx := context.Background()
	c, err := f.app.CreateCohort.Handle(ctx, commands.CreateCohort{CohortID: uuid.New(), TenantID: f.tenant,
		Read: commands.CohortFromList(commands.CohortSpec{Definition: cohort.Definition{Name: "Buyers", Kind: cohort.Dynamic,
			Rule: "user.counts['PURCHASE'] >= 2 || user.userId == 'vip'"}}, nil)})
	if err != nil {
		t.Fatal(err)
	}
	buyer := func(id string, purchases int64) rules.UserActivity {
		return rules.UserActivity{UserID: id, Total: purchases, Counts: map[string]int64{"PURCHASE": purchases}, FirstSeen: now, LastSeen: now}
	}
	log := actionLog{users: []rules.UserActivity{buyer("a", 2), buyer("b", 1), buyer("c", 5), buyer("d", 0), buyer("vip", 0),
		// No PURCHASE key at all: the catalogue's codes read as zero.
		{UserID: "e", Total: 1, Counts: map[string]int64{"LOGIN": 1}}}}
	old := uuid.New()
	f.jobs.superseded = []uuid.UUID{old}
	r := newRecomputer(t, f, log)
	if ran, err := r.RunNext(ctx); !ran || err != nil {
		t.Fatalf("RunNext = %v, %v", ran, err)
	}
	job := f.jobs.all()[0]
	if job.Status != commands.JobSucceeded || job.Members.Count != 3 || job.ProcessedUsers != 6 || job.TotalUsers != 6 || job.CohortVersion != 2 {
		t.Fatalf("job after running: %+v", job)
	}
	if got := f.members.members(job.Members.Generation); !slices.Equal(got, []string{"a", "c", "vip"}) {
		t.Fatalf("members %v", got)
	}
	history, _, _ := f.store.Load(ctx, cohort.Stream(c.ID()))
	recomputed, err := cohort.Rehydrate(history)
	if err != nil || recomputed.Members() != job.Members || recomputed.LastJob() != job.JobID {
		t.Fatalf("cohort after the job: %+v, %v", recomputed, err)
	}
	if !slices.Contains(f.members.deleted, old) {
		t.Fatalf("superseded set %v not deleted (deleted %v)", old, f.members.deleted)
	}
	if ran, err := r.RunNext(ctx); ran || err != nil {
		t.Fatalf("RunNext with nothing queued = %v, %v", ran, err)
	}
}

func TestRecomputerFailsJobsItCannotCompute(t *testing.T) {
	f := newCohortFixture(t)
	ctx := context.Background()
	static, err := f.app.CreateCohort.Handle(ctx, commands.CreateCohort{CohortID: uuid.New(), TenantID: f.tenant,
		Read: commands.CohortFromList(commands.CohortSpec{Definition: cohort.Definition{Name: "VIPs", Kind: cohort.Static}}, []string{"a"})})
	if err != nil {
		t.Fatal(err)
	}
	// Queued behind the command's back: the runner still refuses it.
	if _, err := f.jobs.Enqueue(ctx, commands.CohortJob{JobID: uuid.New(), CohortID: static.ID(), TenantID: f.tenant}); err != nil {
		t.Fatal(err)
	}
	// A job whose workers kept dying.
	abandoned, _ := f.jobs.Enqueue(ctx, commands.CohortJob{JobID: uuid.New(), CohortID: uuid.New(), TenantID: f.tenant})
	f.jobs.mu.Lock()
	f.jobs.jobs[1].Attempt = 3
	f.jobs.mu.Unlock()
	r := newRecomputer(t, f, actionLog{})
	for range 2 {
		if ran, err := r.RunNext(ctx); !ran || err != nil {
			t.Fatalf("RunNext = %v, %v", ran, err)
		}
	}
	jobs := f.jobs.all()
	if jobs[0].Status != commands.JobFailed || !strings.Contains(jobs[0].Error, "only DYNAMIC cohorts are recomputed") {
		t.Fatalf("job of a STATIC cohort: %+v", jobs[0])
	}
	if jobs[1].JobID != abandoned.JobID || jobs[1].Status != commands.JobFailed || !strings.Contains(jobs[1].Error, "abandoned") {
		t.Fatalf("abandoned job: %+v", jobs[1])
	}
	if f.store.Count() != 3 {
		t.Fatalf("failed jobs recorded events: %d in the store", f.store.Count())
	}
}

func TestScheduleQueuesDueCohorts(t *testing.T) {
	f := newCohortFixture(t)
	ctx := context.Background()
	c, err := f.app.CreateCohort.Handle(ctx, commands.CreateCohort{CohortID: uuid.New(), TenantID: f.tenant,
		Read: commands.CohortFromList(commands.CohortSpec{Definition: cohort.Definition{Name: "All", Kind: cohort.Dynamic, Rule: "user.total > 0"}}, nil)})
	if err != nil {
		t.Fatal(err)
	}
	r := newRecomputer(t, f, actionLog{})
	if _, err := r.RunNext(ctx); err != nil {
		t.Fatal(err)
	}
	f.jobs.due = []commands.DueCohort{{CohortID: c.ID(), TenantID: f.tenant}, {CohortID: uuid.New(), TenantID: f.tenant}}
	n, err := r.Schedule(ctx)
	if n != 1 || !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("Schedule = %d, %v; want 1 queued and the unknown cohort's error", n, err)
	}
	if jobs := f.jobs.all(); len(jobs) != 2 || jobs[1].Status != commands.JobQueued || jobs[1].CohortID != c.ID() {
		t.Fatalf("jobs after Schedule: %+v", jobs)
	}
}
