package commands

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/domain/cohort"
	"github.com/incentives-platform/incentives/domain/rules"
)

// MemberSets stores cohort member sets: immutable lists of user ids, each
// named by a generation id that the cohort's events carry (a claim check).
// A set is written before the event that names it, so a set no event names
// is an orphan of a refused or failed command: harmless, since nothing reads
// it. Implementations must be safe for concurrent use.
type MemberSets interface {
	// Add stores userIDs in the set generation, skipping ids the set already
	// holds (a list may repeat an id), and returns how many were new. Each
	// call is durable on its own; it must not keep userIDs.
	Add(ctx context.Context, generation uuid.UUID, userIDs []string) (int64, error)
	// Delete removes the set generation; deleting a set that does not exist
	// is not an error.
	Delete(ctx context.Context, generation uuid.UUID) error
}

// CohortJobStatus is where a recomputation job is.
type CohortJobStatus string

// Job statuses. A job is QUEUED until a worker claims it, RUNNING while one
// computes it, and ends SUCCEEDED or FAILED.
const (
	JobQueued    CohortJobStatus = "QUEUED"
	JobRunning   CohortJobStatus = "RUNNING"
	JobSucceeded CohortJobStatus = "SUCCEEDED"
	JobFailed    CohortJobStatus = "FAILED"
)

// CohortJob is one recomputation of a DYNAMIC cohort's members. Jobs are
// operational state, not events: the event the job leads to
// (cohort.Recomputed) is what the cohort's history records.
type CohortJob struct {
	JobID    uuid.UUID
	CohortID uuid.UUID
	TenantID uuid.UUID
	Status   CohortJobStatus
	// ProcessedUsers of TotalUsers have been evaluated so far.
	ProcessedUsers int64
	TotalUsers     int64
	// Members is the computed set, once SUCCEEDED.
	Members cohort.Members
	// CohortVersion is the cohort's version after the job's Recomputed
	// event, once SUCCEEDED: a client reads the cohort at least at it.
	CohortVersion int64
	// Error says why a FAILED job failed.
	Error string
	// Attempt counts the claims of the job; a worker's reports carry the
	// attempt it claimed, so a worker presumed dead cannot overwrite the
	// work of the one that took over.
	Attempt    int
	CreatedAt  time.Time
	StartedAt  time.Time // zero until claimed
	FinishedAt time.Time // zero until SUCCEEDED or FAILED
}

// Progress returns the share of users evaluated, from 0 to 1.
func (j CohortJob) Progress() float64 {
	switch {
	case j.Status == JobSucceeded:
		return 1
	case j.TotalUsers <= 0:
		return 0
	}
	return min(1, float64(j.ProcessedUsers)/float64(j.TotalUsers))
}

// CohortJobQueue queues recomputation jobs. Implementations must be safe for
// concurrent use, also across processes.
type CohortJobQueue interface {
	// Enqueue records job as QUEUED, unless its cohort already has a QUEUED
	// or RUNNING job: then it records nothing and returns that one, so
	// requests and schedules racing each other queue one job.
	Enqueue(ctx context.Context, job CohortJob) (CohortJob, error)
}

// ErrCohortJobLost: another worker claimed the job since this one did (this
// worker was presumed dead); this worker must stop and report nothing more.
var ErrCohortJobLost = errors.New("cohort job claimed by another worker")

// DueCohort names a DYNAMIC cohort whose scheduled recomputation is due.
type DueCohort struct {
	CohortID uuid.UUID
	TenantID uuid.UUID
}

// CohortJobStore is the job queue as the job runner uses it. Every method
// that reports on a claimed job is fenced by its Attempt and returns
// ErrCohortJobLost if the job was claimed again since. Implementations must
// be safe for concurrent use, also across processes.
type CohortJobStore interface {
	CohortJobQueue
	// Claim marks the oldest runnable job RUNNING and returns it with its
	// new Attempt: a QUEUED job, or a RUNNING one whose worker has not
	// reported for lease (it died). ok is false if there is none.
	Claim(ctx context.Context, lease time.Duration) (job CohortJob, ok bool, err error)
	// Report records the job's ProcessedUsers and TotalUsers, and that its
	// worker is alive.
	Report(ctx context.Context, job CohortJob) error
	// Succeed records the job's Members and CohortVersion. It returns the
	// member sets of the cohort's earlier successful jobs that are now
	// superseded twice over, for the caller to delete; each is returned once.
	Succeed(ctx context.Context, job CohortJob) (superseded []uuid.UUID, err error)
	// Fail records why the job failed.
	Fail(ctx context.Context, job CohortJob, reason string) error
	// Release puts a claimed job back in the queue (its worker is
	// stopping); the claim does not count against MaxAttempts.
	Release(ctx context.Context, job CohortJob) error
	// DueCohorts returns the DYNAMIC cohorts last computed more than every
	// ago (or never) that have had no job queued in that time either.
	DueCohorts(ctx context.Context, every time.Duration) ([]DueCohort, error)
}

// ActionLog reads the action-event log as dynamic cohorts see it.
// Implementations must be safe for concurrent use.
type ActionLog interface {
	// UserSummary returns how many users of tenant have recorded actions,
	// and every action code the tenant's users did or the catalogue knows.
	UserSummary(ctx context.Context, tenantID uuid.UUID) (users int64, codes []string, err error)
	// EachUser calls fn with the activity of every user of tenant, in user
	// id order, and stops at fn's first error, which it returns.
	EachUser(ctx context.Context, tenantID uuid.UUID, fn func(rules.UserActivity) error) error
}
