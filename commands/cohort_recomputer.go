package commands

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/domain/cohort"
	"github.com/incentives-platform/incentives/domain/rules"
)

// CohortRecomputerConfig configures a CohortRecomputer.
type CohortRecomputerConfig struct {
	// Jobs is the job queue. Required.
	Jobs CohortJobStore
	// Actions is the action-event log the rules read. Required.
	Actions ActionLog
	// Members stores the computed member sets. Required.
	Members MemberSets
	// Store loads cohorts. Required.
	Store EventStore
	// Complete records a computed set (CompleteCohortRecomputation). Required.
	Complete Handler[CompleteCohortRecomputation, *cohort.Cohort]
	// Recompute queues the scheduled jobs (RecomputeCohort). Required.
	Recompute Handler[RecomputeCohort, CohortJob]
	// Logger is required.
	Logger *slog.Logger
	// Every is how old a DYNAMIC cohort's members may get before the
	// schedule queues a job for it; 0 turns the schedule off. Cohorts never
	// computed and without a job are queued either way. Default 0.
	Every time.Duration
	// Poll is how often an idle runner looks for queued jobs. Default 500ms.
	Poll time.Duration
	// ReportEvery is how often a running job's progress is recorded, which
	// also tells other runners that its worker is alive. Default 1s.
	ReportEvery time.Duration
	// Lease is how long a RUNNING job may go without a report before another
	// runner takes it over, its worker presumed dead. Default 1m; at least
	// three ReportEvery.
	Lease time.Duration
	// MaxAttempts is how often a job may be claimed; a job whose workers
	// keep dying on it fails after that. Default 3.
	MaxAttempts int
	// BatchSize is how many member ids are written at a time. Default 10,000.
	BatchSize int
}

func (c *CohortRecomputerConfig) setDefaults() {
	if c.Poll == 0 {
		c.Poll = 500 * time.Millisecond
	}
	if c.ReportEvery == 0 {
		c.ReportEvery = time.Second
	}
	if c.Lease == 0 {
		c.Lease = time.Minute
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 3
	}
	if c.BatchSize == 0 {
		c.BatchSize = 10_000
	}
}

// Validate reports every problem of c.
func (c CohortRecomputerConfig) Validate() error {
	var errs []error
	if c.Jobs == nil || c.Actions == nil || c.Members == nil || c.Store == nil || c.Complete == nil || c.Recompute == nil || c.Logger == nil {
		errs = append(errs, errors.New("cohort recomputer: Jobs, Actions, Members, Store, Complete, Recompute and Logger are required"))
	}
	if c.Every < 0 {
		errs = append(errs, errors.New("cohort recomputer: Every must not be negative"))
	}
	if c.Lease < 3*c.ReportEvery {
		errs = append(errs, fmt.Errorf("cohort recomputer: Lease %v must be at least three ReportEvery (%v)", c.Lease, c.ReportEvery))
	}
	if c.MaxAttempts < 1 || c.BatchSize < 1 || c.Poll <= 0 || c.ReportEvery <= 0 {
		errs = append(errs, errors.New("cohort recomputer: MaxAttempts, BatchSize, Poll and ReportEvery must be positive"))
	}
	return errors.Join(errs...)
}

// CohortRecomputer runs recomputation jobs: for each user of the cohort's
// tenant with recorded actions it evaluates the cohort's rule, stores the
// users who match as a new member set, and records it
// (CompleteCohortRecomputation). It also queues jobs on the schedule.
//
// Any number of runners may share the queue, in one process or many: each
// claims one job at a time, and a job whose runner dies is taken over after
// Lease. It is safe for concurrent use.
type CohortRecomputer struct {
	cfg CohortRecomputerConfig
}

// NewCohortRecomputer returns a runner.
func NewCohortRecomputer(cfg CohortRecomputerConfig) (*CohortRecomputer, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &CohortRecomputer{cfg: cfg}, nil
}

// maxBackoff bounds the wait between attempts while the database fails.
const maxBackoff = 30 * time.Second

// recomputerActor is who the runner's commands are recorded as, in event metadata.
const recomputerActor = "system:cohort-recomputer"

