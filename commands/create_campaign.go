package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/campaign"
	"github.com/incentives-platform/incentives/domain/tenant"
)

// CreateCampaign defines a campaign of a tenant, in DRAFT.
type CreateCampaign struct {
	// CampaignID is chosen by the caller (the API generates it), so a retried
	// command cannot create a second campaign.
	CampaignID uuid.UUID
	// TenantID is the tenant the campaign belongs to; it must exist.
	TenantID uuid.UUID
	Input    CampaignInput
}

// CreateCampaignHandler handles CreateCampaign.
type CreateCampaignHandler struct {
	store  EventStore
	clock  Clock
	schema RuleSchema
}

// NewCreateCampaignHandler returns the handler; it panics on a nil dependency.
func NewCreateCampaignHandler(store EventStore, clock Clock, schema RuleSchema) CreateCampaignHandler {
	if store == nil || clock == nil || schema == nil {
		panic("commands: NewCreateCampaignHandler needs a store, a clock and a rule schema")
	}
	return CreateCampaignHandler{store: store, clock: clock, schema: schema}
}

// Handle returns the new campaign. Errors: *domain.ValidationError for any
// bad input, including a tenant or cohort that does not exist (or is another
// tenant's), and domain.ErrVersionConflict if the campaign id is taken.
func (h CreateCampaignHandler) Handle(ctx context.Context, cmd CreateCampaign) (*campaign.Campaign, error) {
	tenantHistory, _, err := h.store.Load(ctx, tenant.Stream(cmd.TenantID))
	if err != nil {
		return nil, err
	}
	def, found, err := definition(ctx, h.store, h.schema, cmd.TenantID, cmd.Input)
	if err != nil {
		return nil, err
	}
	if len(tenantHistory) == 0 {
		found = append([]domain.Violation{{Field: "tenantId", Message: "no such tenant"}}, found...)
	}
	events, err := campaign.Create(cmd.CampaignID, cmd.TenantID, def, h.clock.Now())
	if err = withViolations(err, found); err != nil {
		return nil, err
	}
	if _, err := h.store.Append(ctx, metadata(ctx, cmd.TenantID),
		domain.StreamAppend{Stream: campaign.Stream(cmd.CampaignID), ExpectedVersion: 0, Events: events}); err != nil {
		return nil, err
	}
	return campaign.Rehydrate(events)
}
