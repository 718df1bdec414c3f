// Package tenant is the Tenant aggregate: a business on the platform, its name
// and whether its campaigns may reward (ACTIVE) or not (SUSPENDED).
package tenant

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/domain"
)

// Aggregate is the stable name of the tenant stream type and of its topic.
const Aggregate = "tenant"

// Limits of a tenant's fields.
const (
	MaxNameLength   = 200
	MaxReasonLength = 500
)

// Status is where a tenant is in its lifecycle.
type Status string

// Tenant statuses.
const (
	StatusActive    Status = "ACTIVE"
	StatusSuspended Status = "SUSPENDED"
)

// Stream returns the event stream of tenant id.
func Stream(id uuid.UUID) domain.StreamID { return domain.StreamID{Aggregate: Aggregate, ID: id} }

// Tenant is the current state of one tenant, rebuilt from its events.
type Tenant struct {
	id        uuid.UUID
	name      string
	status    Status
	createdAt time.Time
	updatedAt time.Time
	version   int64
}

// ID returns the tenant's id.
func (t *Tenant) ID() uuid.UUID { return t.id }

// Name returns the tenant's display name.
func (t *Tenant) Name() string { return t.name }

// Status returns the tenant's lifecycle status.
func (t *Tenant) Status() Status { return t.status }

// CreatedAt returns when the tenant was created.
func (t *Tenant) CreatedAt() time.Time { return t.createdAt }

// UpdatedAt returns when the tenant last changed.
func (t *Tenant) UpdatedAt() time.Time { return t.updatedAt }

// Version returns how many events the tenant's stream holds.
func (t *Tenant) Version() int64 { return t.version }

// Create decides the creation of tenant id. It returns a *domain.ValidationError
// for a bad name.
func Create(id uuid.UUID, name string, now time.Time) ([]domain.Event, error) {
	var v domain.Validator
	v.Check(id != uuid.Nil, "tenantId", "must be a non-nil UUID")
	name = strings.TrimSpace(name)
	validateName(&v, name)
	if err := v.Err(); err != nil {
		return nil, err
	}
	return []domain.Event{Created{TenantID: id, Name: name, CreatedAt: now.UTC()}}, nil
}

func validateName(v *domain.Validator, name string) {
	switch {
	case name == "":
		v.Add("name", "must not be empty")
	case utf8.RuneCountInString(name) > MaxNameLength:
		v.Add("name", fmt.Sprintf("must be at most %d characters", MaxNameLength))
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		v.Add("name", "must not contain control characters")
	}
}

// Rehydrate rebuilds a tenant from its stream's events, oldest first. It
// returns domain.ErrNotFound for an empty history.
func Rehydrate(history []domain.Event) (*Tenant, error) {
	if len(history) == 0 {
		return nil, domain.ErrNotFound
	}
	t := &Tenant{}
	for _, e := range history {
		t.Apply(e)
	}
	return t, nil
}

// Suspend decides to stop the tenant's rewards. It returns
// domain.ErrInvalidTransition if the tenant is already suspended and a
// *domain.ValidationError for an over-long reason.
func (t *Tenant) Suspend(reason string, now time.Time) ([]domain.Event, error) {
	reason = strings.TrimSpace(reason)
	if utf8.RuneCountInString(reason) > MaxReasonLength {
		return nil, &domain.ValidationError{Violations: []domain.Violation{{
			Field: "reason", Message: fmt.Sprintf("must be at most %d characters", MaxReasonLength)}}}
	}
	if !domain.StorableText(reason) {
		return nil, &domain.ValidationError{Violations: []domain.Violation{{Field: "reason", Message: "must be UTF-8 text without NUL characters"}}}
	}
	if t.status == StatusSuspended {
		return nil, fmt.Errorf("tenant %s is already suspended: %w", t.id, domain.ErrInvalidTransition)
	}
	return []domain.Event{Suspended{TenantID: t.id, Reason: reason, SuspendedAt: now.UTC()}}, nil
}

// Reactivate decides to let a suspended tenant reward again. It returns
// domain.ErrInvalidTransition if the tenant is active.
func (t *Tenant) Reactivate(now time.Time) ([]domain.Event, error) {
	if t.status != StatusSuspended {
		return nil, fmt.Errorf("tenant %s is not suspended: %w", t.id, domain.ErrInvalidTransition)
	}
	return []domain.Event{Reactivated{TenantID: t.id, ReactivatedAt: now.UTC()}}, nil
}

// Apply changes the tenant's state by one of its events. Events of other
// aggregates are ignored. Apply never fails: whatever was recorded happened.
func (t *Tenant) Apply(e domain.Event) {
	switch e := e.(type) {
	case Created:
		t.id, t.name, t.status = e.TenantID, e.Name, StatusActive
		t.createdAt, t.updatedAt = e.CreatedAt, e.CreatedAt
	case Suspended:
		t.status, t.updatedAt = StatusSuspended, e.SuspendedAt
	case Reactivated:
		t.status, t.updatedAt = StatusActive, e.ReactivatedAt
	default:
		return
	}
	t.version++
}
