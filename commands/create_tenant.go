package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/limits"
	"github.com/incentives-platform/incentives/domain/tenant"
)

// CreateTenant makes a business a tenant, with the platform's default limits.
type CreateTenant struct {
	// TenantID is chosen by the caller (the API generates it), so a retried
	// command cannot create a second tenant.
	TenantID uuid.UUID
	Name     string
}

// TenantDefaults are the limits every new tenant starts with.
type TenantDefaults struct {
	Tenant limits.Caps
	User   limits.Caps
}

// DefaultTenantDefaults are the built-in defaults: 100,000 rewards a day per
// tenant and 10 a day per user, no window or lifetime caps.
func DefaultTenantDefaults() TenantDefaults {
	perTenant, perUser := int64(100_000), int64(10)
	return TenantDefaults{Tenant: limits.Caps{PerDay: &perTenant}, User: limits.Caps{PerDay: &perUser}}
}

// CreateTenantHandler handles CreateTenant.
type CreateTenantHandler struct {
	store    EventStore
	clock    Clock
	defaults TenantDefaults
}

// NewCreateTenantHandler returns the handler. It panics on a nil dependency:
// that is a wiring mistake, not a runtime condition.
func NewCreateTenantHandler(store EventStore, clock Clock, defaults TenantDefaults) CreateTenantHandler {
	if store == nil || clock == nil {
		panic("commands: NewCreateTenantHandler needs a store and a clock")
	}
	return CreateTenantHandler{store: store, clock: clock, defaults: defaults}
}

// Handle records the tenant and its default limit policy in one transaction.
// It returns a *domain.ValidationError for a bad name or bad defaults, and
// domain.ErrVersionConflict if the tenant id is taken.
func (h CreateTenantHandler) Handle(ctx context.Context, cmd CreateTenant) (*tenant.Tenant, error) {
	now := h.clock.Now()
	created, err := tenant.Create(cmd.TenantID, cmd.Name, now)
	if err != nil {
		return nil, err
	}
	defined, err := limits.Define(cmd.TenantID, h.defaults.Tenant, h.defaults.User, now)
	if err != nil {
		return nil, err
	}
	_, err = h.store.Append(ctx, metadata(ctx, cmd.TenantID),
		domain.StreamAppend{Stream: tenant.Stream(cmd.TenantID), ExpectedVersion: 0, Events: created},
		domain.StreamAppend{Stream: limits.Stream(cmd.TenantID), ExpectedVersion: 0, Events: defined},
	)
	if err != nil {
		return nil, err
	}
	return tenant.Rehydrate(created)
}
