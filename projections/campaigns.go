package projections

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/campaign"
)

// CampaignView is a row of the campaign read model: what the API lists and
// the engine searches.
type CampaignView struct {
	CampaignID uuid.UUID
	TenantID   uuid.UUID
	Name       string
	Type       campaign.Type
	Status     campaign.Status
	// StartAt and EndAt are zero when unset.
	StartAt, EndAt time.Time
	// Rule is the rule document in canonical form (rules.Rule.Document).
	Rule      []byte
	CohortID  uuid.UUID
	CreatedAt time.Time
	UpdatedAt time.Time
	Version   int64
}

// CampaignFilter narrows a tenant's campaign list; zero fields match all.
type CampaignFilter struct {
	Status campaign.Status
	Type   campaign.Type
	// Action keeps campaigns whose rule listens to this action code.
	Action string
	// ActiveAt keeps campaigns whose [startAt, endAt) holds this instant
	// (an unset end is open); it says nothing of their status.
	ActiveAt time.Time
}

// CampaignKey is a place in a tenant's campaign list, ordered by creation
// time and id. The zero key is before the first campaign.
type CampaignKey struct {
	CreatedAt time.Time
	ID        uuid.UUID
}

// CampaignsStore is the port of the campaigns projection: like
// TenantsStore, it loads the current view under a lock, lets evolve compute
// the next and writes it with the checkpoint in one transaction.
type CampaignsStore interface {
	UpdateCampaign(ctx context.Context, cp Checkpoint, id uuid.UUID, evolve func(*CampaignView) *CampaignView) error
}

// CampaignsName is the stable name of the campaigns projection.
const CampaignsName = "campaigns"

// Campaigns projects campaign events into the campaign read model.
type Campaigns struct {
	store CampaignsStore
}

// NewCampaigns returns the projection; it panics on a nil store.
func NewCampaigns(store CampaignsStore) *Campaigns {
	if store == nil {
		panic("projections: NewCampaigns needs a store")
	}
	return &Campaigns{store: store}
}

// Name implements Projector.
func (*Campaigns) Name() string { return CampaignsName }

// Aggregates implements Projector.
func (*Campaigns) Aggregates() []string { return []string{campaign.Aggregate} }

// Handle implements Projector.
func (p *Campaigns) Handle(ctx context.Context, d Delivery) error {
	return p.store.UpdateCampaign(ctx, d.Checkpoint, d.Event.Stream.ID, func(cur *CampaignView) *CampaignView {
		return EvolveCampaign(cur, d.Event)
	})
}

// EvolveCampaign returns the campaign view after rec; an event the view
// already reflects returns cur unchanged.
func EvolveCampaign(cur *CampaignView, rec domain.RecordedEvent) *CampaignView {
	if cur != nil && rec.Version <= cur.Version {
		return cur
	}
	var next CampaignView
	if cur != nil {
		next = *cur
	}
	define := func(d campaign.Definition) {
		next.Name, next.Type, next.StartAt, next.EndAt, next.CohortID = d.Name, d.Type, d.StartAt, d.EndAt, d.CohortID
		next.Rule = d.Rule.Document()
	}
	switch e := rec.Event.(type) {
	case campaign.Created:
		next = CampaignView{CampaignID: e.CampaignID, TenantID: e.TenantID, Status: campaign.StatusDraft, CreatedAt: e.CreatedAt, UpdatedAt: e.CreatedAt}
		define(e.Definition)
	case campaign.Updated:
		define(e.Definition)
		next.UpdatedAt = e.UpdatedAt
	case campaign.Activated:
		next.Status, next.UpdatedAt = campaign.StatusActive, e.ActivatedAt
	case campaign.Paused:
		next.Status, next.UpdatedAt = campaign.StatusPaused, e.PausedAt
	case campaign.Ended:
		next.Status, next.UpdatedAt = campaign.StatusEnded, e.EndedAt
	}
	next.Version = rec.Version
	return &next
}
