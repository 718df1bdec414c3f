package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/tenant"
)

// SuspendTenant stops a tenant's campaigns from rewarding.
type SuspendTenant struct {
	TenantID uuid.UUID
	Reason   string
	// IfMatch, when set, is the version the caller last saw.
	IfMatch *int64
}

// ReactivateTenant lets a suspended tenant reward again.
type ReactivateTenant struct {
	TenantID uuid.UUID
	IfMatch  *int64
}

// SuspendTenantHandler handles SuspendTenant.
type SuspendTenantHandler struct {
	store EventStore
	clock Clock
}

// NewSuspendTenantHandler returns the handler; it panics on a nil dependency.
func NewSuspendTenantHandler(store EventStore, clock Clock) SuspendTenantHandler {
	if store == nil || clock == nil {
		panic("commands: NewSuspendTenantHandler needs a store and a clock")
	}
	return SuspendTenantHandler{store: store, clock: clock}
}

// Handle returns the suspended tenant. Errors: domain.ErrNotFound,
// domain.ErrInvalidTransition (already suspended), domain.ErrVersionConflict
// (IfMatch is stale), *domain.ValidationError (reason too long).
func (h SuspendTenantHandler) Handle(ctx context.Context, cmd SuspendTenant) (*tenant.Tenant, error) {
	return updateTenant(ctx, h.store, cmd.TenantID, cmd.IfMatch, func(t *tenant.Tenant) ([]domain.Event, error) {
		return t.Suspend(cmd.Reason, h.clock.Now())
	})
}

// ReactivateTenantHandler handles ReactivateTenant.
type ReactivateTenantHandler struct {
	store EventStore
	clock Clock
}

// NewReactivateTenantHandler returns the handler; it panics on a nil dependency.
func NewReactivateTenantHandler(store EventStore, clock Clock) ReactivateTenantHandler {
	if store == nil || clock == nil {
		panic("commands: NewReactivateTenantHandler needs a store and a clock")
	}
	return ReactivateTenantHandler{store: store, clock: clock}
}

// Handle returns the reactivated tenant. Errors: domain.ErrNotFound,
// domain.ErrInvalidTransition (not suspended), domain.ErrVersionConflict.
func (h ReactivateTenantHandler) Handle(ctx context.Context, cmd ReactivateTenant) (*tenant.Tenant, error) {
	return updateTenant(ctx, h.store, cmd.TenantID, cmd.IfMatch, func(t *tenant.Tenant) ([]domain.Event, error) {
		return t.Reactivate(h.clock.Now())
	})
}

func updateTenant(ctx context.Context, store EventStore, id uuid.UUID, ifMatch *int64, decide func(*tenant.Tenant) ([]domain.Event, error)) (*tenant.Tenant, error) {
	history, err := update(ctx, store, id, tenant.Stream(id), ifMatch, func(history []domain.Event) ([]domain.Event, error) {
		t, err := tenant.Rehydrate(history)
		if err != nil {
			return nil, err
		}
		return decide(t)
	})
	if err != nil {
		return nil, err
	}
	return tenant.Rehydrate(history)
}
