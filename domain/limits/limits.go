// Package limits is the LimitPolicy aggregate: how many rewards a tenant may
// issue in all (scope GLOBAL) and to each of its users (scope USER), per day,
// per window of days and in total.
//
// Windows are consecutive runs of WindowDays UTC days counted from the Unix
// epoch, so every process computes the same window for the same instant
// without coordination.
package limits

import (
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/domain"
)

// Aggregate is the stable name of the limits stream type and of its topic.
// A tenant has one policy; its stream id is the tenant id.
const Aggregate = "limits"

// MaxWindowDays bounds WindowDays.
const MaxWindowDays = 366

// Stream returns the limits stream of tenant id.
func Stream(tenantID uuid.UUID) domain.StreamID {
	return domain.StreamID{Aggregate: Aggregate, ID: tenantID}
}

// Caps bounds how many rewards one scope may receive. A nil cap is unbounded;
// a zero cap allows nothing, which is how an operator freezes a scope.
type Caps struct {
	PerDay    *int64
	PerWindow *int64
	// WindowDays is the length of a PerWindow window; set exactly when PerWindow is.
	WindowDays int
	Total      *int64
}

// Validate reports every problem of c, naming fields under prefix.
func (c Caps) validate(v *domain.Validator, prefix string) {
	for _, f := range []struct {
		name string
		cap  *int64
	}{{"maxPerDay", c.PerDay}, {"maxPerWindow", c.PerWindow}, {"maxTotal", c.Total}} {
		if f.cap != nil && *f.cap < 0 {
			v.Add(prefix+f.name, "must not be negative")
		}
	}
	switch {
	case c.PerWindow != nil && (c.WindowDays < 1 || c.WindowDays > MaxWindowDays):
		v.Add(prefix+"windowDays", fmt.Sprintf("must be between 1 and %d when maxPerWindow is set", MaxWindowDays))
	case c.PerWindow == nil && c.WindowDays != 0:
		v.Add(prefix+"windowDays", "must be unset unless maxPerWindow is set")
	}
}

// Policy is a tenant's current limits, rebuilt from its events.
type Policy struct {
	tenantID  uuid.UUID
	tenant    Caps
	user      Caps
	updatedAt time.Time
	version   int64
}

// TenantID returns the tenant the policy belongs to.
func (p *Policy) TenantID() uuid.UUID { return p.tenantID }

// Tenant returns the caps over all of the tenant's rewards (scope GLOBAL).
func (p *Policy) Tenant() Caps { return p.tenant }

// User returns the caps over each user's rewards (scope USER).
func (p *Policy) User() Caps { return p.user }

// UpdatedAt returns when the policy last changed: what a reader of the limits
// read model sees as its updatedAt, so a command's answer equals a later read.
func (p *Policy) UpdatedAt() time.Time { return p.updatedAt }

// Version returns how many events the policy's stream holds.
func (p *Policy) Version() int64 { return p.version }

// Define decides a tenant's first policy. It returns a *domain.ValidationError
// for negative caps or a window without a length.
func Define(tenantID uuid.UUID, tenant, user Caps, now time.Time) ([]domain.Event, error) {
	var v domain.Validator
	tenant.validate(&v, "tenant.")
	user.validate(&v, "user.")
	if err := v.Err(); err != nil {
		return nil, err
	}
	return []domain.Event{Defined{TenantID: tenantID, Tenant: tenant, User: user, DefinedAt: now.UTC()}}, nil
}

// Rehydrate rebuilds a policy from its stream's events, oldest first. It
// returns domain.ErrNotFound for an empty history.
func Rehydrate(history []domain.Event) (*Policy, error) {
	if len(history) == 0 {
		return nil, domain.ErrNotFound
	}
	p := &Policy{}
	for _, e := range history {
		p.Apply(e)
	}
	return p, nil
}

// SetTenant decides the tenant-wide caps (scope GLOBAL). Setting the caps the
// policy already has decides nothing (no events). It returns a
// *domain.ValidationError for bad caps.
func (p *Policy) SetTenant(caps Caps, now time.Time) ([]domain.Event, error) {
	var v domain.Validator
	caps.validate(&v, "")
	if err := v.Err(); err != nil {
		return nil, err
	}
	if caps.Equal(p.tenant) {
		return nil, nil
	}
	return []domain.Event{TenantSet{TenantID: p.tenantID, Caps: caps, SetAt: now.UTC()}}, nil
}

// SetUser decides the per-user caps (scope USER), like SetTenant.
func (p *Policy) SetUser(caps Caps, now time.Time) ([]domain.Event, error) {
	var v domain.Validator
	caps.validate(&v, "")
	if err := v.Err(); err != nil {
		return nil, err
	}
	if caps.Equal(p.user) {
		return nil, nil
	}
	return []domain.Event{UserSet{TenantID: p.tenantID, Caps: caps, SetAt: now.UTC()}}, nil
}

// Equal reports whether c and o cap the same things at the same values.
func (c Caps) Equal(o Caps) bool {
	eq := func(a, b *int64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
	return eq(c.PerDay, o.PerDay) && eq(c.PerWindow, o.PerWindow) && eq(c.Total, o.Total) && c.WindowDays == o.WindowDays
}

// Apply changes the policy by one of its events; other events are ignored.
func (p *Policy) Apply(e domain.Event) {
	switch e := e.(type) {
	case Defined:
		p.tenantID, p.tenant, p.user, p.updatedAt = e.TenantID, e.Tenant, e.User, e.DefinedAt
	case TenantSet:
		p.tenant, p.updatedAt = e.Caps, e.SetAt
	case UserSet:
		p.user, p.updatedAt = e.Caps, e.SetAt
	default:
		return
	}
	p.version++
}

// DefinedType is the event type name of Defined (schemas/avro/limits.defined.v1.avsc).
const DefinedType = "limits.defined.v1"

// Defined: a tenant's limits were set as a whole, as at tenant creation.
type Defined struct {
	TenantID  uuid.UUID
	Tenant    Caps
	User      Caps
	DefinedAt time.Time
}

func (Defined) EventType() string { return DefinedType }

// Event type names of the limit changes.
const (
	TenantSetType = "limits.tenant-set.v1"
	UserSetType   = "limits.user-set.v1"
)

// TenantSet: the tenant-wide caps (scope GLOBAL) were replaced.
type TenantSet struct {
	TenantID uuid.UUID
	Caps     Caps
	SetAt    time.Time
}

// UserSet: the per-user caps (scope USER) were replaced.
type UserSet struct {
	TenantID uuid.UUID
	Caps     Caps
	SetAt    time.Time
}

func (TenantSet) EventType() string { return TenantSetType }
func (UserSet) EventType() string   { return UserSetType }
