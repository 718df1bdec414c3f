package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/incentives-platform/incentives/commands"
	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/cohort"
)

var _ commands.CohortJobStore = (*CohortJobs)(nil)

// CohortJobs is the cohort_job table: the durable queue of cohort
// recomputations, shared by every process. Workers claim jobs with
// SELECT ... FOR UPDATE SKIP LOCKED, so each job has one worker at a time,
// and report at least every lease, so a job whose worker died is claimed
// again. Times of claims and reports are the database's, so the lease means
// the same to every process whatever their clocks.
type CohortJobs struct {
	db *DB
}

// NewCohortJobs returns the job queue over db.
func NewCohortJobs(db *DB) *CohortJobs { return &CohortJobs{db: db} }

const cohortJobColumns = `job_id, cohort_id, tenant_id, status, processed_users, total_users, member_count, members_generation,
	cohort_version, error, attempt, created_at, started_at, finished_at`

func scanCohortJob(row pgx.Row) (commands.CohortJob, error) {
	var (
		j                     commands.CohortJob
		status                string
		memberCount, version  *int64
		generation            *uuid.UUID
		reason                *string
		startedAt, finishedAt *time.Time
	)
	err := row.Scan(&j.JobID, &j.CohortID, &j.TenantID, &status, &j.ProcessedUsers, &j.TotalUsers, &memberCount, &generation,
		&version, &reason, &j.Attempt, &j.CreatedAt, &startedAt, &finishedAt)
	j.Status, j.CreatedAt = commands.CohortJobStatus(status), j.CreatedAt.UTC()
	if generation != nil && memberCount != nil {
		j.Members = cohort.Members{Generation: *generation, Count: *memberCount}
	}
	if version != nil {
		j.CohortVersion = *version
	}
	if reason != nil {
		j.Error = *reason
	}
	// The API's instants are milliseconds (architecture.md, Event store);
	// these come from the database's clock, in microseconds.
	if startedAt != nil {
		j.StartedAt = startedAt.UTC().Truncate(time.Millisecond)
	}
	if finishedAt != nil {
		j.FinishedAt = finishedAt.UTC().Truncate(time.Millisecond)
	}
	return j, err
}

// Enqueue implements commands.CohortJobQueue. The partial unique index on
// the cohort's QUEUED or RUNNING job decides races between processes.
func (s *CohortJobs) Enqueue(ctx context.Context, job commands.CohortJob) (commands.CohortJob, error) {
	// The job in the way can finish between the insert and the read of it;
	// then the insert is tried again.
	for range 3 {
		queued, err := scanCohortJob(s.db.Pool.QueryRow(ctx, `
			INSERT INTO cohort_job (job_id, cohort_id, tenant_id, status, created_at) VALUES ($1, $2, $3, 'QUEUED', $4)
			ON CONFLICT (cohort_id) WHERE status IN ('QUEUED', 'RUNNING') DO NOTHING
			RETURNING `+cohortJobColumns, job.JobID, job.CohortID, job.TenantID, job.CreatedAt))
		if !errors.Is(err, pgx.ErrNoRows) {
			if err != nil {
				return commands.CohortJob{}, fmt.Errorf("queue job of cohort %s: %w", job.CohortID, err)
			}
			return queued, nil
		}
		active, err := scanCohortJob(s.db.Pool.QueryRow(ctx, `SELECT `+cohortJobColumns+` FROM cohort_job
			WHERE cohort_id = $1 AND status IN ('QUEUED', 'RUNNING')`, job.CohortID))
		if !errors.Is(err, pgx.ErrNoRows) {
			if err != nil {
				return commands.CohortJob{}, fmt.Errorf("read queued job of cohort %s: %w", job.CohortID, err)
			}
			return active, nil
		}
	}
	return commands.CohortJob{}, fmt.Errorf("queue job of cohort %s: its jobs keep changing", job.CohortID)
}

// Claim implements commands.CohortJobStore.
func (s *CohortJobs) Claim(ctx context.Context, lease time.Duration) (commands.CohortJob, bool, error) {
	j, err := scanCohortJob(s.db.Pool.QueryRow(ctx, `
		UPDATE cohort_job SET status = 'RUNNING', attempt = attempt + 1, started_at = now(), reported_at = now()
		WHERE job_id = (
			SELECT job_id FROM cohort_job
			WHERE status = 'QUEUED' OR (status = 'RUNNING' AND reported_at < now() - $1::bigint * interval '1 millisecond')
			ORDER BY created_at LIMIT 1
			FOR UPDATE SKIP LOCKED)
		RETURNING `+cohortJobColumns, lease.Milliseconds()))
	if errors.Is(err, pgx.ErrNoRows) {
		return commands.CohortJob{}, false, nil
	}
	if err != nil {
		return commands.CohortJob{}, false, fmt.Errorf("claim a cohort job: %w", err)
	}
	return j, true, nil
}

