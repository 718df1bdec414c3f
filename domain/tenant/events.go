package tenant

import (
	"time"

	"github.com/google/uuid"
)

// Event type names. They are part of the stored history and of the published
// contract (schemas/avro/<name>.avsc): never rename one; add a new version.
const (
	CreatedType     = "tenant.created.v1"
	SuspendedType   = "tenant.suspended.v1"
	ReactivatedType = "tenant.reactivated.v1"
)

// Created: a business became a tenant of the platform.
type Created struct {
	TenantID  uuid.UUID
	Name      string
	CreatedAt time.Time
}

// Suspended: the tenant's campaigns stop rewarding until it is reactivated.
type Suspended struct {
	TenantID    uuid.UUID
	Reason      string
	SuspendedAt time.Time
}

// Reactivated: a suspended tenant earns rewards again.
type Reactivated struct {
	TenantID      uuid.UUID
	ReactivatedAt time.Time
}

func (Created) EventType() string     { return CreatedType }
func (Suspended) EventType() string   { return SuspendedType }
func (Reactivated) EventType() string { return ReactivatedType }
