package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/campaign"
)

// ActivateCampaign starts a DRAFT or PAUSED campaign rewarding.
type ActivateCampaign struct {
	// TenantID is the tenant the caller acts for; uuid.Nil for a platform admin.
	TenantID   uuid.UUID
	CampaignID uuid.UUID
	IfMatch    *int64
}

// PauseCampaign stops an ACTIVE campaign rewarding until it is activated again.
type PauseCampaign struct {
	TenantID   uuid.UUID
	CampaignID uuid.UUID
	IfMatch    *int64
}

// EndCampaign ends a campaign whose endAt has passed; the platform's
// scheduler sends it, so it has no caller tenant and no If-Match. A campaign
// not yet due is left as it is.
type EndCampaign struct {
	CampaignID uuid.UUID
}

// ActivateCampaignHandler handles ActivateCampaign.
type ActivateCampaignHandler struct {
	store EventStore
	clock Clock
}

// NewActivateCampaignHandler returns the handler; it panics on a nil dependency.
func NewActivateCampaignHandler(store EventStore, clock Clock) ActivateCampaignHandler {
	if store == nil || clock == nil {
		panic("commands: NewActivateCampaignHandler needs a store and a clock")
	}
	return ActivateCampaignHandler{store: store, clock: clock}
}

// Handle returns the activated campaign. Errors: domain.ErrNotFound,
// domain.ErrInvalidTransition (not DRAFT or PAUSED, or past its endAt),
// domain.ErrVersionConflict.
func (h ActivateCampaignHandler) Handle(ctx context.Context, cmd ActivateCampaign) (*campaign.Campaign, error) {
	return updateCampaign(ctx, h.store, cmd.TenantID, cmd.CampaignID, cmd.IfMatch, func(c *campaign.Campaign) ([]domain.Event, error) {
		return c.Activate(h.clock.Now())
	})
}

// PauseCampaignHandler handles PauseCampaign.
type PauseCampaignHandler struct {
	store EventStore
	clock Clock
}

// NewPauseCampaignHandler returns the handler; it panics on a nil dependency.
func NewPauseCampaignHandler(store EventStore, clock Clock) PauseCampaignHandler {
	if store == nil || clock == nil {
		panic("commands: NewPauseCampaignHandler needs a store and a clock")
	}
	return PauseCampaignHandler{store: store, clock: clock}
}

// Handle returns the paused campaign. Errors: domain.ErrNotFound,
// domain.ErrInvalidTransition (not ACTIVE), domain.ErrVersionConflict.
func (h PauseCampaignHandler) Handle(ctx context.Context, cmd PauseCampaign) (*campaign.Campaign, error) {
	return updateCampaign(ctx, h.store, cmd.TenantID, cmd.CampaignID, cmd.IfMatch, func(c *campaign.Campaign) ([]domain.Event, error) {
		return c.Pause(h.clock.Now())
	})
}

// EndCampaignHandler handles EndCampaign.
type EndCampaignHandler struct {
	store EventStore
	clock Clock
}

// NewEndCampaignHandler returns the handler; it panics on a nil dependency.
func NewEndCampaignHandler(store EventStore, clock Clock) EndCampaignHandler {
	if store == nil || clock == nil {
		panic("commands: NewEndCampaignHandler needs a store and a clock")
	}
	return EndCampaignHandler{store: store, clock: clock}
}

// Handle returns the campaign, ended if it was due. Errors: domain.ErrNotFound.
func (h EndCampaignHandler) Handle(ctx context.Context, cmd EndCampaign) (*campaign.Campaign, error) {
	return updateCampaign(ctx, h.store, uuid.Nil, cmd.CampaignID, nil, func(c *campaign.Campaign) ([]domain.Event, error) {
		return c.EndIfDue(h.clock.Now()), nil
	})
}
