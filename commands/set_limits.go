package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/limits"
)

// SetTenantLimits replaces the caps over all of a tenant's rewards (scope
// GLOBAL). The tenant's status is not consulted: an operator must be able to
// tighten or lift the limits of a suspended tenant before reactivating it.
type SetTenantLimits struct {
	TenantID uuid.UUID
	Caps     limits.Caps
	// IfMatch, when set, is the limits stream version the caller last saw.
	IfMatch *int64
}

// SetUserLimits replaces the caps over each of a tenant's users (scope USER),
// like SetTenantLimits.
type SetUserLimits struct {
	TenantID uuid.UUID
	Caps     limits.Caps
	IfMatch  *int64
}

// SetTenantLimitsHandler handles SetTenantLimits.
type SetTenantLimitsHandler struct {
	store EventStore
	clock Clock
}

// NewSetTenantLimitsHandler returns the handler; it panics on a nil dependency.
func NewSetTenantLimitsHandler(store EventStore, clock Clock) SetTenantLimitsHandler {
	if store == nil || clock == nil {
		panic("commands: NewSetTenantLimitsHandler needs a store and a clock")
	}
	return SetTenantLimitsHandler{store: store, clock: clock}
}

// Handle returns the tenant's policy after the change. Caps equal to the
// current ones record nothing and return the policy as it is, so a client
// retrying a lost answer gets the same state. Errors: domain.ErrNotFound (no
// such tenant), domain.ErrVersionConflict (IfMatch is stale),
// *domain.ValidationError (negative caps, a window without its length).
func (h SetTenantLimitsHandler) Handle(ctx context.Context, cmd SetTenantLimits) (*limits.Policy, error) {
	return updateLimits(ctx, h.store, cmd.TenantID, cmd.IfMatch, func(p *limits.Policy) ([]domain.Event, error) {
		return p.SetTenant(cmd.Caps, h.clock.Now())
	})
}

// SetUserLimitsHandler handles SetUserLimits.
type SetUserLimitsHandler struct {
	store EventStore
	clock Clock
}

// NewSetUserLimitsHandler returns the handler; it panics on a nil dependency.
func NewSetUserLimitsHandler(store EventStore, clock Clock) SetUserLimitsHandler {
	if store == nil || clock == nil {
		panic("commands: NewSetUserLimitsHandler needs a store and a clock")
	}
	return SetUserLimitsHandler{store: store, clock: clock}
}

// Handle returns the tenant's policy after the change, with the same
// outcomes and errors as SetTenantLimitsHandler.Handle.
func (h SetUserLimitsHandler) Handle(ctx context.Context, cmd SetUserLimits) (*limits.Policy, error) {
	return updateLimits(ctx, h.store, cmd.TenantID, cmd.IfMatch, func(p *limits.Policy) ([]domain.Event, error) {
		return p.SetUser(cmd.Caps, h.clock.Now())
	})
}

func updateLimits(ctx context.Context, store EventStore, tenantID uuid.UUID, ifMatch *int64, decide func(*limits.Policy) ([]domain.Event, error)) (*limits.Policy, error) {
	history, err := update(ctx, store, tenantID, limits.Stream(tenantID), ifMatch, func(history []domain.Event) ([]domain.Event, error) {
		p, err := limits.Rehydrate(history)
		if err != nil {
			return nil, err
		}
		return decide(p)
	})
	if err != nil {
		return nil, err
	}
	return limits.Rehydrate(history)
}
