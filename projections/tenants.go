package projections

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/limits"
	"github.com/incentives-platform/incentives/domain/tenant"
)

// TenantView is a row of the tenant read model.
type TenantView struct {
	TenantID  uuid.UUID
	Name      string
	Status    tenant.Status
	CreatedAt time.Time
	UpdatedAt time.Time
	Version   int64
}

// LimitsView is a tenant's effective limits.
type LimitsView struct {
	TenantID  uuid.UUID
	Tenant    limits.Caps
	User      limits.Caps
	CreatedAt time.Time
	UpdatedAt time.Time
	Version   int64
}

// TenantKey is a place in the tenant list, which is ordered by creation time
// and id. The zero key is before the first tenant.
type TenantKey struct {
	CreatedAt time.Time
	ID        uuid.UUID
}

// TenantsStore is the port of the tenants projection. Each method loads the
// current view (nil if there is none) under a lock, lets evolve compute the
// next one, and writes it with the checkpoint in one transaction. When evolve
// returns the view it was given, only the checkpoint is written.
type TenantsStore interface {
	UpdateTenant(ctx context.Context, cp Checkpoint, id uuid.UUID, evolve func(*TenantView) *TenantView) error
	UpdateLimits(ctx context.Context, cp Checkpoint, tenantID uuid.UUID, evolve func(*LimitsView) *LimitsView) error
}

// TenantsName is the stable name of the tenants projection.
const TenantsName = "tenants"

// Tenants projects tenant and limits events into the tenant and tenant_limit
// read models.
type Tenants struct {
	store TenantsStore
}

// NewTenants returns the projection; it panics on a nil store.
func NewTenants(store TenantsStore) *Tenants {
	if store == nil {
		panic("projections: NewTenants needs a store")
	}
	return &Tenants{store: store}
}

// Name implements Projector.
func (*Tenants) Name() string { return TenantsName }

// Aggregates implements Projector.
func (*Tenants) Aggregates() []string { return []string{tenant.Aggregate, limits.Aggregate} }

// Handle implements Projector.
func (p *Tenants) Handle(ctx context.Context, d Delivery) error {
	switch d.Event.Stream.Aggregate {
	case tenant.Aggregate:
		return p.store.UpdateTenant(ctx, d.Checkpoint, d.Event.Stream.ID, func(cur *TenantView) *TenantView {
			return EvolveTenant(cur, d.Event)
		})
	case limits.Aggregate:
		return p.store.UpdateLimits(ctx, d.Checkpoint, d.Event.Stream.ID, func(cur *LimitsView) *LimitsView {
			return EvolveLimits(cur, d.Event)
		})
	}
	return nil
}

// EvolveTenant returns the tenant view after rec. An event the view already
// reflects (its version is at or below the view's) returns cur unchanged.
func EvolveTenant(cur *TenantView, rec domain.RecordedEvent) *TenantView {
	if cur != nil && rec.Version <= cur.Version {
		return cur
	}
	var next TenantView
	if cur != nil {
		next = *cur
	}
	switch e := rec.Event.(type) {
	case tenant.Created:
		next = TenantView{TenantID: e.TenantID, Name: e.Name, Status: tenant.StatusActive, CreatedAt: e.CreatedAt, UpdatedAt: e.CreatedAt}
	case tenant.Suspended:
		next.Status, next.UpdatedAt = tenant.StatusSuspended, e.SuspendedAt
	case tenant.Reactivated:
		next.Status, next.UpdatedAt = tenant.StatusActive, e.ReactivatedAt
	}
	next.Version = rec.Version
	return &next
}

// EvolveLimits returns the limits view after rec, with the same idempotency
// rule as EvolveTenant.
func EvolveLimits(cur *LimitsView, rec domain.RecordedEvent) *LimitsView {
	if cur != nil && rec.Version <= cur.Version {
		return cur
	}
	var next LimitsView
	if cur != nil {
		next = *cur
	}
	switch e := rec.Event.(type) {
	case limits.Defined:
		next.TenantID, next.Tenant, next.User, next.UpdatedAt = e.TenantID, e.Tenant, e.User, e.DefinedAt
		if cur == nil {
			next.CreatedAt = e.DefinedAt
		}
	case limits.TenantSet:
		next.TenantID, next.Tenant, next.UpdatedAt = e.TenantID, e.Caps, e.SetAt
	case limits.UserSet:
		next.TenantID, next.User, next.UpdatedAt = e.TenantID, e.Caps, e.SetAt
	}
	next.Version = rec.Version
	return &next
}
