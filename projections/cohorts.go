package projections

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/cohort"
)

// CohortView is a row of the cohort read model.
type CohortView struct {
	CohortID uuid.UUID
	TenantID uuid.UUID
	Name     string
	Kind     cohort.Kind
	// Rule is a DYNAMIC cohort's rule, "" for a STATIC one.
	Rule string
	// Members is the current member set; zero for a DYNAMIC cohort never computed.
	Members cohort.Members
	// ComputedAt is when the members were last computed; zero if never.
	ComputedAt time.Time
	CreatedAt  time.Time
	UpdatedAt  time.Time
	Version    int64
}

// CohortsStore is the port of the cohorts projection. UpdateCohort loads the
// current view (nil if there is none) under a lock, lets evolve compute the
// next one, and writes it with the checkpoint in one transaction. When
// evolve returns the view it was given, only the checkpoint is written.
type CohortsStore interface {
	UpdateCohort(ctx context.Context, cp Checkpoint, id uuid.UUID, evolve func(*CohortView) *CohortView) error
}

// CohortsName is the stable name of the cohorts projection.
const CohortsName = "cohorts"

// Cohorts projects cohort events into the cohort read model.
type Cohorts struct {
	store CohortsStore
}

// NewCohorts returns the projection; it panics on a nil store.
func NewCohorts(store CohortsStore) *Cohorts {
	if store == nil {
		panic("projections: NewCohorts needs a store")
	}
	return &Cohorts{store: store}
}

// Name implements Projector.
func (*Cohorts) Name() string { return CohortsName }

// Aggregates implements Projector.
func (*Cohorts) Aggregates() []string { return []string{cohort.Aggregate} }

// Handle implements Projector.
func (p *Cohorts) Handle(ctx context.Context, d Delivery) error {
	if d.Event.Stream.Aggregate != cohort.Aggregate {
		return nil
	}
	return p.store.UpdateCohort(ctx, d.Checkpoint, d.Event.Stream.ID, func(cur *CohortView) *CohortView {
		return EvolveCohort(cur, d.Event)
	})
}

// EvolveCohort returns the cohort view after rec. An event the view already
// reflects (its version is at or below the view's) returns cur unchanged.
func EvolveCohort(cur *CohortView, rec domain.RecordedEvent) *CohortView {
	if cur != nil && rec.Version <= cur.Version {
		return cur
	}
	var next CohortView
	if cur != nil {
		next = *cur
	}
	switch e := rec.Event.(type) {
	case cohort.Created:
		next = CohortView{CohortID: e.CohortID, TenantID: e.TenantID, Name: e.Name, Kind: e.Kind, Rule: e.Rule,
			Members: e.Members, CreatedAt: e.CreatedAt, UpdatedAt: e.CreatedAt}
		if e.Kind == cohort.Static {
			next.ComputedAt = e.CreatedAt
		}
	case cohort.Recomputed:
		next.Members, next.ComputedAt, next.UpdatedAt = e.Members, e.ComputedAt, e.ComputedAt
	}
	next.Version = rec.Version
	return &next
}