// fenced runs an update of a claimed job that applies only while the job is
// RUNNING under the attempt its worker claimed.
func (s *CohortJobs) fenced(ctx context.Context, q pgx.Tx, job commands.CohortJob, set string, args ...any) error {
	exec := s.db.Pool.Exec
	if q != nil {
		exec = q.Exec
	}
	tag, err := exec(ctx, `UPDATE cohort_job SET `+set+` WHERE job_id = $1 AND attempt = $2 AND status = 'RUNNING'`,
		append([]any{job.JobID, job.Attempt}, args...)...)
	if err != nil {
		return fmt.Errorf("update cohort job %s: %w", job.JobID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("cohort job %s, attempt %d: %w", job.JobID, job.Attempt, commands.ErrCohortJobLost)
	}
	return nil
}

// Report implements commands.CohortJobStore.
func (s *CohortJobs) Report(ctx context.Context, job commands.CohortJob) error {
	return s.fenced(ctx, nil, job, `processed_users = $3, total_users = $4, reported_at = now()`, job.ProcessedUsers, job.TotalUsers)
}

// supersededKeep is how many of a cohort's newest member sets survive: the
// current one, and the ones before for readers that trail the projection.
const supersededKeep = 2

// supersededGrace is how long a superseded member set survives whatever
// supersededKeep says: the engine decides with a catalog up to a refresh
// (and the projection's lag) old, and two recomputations finishing within
// that would otherwise delete the set it still reads, and everyone would be
// out of the cohort for a moment.
const supersededGrace = 10 * time.Minute

// Succeed implements commands.CohortJobStore.
func (s *CohortJobs) Succeed(ctx context.Context, job commands.CohortJob) ([]uuid.UUID, error) {
	var superseded []uuid.UUID
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		err := s.fenced(ctx, tx, job, `status = 'SUCCEEDED', processed_users = $3, total_users = $4, member_count = $5,
			members_generation = $6, cohort_version = $7, error = NULL, finished_at = now(), reported_at = now()`,
			job.ProcessedUsers, job.TotalUsers, job.Members.Count, job.Members.Generation, job.CohortVersion)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `
			UPDATE cohort_job SET members_dropped = true
			WHERE job_id IN (
				SELECT job_id FROM cohort_job
				WHERE cohort_id = $1 AND status = 'SUCCEEDED' AND members_generation IS NOT NULL
				ORDER BY finished_at DESC, job_id OFFSET $2)
			AND finished_at < now() - $3::interval
			AND NOT members_dropped
			RETURNING members_generation`, job.CohortID, supersededKeep, fmt.Sprintf("%d seconds", int(supersededGrace.Seconds())))
		if err != nil {
			return fmt.Errorf("supersede member sets of cohort %s: %w", job.CohortID, err)
		}
		superseded, err = pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		return err
	})
	return superseded, err
}

// Fail implements commands.CohortJobStore.
func (s *CohortJobs) Fail(ctx context.Context, job commands.CohortJob, reason string) error {
	return s.fenced(ctx, nil, job, `status = 'FAILED', error = $3, finished_at = now()`, reason)
}

// Release implements commands.CohortJobStore. A released claim does not
// count as an attempt: a job handed on by workers stopping for a rolling
// deploy has not failed anyone. Reusing the number is safe because the
// releasing worker has stopped working on the job.
func (s *CohortJobs) Release(ctx context.Context, job commands.CohortJob) error {
	return s.fenced(ctx, nil, job, `status = 'QUEUED', reported_at = NULL, attempt = attempt - 1`)
}

// DueCohorts implements commands.CohortJobStore, reading the cohort read
// model. A cohort with a job queued within every (even one that failed) is
// not due: a rule that keeps failing is tried once per period, not on every
// look.
func (s *CohortJobs) DueCohorts(ctx context.Context, every time.Duration) ([]commands.DueCohort, error) {
	rows, err := s.db.Pool.Query(ctx, `
		SELECT c.cohort_id, c.tenant_id FROM cohort c
		WHERE c.kind = 'DYNAMIC'
		  AND (c.computed_at IS NULL OR ($1::bigint > 0 AND c.computed_at < now() - $1::bigint * interval '1 millisecond'))
		  AND NOT EXISTS (
			SELECT 1 FROM cohort_job j WHERE j.cohort_id = c.cohort_id
			  AND (j.status IN ('QUEUED', 'RUNNING') OR $1::bigint = 0 OR j.created_at > now() - $1::bigint * interval '1 millisecond'))
		ORDER BY c.computed_at NULLS FIRST
		LIMIT 1000`, every.Milliseconds())
	if err != nil {
		return nil, fmt.Errorf("due cohorts: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (commands.DueCohort, error) {
		var d commands.DueCohort
		err := r.Scan(&d.CohortID, &d.TenantID)
		return d, err
	})
}

// CohortJob returns one job, or domain.ErrNotFound.
func (s *CohortJobs) CohortJob(ctx context.Context, jobID uuid.UUID) (commands.CohortJob, error) {
	j, err := scanCohortJob(s.db.Pool.QueryRow(ctx, `SELECT `+cohortJobColumns+` FROM cohort_job WHERE job_id = $1`, jobID))
	if errors.Is(err, pgx.ErrNoRows) {
		return j, fmt.Errorf("cohort job %s: %w", jobID, domain.ErrNotFound)
	}
	return j, err
}

// LastCohortJob returns a cohort's newest job; ok is false if it has none.
func (s *CohortJobs) LastCohortJob(ctx context.Context, cohortID uuid.UUID) (_ commands.CohortJob, ok bool, _ error) {
	j, err := scanCohortJob(s.db.Pool.QueryRow(ctx, `SELECT `+cohortJobColumns+` FROM cohort_job
		WHERE cohort_id = $1 ORDER BY created_at DESC, job_id LIMIT 1`, cohortID))
	if errors.Is(err, pgx.ErrNoRows) {
		return j, false, nil
	}
	return j, err == nil, err
}
