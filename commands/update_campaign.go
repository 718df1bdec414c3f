package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/campaign"
)

// UpdateCampaign replaces a campaign's definition.
type UpdateCampaign struct {
	// TenantID is the tenant the caller acts for; uuid.Nil for a platform admin.
	TenantID   uuid.UUID
	CampaignID uuid.UUID
	Input      CampaignInput
	// IfMatch, when set, is the version the caller last saw.
	IfMatch *int64
}

// UpdateCampaignHandler handles UpdateCampaign.
type UpdateCampaignHandler struct {
	store  EventStore
	clock  Clock
	schema RuleSchema
}

// NewUpdateCampaignHandler returns the handler; it panics on a nil dependency.
func NewUpdateCampaignHandler(store EventStore, clock Clock, schema RuleSchema) UpdateCampaignHandler {
	if store == nil || clock == nil || schema == nil {
		panic("commands: NewUpdateCampaignHandler needs a store, a clock and a rule schema")
	}
	return UpdateCampaignHandler{store: store, clock: clock, schema: schema}
}

// Handle returns the updated campaign. Errors: domain.ErrNotFound (also for
// another tenant's campaign), *domain.ValidationError, domain.ErrInvalidTransition
// (the campaign has ended), domain.ErrVersionConflict (IfMatch is stale).
func (h UpdateCampaignHandler) Handle(ctx context.Context, cmd UpdateCampaign) (*campaign.Campaign, error) {
	return updateCampaign(ctx, h.store, cmd.TenantID, cmd.CampaignID, cmd.IfMatch, func(c *campaign.Campaign) ([]domain.Event, error) {
		def, found, err := definition(ctx, h.store, h.schema, c.TenantID(), cmd.Input)
		if err != nil {
			return nil, err
		}
		events, err := c.Update(def, h.clock.Now())
		return events, withViolations(err, found)
	})
}

// updateCampaign loads campaign id, refuses it to a caller of another tenant,
// lets decide choose its events and appends them.
func updateCampaign(ctx context.Context, store EventStore, acting, id uuid.UUID, ifMatch *int64,
	decide func(*campaign.Campaign) ([]domain.Event, error)) (*campaign.Campaign, error) {
	stream := campaign.Stream(id)
	history, err := updateOwned(ctx, store, stream, ifMatch, func(history []domain.Event) (uuid.UUID, []domain.Event, error) {
		c, err := campaign.Rehydrate(history)
		if err == nil {
			err = checkOwner(acting, c.TenantID(), stream)
		}
		if err != nil {
			return uuid.Nil, nil, err
		}
		events, err := decide(c)
		return c.TenantID(), events, err
	})
	if err != nil {
		return nil, err
	}
	return campaign.Rehydrate(history)
}
