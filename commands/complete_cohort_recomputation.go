package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/cohort"
)

// CompleteCohortRecomputation records a job's computed member set as a
// DYNAMIC cohort's members. The job runner sends it once the set is stored.
type CompleteCohortRecomputation struct {
	// TenantID is the cohort's tenant, recorded with the event.
	TenantID uuid.UUID
	CohortID uuid.UUID
	JobID    uuid.UUID
	Members  cohort.Members
}

// CompleteCohortRecomputationHandler handles CompleteCohortRecomputation.
type CompleteCohortRecomputationHandler struct {
	store EventStore
	clock Clock
}

// NewCompleteCohortRecomputationHandler returns the handler; it panics on a
// nil dependency.
func NewCompleteCohortRecomputationHandler(store EventStore, clock Clock) CompleteCohortRecomputationHandler {
	if store == nil || clock == nil {
		panic("commands: NewCompleteCohortRecomputationHandler needs a store and a clock")
	}
	return CompleteCohortRecomputationHandler{store: store, clock: clock}
}

// Handle returns the cohort with its new members. A job already recorded
// records nothing again and returns the cohort as it is. Errors:
// domain.ErrNotFound, domain.ErrInvalidTransition (a STATIC cohort).
func (h CompleteCohortRecomputationHandler) Handle(ctx context.Context, cmd CompleteCohortRecomputation) (*cohort.Cohort, error) {
	history, err := update(ctx, h.store, cmd.TenantID, cohort.Stream(cmd.CohortID), nil, func(history []domain.Event) ([]domain.Event, error) {
		c, err := cohort.Rehydrate(history)
		if err != nil {
			return nil, err
		}
		return c.Recompute(cmd.JobID, cmd.Members, h.clock.Now())
	})
	if err != nil {
		return nil, err
	}
	return cohort.Rehydrate(history)
}
