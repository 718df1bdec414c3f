package http

import (
	"context"
	"net/http"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/commands"
	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/limits"
)

// limitCapsDTO is the body of POST /tenants/{id}/limits and /user-limits. A
// pointer tells an absent or null cap (unbounded) from 0 (nothing allowed).
type limitCapsDTO struct {
	MaxPerDay    *int64 `json:"maxPerDay"`
	MaxPerWindow *int64 `json:"maxPerWindow"`
	WindowDays   *int   `json:"windowDays"`
	MaxTotal     *int64 `json:"maxTotal"`
}

// caps maps the body onto the domain's caps. The domain spells "no window"
// as a zero length, so an explicit "windowDays": 0 would silently mean no
// window; it is refused here instead, as the only rule the wire format adds.
func (d limitCapsDTO) caps() (limits.Caps, error) {
	c := limits.Caps{PerDay: d.MaxPerDay, PerWindow: d.MaxPerWindow, Total: d.MaxTotal}
	if d.WindowDays != nil {
		if *d.WindowDays == 0 {
			return c, &domain.ValidationError{Violations: []domain.Violation{{Field: "windowDays", Message: "must be at least 1; send null for no window"}}}
		}
		c.WindowDays = *d.WindowDays
	}
	return c, nil
}

func limitsFromPolicy(p *limits.Policy) limitsDTO {
	return limitsDTO{
		TenantID:  p.TenantID().String(),
		Limits:    []limitDTO{limitFromCaps("GLOBAL", p.Tenant()), limitFromCaps("USER", p.User())},
		UpdatedAt: p.UpdatedAt(), Version: p.Version(),
	}
}

// setTenantLimits replaces the tenant-wide caps (scope GLOBAL).
func (s *Server) setTenantLimits(w http.ResponseWriter, r *http.Request) {
	s.setLimits(w, r, func(ctx context.Context, id uuid.UUID, caps limits.Caps, version *int64) (*limits.Policy, error) {
		return s.Commands.SetTenantLimits.Handle(ctx, commands.SetTenantLimits{TenantID: id, Caps: caps, IfMatch: version})
	})
}

// setUserLimits replaces the per-user caps (scope USER).
func (s *Server) setUserLimits(w http.ResponseWriter, r *http.Request) {
	s.setLimits(w, r, func(ctx context.Context, id uuid.UUID, caps limits.Caps, version *int64) (*limits.Policy, error) {
		return s.Commands.SetUserLimits.Handle(ctx, commands.SetUserLimits{TenantID: id, Caps: caps, IfMatch: version})
	})
}

// setLimits checks what both limit commands need (a tenant id, an admin of
// that tenant, an optional If-Match, a body of caps) and answers the whole
// policy, as GET /tenants/{id}/limits shows it, so a client can compare or
// cache it without a second read.
func (s *Server) setLimits(w http.ResponseWriter, r *http.Request,
	set func(context.Context, uuid.UUID, limits.Caps, *int64) (*limits.Policy, error)) {
	id, err := tenantID(r)
	if err == nil {
		err = requireTenantAdmin(r, id)
	}
	var version *int64
	if err == nil {
		version, err = ifMatch(r)
	}
	var in limitCapsDTO
	if err == nil {
		err = s.decodeJSON(w, r, &in, false)
	}
	var caps limits.Caps
	if err == nil {
		caps, err = in.caps()
	}
	var p *limits.Policy
	if err == nil {
		p, err = set(r.Context(), id, caps, version)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeVersioned(w, r, http.StatusOK, p.Version(), limitsFromPolicy(p))
}
