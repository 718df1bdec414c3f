package avro

import (
	"fmt"

	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/campaign"
	"github.com/incentives-platform/incentives/domain/cohort"
	"github.com/incentives-platform/incentives/domain/incentive"
	"github.com/incentives-platform/incentives/domain/limits"
	"github.com/incentives-platform/incentives/domain/tenant"
	"github.com/incentives-platform/incentives/schemas"
)

// DomainEvents is the platform's table of domain event mappings: every event
// an aggregate records, with its schema. Adding an event type means adding its
// .avsc file and a row here.
func DomainEvents() []EventMapping {
	return []EventMapping{
		{tenant.CreatedType, tenantCreatedToNative, tenantCreatedFromNative},
		{tenant.SuspendedType, tenantSuspendedToNative, tenantSuspendedFromNative},
		{tenant.ReactivatedType, tenantReactivatedToNative, tenantReactivatedFromNative},
		{limits.DefinedType, limitsDefinedToNative, limitsDefinedFromNative},
		{limits.TenantSetType, limitsTenantSetToNative, limitsTenantSetFromNative},
		{limits.UserSetType, limitsUserSetToNative, limitsUserSetFromNative},
		{campaign.CreatedType, campaignCreatedToNative, campaignCreatedFromNative},
		{campaign.UpdatedType, campaignUpdatedToNative, campaignUpdatedFromNative},
		{campaign.ActivatedType, campaignActivatedToNative, campaignActivatedFromNative},
		{campaign.PausedType, campaignPausedToNative, campaignPausedFromNative},
		{campaign.EndedType, campaignEndedToNative, campaignEndedFromNative},
		{cohort.CreatedType, cohortCreatedToNative, cohortCreatedFromNative},
		{cohort.RecomputedType, cohortRecomputedToNative, cohortRecomputedFromNative},
		{incentive.IssuedType, incentiveIssuedToNative, incentiveIssuedFromNative},
	}
}

// NewDomainEventCodec returns the codec of DomainEvents over registry.
func NewDomainEventCodec(registry *Registry) (*EventCodec, error) {
	return NewEventCodec(registry, DomainEvents()...)
}

// LoadPlatform loads the platform's schemas (package schemas) and returns
// them with the codec of its domain events.
func LoadPlatform() (*Registry, *EventCodec, error) {
	registry, err := Load(schemas.Avro, "avro")
	if err != nil {
		return nil, nil, fmt.Errorf("load avro schemas: %w", err)
	}
	codec, err := NewDomainEventCodec(registry)
	if err != nil {
		return nil, nil, err
	}
	return registry, codec, nil
}

func wrongType(want string, got domain.Event) error {
	return fmt.Errorf("mapping of %s given a %T", want, got)
}

func tenantCreatedToNative(e domain.Event) (map[string]any, error) {
	c, ok := e.(tenant.Created)
	if !ok {
		return nil, wrongType(tenant.CreatedType, e)
	}
	return map[string]any{"tenantId": c.TenantID.String(), "name": c.Name, "createdAt": c.CreatedAt}, nil
}

func tenantCreatedFromNative(m map[string]any) (domain.Event, error) {
	r := &record{m: m}
	e := tenant.Created{TenantID: r.uuid("tenantId"), Name: r.string("name"), CreatedAt: r.time("createdAt")}
	return e, r.err
}

func tenantSuspendedToNative(e domain.Event) (map[string]any, error) {
	s, ok := e.(tenant.Suspended)
	if !ok {
		return nil, wrongType(tenant.SuspendedType, e)
	}
	return map[string]any{"tenantId": s.TenantID.String(), "reason": s.Reason, "suspendedAt": s.SuspendedAt}, nil
}

func tenantSuspendedFromNative(m map[string]any) (domain.Event, error) {
	r := &record{m: m}
	e := tenant.Suspended{TenantID: r.uuid("tenantId"), Reason: r.string("reason"), SuspendedAt: r.time("suspendedAt")}
	return e, r.err
}

func tenantReactivatedToNative(e domain.Event) (map[string]any, error) {
	s, ok := e.(tenant.Reactivated)
	if !ok {
		return nil, wrongType(tenant.ReactivatedType, e)
	}
	return map[string]any{"tenantId": s.TenantID.String(), "reactivatedAt": s.ReactivatedAt}, nil
}

func tenantReactivatedFromNative(m map[string]any) (domain.Event, error) {
	r := &record{m: m}
	e := tenant.Reactivated{TenantID: r.uuid("tenantId"), ReactivatedAt: r.time("reactivatedAt")}
	return e, r.err
}

func capsToNative(c limits.Caps) map[string]any {
	return map[string]any{
		"maxPerDay":    nullableLong(c.PerDay),
		"maxPerWindow": nullableLong(c.PerWindow),
		"windowDays":   nullableInt(c.WindowDays),
		"maxTotal":     nullableLong(c.Total),
	}
}

func capsFromNative(r *record) limits.Caps {
	return limits.Caps{
		PerDay:     r.optionalLong("maxPerDay"),
		PerWindow:  r.optionalLong("maxPerWindow"),
		WindowDays: r.optionalInt("windowDays"),
		Total:      r.optionalLong("maxTotal"),
	}
}

func limitsDefinedToNative(e domain.Event) (map[string]any, error) {
	d, ok := e.(limits.Defined)
	if !ok {
		return nil, wrongType(limits.DefinedType, e)
	}
	return map[string]any{
		"tenantId": d.TenantID.String(), "tenant": capsToNative(d.Tenant),
		"user": capsToNative(d.User), "definedAt": d.DefinedAt,
	}, nil
}

func limitsDefinedFromNative(m map[string]any) (domain.Event, error) {
	r := &record{m: m}
	tr, ur := r.record("tenant"), r.record("user")
	e := limits.Defined{TenantID: r.uuid("tenantId"), Tenant: capsFromNative(tr), User: capsFromNative(ur), DefinedAt: r.time("definedAt")}
	for _, err := range []error{r.err, tr.err, ur.err} {
		if err != nil {
			return nil, err
		}
	}
	return e, nil
}

func limitsTenantSetToNative(e domain.Event) (map[string]any, error) {
	s, ok := e.(limits.TenantSet)
	if !ok {
		return nil, wrongType(limits.TenantSetType, e)
	}
	return map[string]any{"tenantId": s.TenantID.String(), "caps": capsToNative(s.Caps), "setAt": s.SetAt}, nil
}

func limitsTenantSetFromNative(m map[string]any) (domain.Event, error) {
	r := &record{m: m}
	cr := r.record("caps")
	e := limits.TenantSet{TenantID: r.uuid("tenantId"), Caps: capsFromNative(cr), SetAt: r.time("setAt")}
	if err := firstErr(r.err, cr.err); err != nil {
		return nil, err
	}
	return e, nil
}

func limitsUserSetToNative(e domain.Event) (map[string]any, error) {
	s, ok := e.(limits.UserSet)
	if !ok {
		return nil, wrongType(limits.UserSetType, e)
	}
	return map[string]any{"tenantId": s.TenantID.String(), "caps": capsToNative(s.Caps), "setAt": s.SetAt}, nil
}

func limitsUserSetFromNative(m map[string]any) (domain.Event, error) {
	r := &record{m: m}
	cr := r.record("caps")
	e := limits.UserSet{TenantID: r.uuid("tenantId"), Caps: capsFromNative(cr), SetAt: r.time("setAt")}
	if err := firstErr(r.err, cr.err); err != nil {
		return nil, err
	}
	return e, nil
}
