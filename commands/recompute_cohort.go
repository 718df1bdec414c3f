package commands

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/domain/cohort"
)

// RecomputeCohort asks for a DYNAMIC cohort's members to be computed again.
// The computation runs later, in a job (CohortRecomputer); the command only
// queues it.
type RecomputeCohort struct {
	CohortID uuid.UUID
	// TenantID is the tenant the caller acts for; uuid.Nil for a platform
	// admin or the platform's own schedule.
	TenantID uuid.UUID
}

// RecomputeCohortHandler handles RecomputeCohort.
type RecomputeCohortHandler struct {
	store EventStore
	clock Clock
	jobs  CohortJobQueue
}

// NewRecomputeCohortHandler returns the handler; it panics on a nil dependency.
func NewRecomputeCohortHandler(store EventStore, clock Clock, jobs CohortJobQueue) RecomputeCohortHandler {
	if store == nil || clock == nil || jobs == nil {
		panic("commands: NewRecomputeCohortHandler needs a store, a clock and a job queue")
	}
	return RecomputeCohortHandler{store: store, clock: clock, jobs: jobs}
}

// Handle returns the queued job, or the cohort's job already queued or
// running: asking twice queues one job. Errors: domain.ErrNotFound (no such
// cohort, or another tenant's), domain.ErrInvalidTransition (a STATIC cohort).
func (h RecomputeCohortHandler) Handle(ctx context.Context, cmd RecomputeCohort) (CohortJob, error) {
	stream := cohort.Stream(cmd.CohortID)
	history, _, err := h.store.Load(ctx, stream)
	if err != nil {
		return CohortJob{}, fmt.Errorf("load %s: %w", stream, err)
	}
	c, err := cohort.Rehydrate(history)
	if err != nil {
		return CohortJob{}, fmt.Errorf("%s: %w", stream, err)
	}
	if err := checkOwner(cmd.TenantID, c.TenantID(), stream); err != nil {
		return CohortJob{}, err
	}
	if err := c.Recomputable(); err != nil {
		return CohortJob{}, err
	}
	return h.jobs.Enqueue(ctx, CohortJob{JobID: uuid.New(), CohortID: c.ID(), TenantID: c.TenantID(),
		Status: JobQueued, CreatedAt: h.clock.Now()})
}
