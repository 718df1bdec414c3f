package projections

import (
	"slices"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/campaign"
	"github.com/incentives-platform/incentives/domain/cohort"
	"github.com/incentives-platform/incentives/domain/incentive"
	"github.com/incentives-platform/incentives/domain/limits"
	"github.com/incentives-platform/incentives/domain/tenant"
)

// A Rebuild is a projection rebuilt in memory from the event store, for
// replay: the same Evolve functions the live projection applies, without a
// query or a transaction per event, so a replay runs at the speed of
// reading the store. The replay writes what changed in bulk (Views.Dirty).
type Rebuild interface {
	// Name is the projection's (Projector.Name).
	Name() string
	// Aggregates are the aggregates whose events it folds.
	Aggregates() []string
	// Apply folds one recorded event; events of other aggregates are
	// ignored. Like Handle, an event a view already reflects changes nothing.
	Apply(rec domain.RecordedEvent) error
}

// Views holds one read model's views by id, and which changed since they
// were last written.
type Views[V any] struct {
	All map[uuid.UUID]*V
	// Dirty are the ids changed since TakeDirty last ran; Written are the
	// ids written at least once (a dirty view never written can be
	// inserted, one written before must be updated).
	Dirty, Written map[uuid.UUID]bool
	// taken are the ids TakeDirty returned whose write is not settled yet,
	// and whether each was an insert.
	taken map[uuid.UUID]bool
}

// NewViews returns empty views.
func NewViews[V any]() *Views[V] {
	return &Views[V]{All: map[uuid.UUID]*V{}, Dirty: map[uuid.UUID]bool{}, Written: map[uuid.UUID]bool{}, taken: map[uuid.UUID]bool{}}
}

// Settle tells the views whether the write of what TakeDirty returned
// committed. If not, those views are dirty again, and those it would have
// inserted are inserts again.
func (v *Views[V]) Settle(committed bool) {
	if !committed {
		for id, inserted := range v.taken {
			v.Dirty[id] = true
			if inserted {
				delete(v.Written, id)
			}
		}
	}
	clear(v.taken)
}

// Evolve replaces the view of id by evolve's answer, marking it dirty when
// it changed.
func (v *Views[V]) Evolve(id uuid.UUID, evolve func(*V) *V) {
	cur := v.All[id]
	if next := evolve(cur); next != nil && next != cur {
		v.All[id], v.Dirty[id] = next, true
	}
}

// Load puts a view already written (by an interrupted replay) back.
func (v *Views[V]) Load(id uuid.UUID, view V) {
	v.All[id], v.Written[id] = &view, true
}

// TakeDirty returns the changed views in id order, split into those never
// written and those written before, and marks them clean and written.
func (v *Views[V]) TakeDirty() (inserts, updates []*V) {
	ids := make([]uuid.UUID, 0, len(v.Dirty))
	for id := range v.Dirty {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
	for _, id := range ids {
		if v.Written[id] {
			updates = append(updates, v.All[id])
			if _, ok := v.taken[id]; !ok {
				v.taken[id] = false
			}
		} else {
			inserts = append(inserts, v.All[id])
			v.Written[id], v.taken[id] = true, true
		}
	}
	clear(v.Dirty)
	return inserts, updates
}

// TenantsRebuild is the tenants projection in memory.
type TenantsRebuild struct {
	Tenants *Views[TenantView]
	// Limits is keyed by tenant id.
	Limits *Views[LimitsView]
}

// NewTenantsRebuild returns an empty rebuild.
func NewTenantsRebuild() *TenantsRebuild {
	return &TenantsRebuild{Tenants: NewViews[TenantView](), Limits: NewViews[LimitsView]()}
}

// Name implements Rebuild.
func (*TenantsRebuild) Name() string { return TenantsName }

// Aggregates implements Rebuild.
func (*TenantsRebuild) Aggregates() []string { return (*Tenants)(nil).Aggregates() }

// Apply implements Rebuild.
func (r *TenantsRebuild) Apply(rec domain.RecordedEvent) error {
	switch rec.Stream.Aggregate {
	case tenant.Aggregate:
		r.Tenants.Evolve(rec.Stream.ID, func(cur *TenantView) *TenantView { return EvolveTenant(cur, rec) })
	case limits.Aggregate:
		r.Limits.Evolve(rec.Stream.ID, func(cur *LimitsView) *LimitsView { return EvolveLimits(cur, rec) })
	}
	return nil
}

// CampaignsRebuild is the campaigns projection in memory.
type CampaignsRebuild struct{ Campaigns *Views[CampaignView] }

// NewCampaignsRebuild returns an empty rebuild.
func NewCampaignsRebuild() *CampaignsRebuild {
	return &CampaignsRebuild{Campaigns: NewViews[CampaignView]()}
}

// Name implements Rebuild.
func (*CampaignsRebuild) Name() string { return CampaignsName }

// Aggregates implements Rebuild.
func (*CampaignsRebuild) Aggregates() []string { return (*Campaigns)(nil).Aggregates() }

// Apply implements Rebuild.
func (r *CampaignsRebuild) Apply(rec domain.RecordedEvent) error {
	if rec.Stream.Aggregate == campaign.Aggregate {
		r.Campaigns.Evolve(rec.Stream.ID, func(cur *CampaignView) *CampaignView { return EvolveCampaign(cur, rec) })
	}
	return nil
}

// CohortsRebuild is the cohorts projection in memory.
type CohortsRebuild struct{ Cohorts *Views[CohortView] }

// NewCohortsRebuild returns an empty rebuild.
func NewCohortsRebuild() *CohortsRebuild { return &CohortsRebuild{Cohorts: NewViews[CohortView]()} }

// Name implements Rebuild.
func (*CohortsRebuild) Name() string { return CohortsName }

// Aggregates implements Rebuild.
func (*CohortsRebuild) Aggregates() []string { return (*Cohorts)(nil).Aggregates() }

// Apply implements Rebuild.
func (r *CohortsRebuild) Apply(rec domain.RecordedEvent) error {
	if rec.Stream.Aggregate == cohort.Aggregate {
		r.Cohorts.Evolve(rec.Stream.ID, func(cur *CohortView) *CohortView { return EvolveCohort(cur, rec) })
	}
	return nil
}

// IncentivesRebuild is the incentives projection in memory.
type IncentivesRebuild struct{ Incentives *Views[IncentiveView] }

// NewIncentivesRebuild returns an empty rebuild.
func NewIncentivesRebuild() *IncentivesRebuild {
	return &IncentivesRebuild{Incentives: NewViews[IncentiveView]()}
}

// Name implements Rebuild.
func (*IncentivesRebuild) Name() string { return IncentivesName }

// Aggregates implements Rebuild.
func (*IncentivesRebuild) Aggregates() []string { return (*Incentives)(nil).Aggregates() }

// Apply implements Rebuild.
func (r *IncentivesRebuild) Apply(rec domain.RecordedEvent) error {
	if rec.Stream.Aggregate == incentive.Aggregate {
		r.Incentives.Evolve(rec.Stream.ID, func(cur *IncentiveView) *IncentiveView { return EvolveIncentive(cur, rec) })
	}
	return nil
}