// Run runs jobs and the schedule until ctx ends. Failures of the database
// are logged and retried; they never stop the runner.
func (r *CohortRecomputer) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { r.scheduleLoop(ctx) })
	wait := r.cfg.Poll
	for ctx.Err() == nil {
		ran, err := r.RunNext(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			r.cfg.Logger.ErrorContext(ctx, "cohort jobs", "err", err, "retry_in", wait)
			wait = min(2*wait, maxBackoff) // the database is down: do not log twice a second
		case err == nil:
			wait = r.cfg.Poll
			if ran {
				continue // there may be more queued
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	wg.Wait()
	return nil
}

// scheduleInterval is how often the schedule looks for due cohorts: often
// enough that a cohort is recomputed close to Every after the last time.
func (r *CohortRecomputer) scheduleInterval() time.Duration {
	if r.cfg.Every > 0 && r.cfg.Every < time.Minute {
		return r.cfg.Every
	}
	return time.Minute
}

func (r *CohortRecomputer) scheduleLoop(ctx context.Context) {
	t := time.NewTicker(r.scheduleInterval())
	defer t.Stop()
	for {
		if _, err := r.Schedule(ctx); err != nil && ctx.Err() == nil {
			r.cfg.Logger.ErrorContext(ctx, "cohort schedule", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Schedule queues a job for every due cohort (CohortJobStore.DueCohorts)
// and returns how many it queued. Several processes may schedule at once:
// a cohort's queue holds one job at a time.
func (r *CohortRecomputer) Schedule(ctx context.Context) (int, error) {
	due, err := r.cfg.Jobs.DueCohorts(ctx, r.cfg.Every)
	if err != nil {
		return 0, fmt.Errorf("due cohorts: %w", err)
	}
	ctx = WithOrigin(ctx, Origin{Actor: recomputerActor, CorrelationID: uuid.NewString()})
	var errs []error
	n := 0
	for _, d := range due {
		if _, err := r.cfg.Recompute.Handle(ctx, RecomputeCohort{CohortID: d.CohortID}); err != nil {
			errs = append(errs, fmt.Errorf("queue recomputation of cohort %s: %w", d.CohortID, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// RunNext claims one job and runs it to its end. It reports whether there
// was a job. A job that cannot be computed is recorded as FAILED, with the
// reason; the error returned is for the runner's own failures (the
// database is down), after which the job is taken over after Lease.
func (r *CohortRecomputer) RunNext(ctx context.Context) (bool, error) {
	job, ok, err := r.cfg.Jobs.Claim(ctx, r.cfg.Lease)
	if err != nil || !ok {
		return false, err
	}
	if job.Attempt > r.cfg.MaxAttempts {
		return true, r.fail(ctx, job, fmt.Errorf("abandoned: its worker stopped %d times", job.Attempt-1))
	}
	start := time.Now()
	done, err := r.run(ctx, job)
	switch {
	case err == nil:
		r.cfg.Logger.InfoContext(ctx, "cohort recomputed", "cohort_id", job.CohortID, "job_id", job.JobID,
			"users", done.ProcessedUsers, "members", done.Members.Count, "took", time.Since(start))
		return true, nil
	case errors.Is(err, ErrCohortJobLost):
		r.cfg.Logger.WarnContext(ctx, "cohort job taken over by another worker", "job_id", job.JobID)
		return true, nil
	case ctx.Err() != nil:
		// Stopping: hand the job to the next runner now rather than after Lease.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		return true, r.cfg.Jobs.Release(rctx, job)
	default:
		return true, r.fail(ctx, job, err)
	}
}

func (r *CohortRecomputer) fail(ctx context.Context, job CohortJob, cause error) error {
	r.cfg.Logger.WarnContext(ctx, "cohort job failed", "cohort_id", job.CohortID, "job_id", job.JobID, "err", cause)
	if err := r.cfg.Jobs.Fail(ctx, job, cause.Error()); err != nil && !errors.Is(err, ErrCohortJobLost) {
		return fmt.Errorf("record failure of cohort job %s: %w", job.JobID, err)
	}
	return nil
}

// run computes job. Its member set is deleted unless the cohort ends up
// naming it.
func (r *CohortRecomputer) run(ctx context.Context, job CohortJob) (_ CohortJob, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	ctx = WithOrigin(ctx, Origin{Actor: recomputerActor, CorrelationID: job.JobID.String()})

	var processed, total atomic.Int64
	stopReporting := r.report(ctx, cancel, job, &processed, &total)
	defer func() {
		stopReporting()
		if cause := context.Cause(ctx); errors.Is(cause, ErrCohortJobLost) && err != nil {
			err = cause
		}
	}()

	c, cond, err := r.load(ctx, job)
	if err != nil {
		return job, err
	}
	users, codes, err := r.cfg.Actions.UserSummary(ctx, job.TenantID)
	if err != nil {
		return job, fmt.Errorf("summarise the users of tenant %s: %w", job.TenantID, err)
	}
	total.Store(users)

	generation := uuid.New()
	var (
		written bool
		count   int64
		batch   = make([]string, 0, r.cfg.BatchSize)
	)
	defer func() {
		if written && (err != nil || job.Members.Generation != generation) {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), discardTimeout)
			defer cancel()
			if derr := r.cfg.Members.Delete(dctx, generation); derr != nil {
				r.cfg.Logger.WarnContext(ctx, "delete unused member set", "generation", generation, "err", derr)
			}
		}
	}()
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		written = true
		n, err := r.cfg.Members.Add(ctx, generation, batch)
		count += n
		batch = batch[:0]
		return err
	}
	err = r.cfg.Actions.EachUser(ctx, job.TenantID, func(u rules.UserActivity) error {
		processed.Add(1)
		// A rule that cannot be evaluated for a user (a key the user's
		// activity lacks) does not match: the user is not a member.
		if ok, _ := cond.Matches(u.Vars(codes)); ok {
			if batch = append(batch, u.UserID); len(batch) == cap(batch) {
				return flush()
			}
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return job, fmt.Errorf("compute members of cohort %s: %w", c.ID(), err)
	}

	done, err := r.cfg.Complete.Handle(ctx, CompleteCohortRecomputation{TenantID: job.TenantID, CohortID: job.CohortID,
		JobID: job.JobID, Members: cohort.Members{Generation: generation, Count: count}})
	if err != nil {
		return job, fmt.Errorf("record members of cohort %s: %w", c.ID(), err)
	}
	// After a crash between recording and Succeed, the job runs again and
	// the cohort keeps the set recorded the first time.
	job.Members, job.CohortVersion = done.Members(), done.Version()
	job.ProcessedUsers, job.TotalUsers = processed.Load(), max(processed.Load(), total.Load())
	stopReporting() // a report after Succeed would find the job no longer running
	superseded, err := r.cfg.Jobs.Succeed(ctx, job)
	if err != nil {
		return job, fmt.Errorf("record success of cohort job %s: %w", job.JobID, err)
	}
	for _, g := range superseded {
		if err := r.cfg.Members.Delete(ctx, g); err != nil {
			r.cfg.Logger.WarnContext(ctx, "delete superseded member set", "generation", g, "err", err)
		}
	}
	return job, nil
}

// report records the job's progress every ReportEvery until the returned
// stop is called, which is safe to call more than once. If another runner
// has taken the job over, it cancels the job's ctx with ErrCohortJobLost.
func (r *CohortRecomputer) report(ctx context.Context, cancel context.CancelCauseFunc, job CohortJob, processed, total *atomic.Int64) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(r.cfg.ReportEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-quit:
				return
			case <-t.C:
			}
			j := job
			j.ProcessedUsers, j.TotalUsers = processed.Load(), total.Load()
			if err := r.cfg.Jobs.Report(ctx, j); errors.Is(err, ErrCohortJobLost) {
				cancel(err)
				return
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(quit) })
		<-done
	}
}

// load returns the job's cohort and its compiled rule.
func (r *CohortRecomputer) load(ctx context.Context, job CohortJob) (*cohort.Cohort, rules.Condition, error) {
	stream := cohort.Stream(job.CohortID)
	history, _, err := r.cfg.Store.Load(ctx, stream)
	if err != nil {
		return nil, rules.Condition{}, fmt.Errorf("load %s: %w", stream, err)
	}
	c, err := cohort.Rehydrate(history)
	if err != nil {
		return nil, rules.Condition{}, fmt.Errorf("%s: %w", stream, err)
	}
	if err := c.Recomputable(); err != nil {
		return nil, rules.Condition{}, err
	}
	cond, err := rules.CompileUserCondition("rule", c.Definition().Rule)
	if err != nil {
		return nil, rules.Condition{}, fmt.Errorf("compile the rule of cohort %s: %w", c.ID(), err)
	}
	return c, cond, nil
}
