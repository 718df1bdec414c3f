package http

import (
	"context"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/commands"
	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/limits"
	"github.com/incentives-platform/incentives/domain/tenant"
	"github.com/incentives-platform/incentives/projections"
)

// tenantCreateDTO is the body of POST /api/v1/tenants.
type tenantCreateDTO struct {
	Name *string `json:"name"`
}

// tenantSuspendDTO is the optional body of POST /api/v1/tenants/{id}:suspend.
type tenantSuspendDTO struct {
	Reason string `json:"reason"`
}

// tenantDTO is a tenant as the API shows it.
type tenantDTO struct {
	TenantID  string    `json:"tenantId"`
	Name      string    `json:"name"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
	Version   int64     `json:"version"`
}

func tenantFromAggregate(t *tenant.Tenant) tenantDTO {
	return tenantDTO{TenantID: t.ID().String(), Name: t.Name(), Status: string(t.Status()),
		CreatedAt: t.CreatedAt(), UpdatedAt: t.UpdatedAt(), Version: t.Version()}
}

func tenantFromView(v projections.TenantView) tenantDTO {
	return tenantDTO{TenantID: v.TenantID.String(), Name: v.Name, Status: string(v.Status),
		CreatedAt: v.CreatedAt, UpdatedAt: v.UpdatedAt, Version: v.Version}
}

type tenantListDTO struct {
	Items      []tenantDTO `json:"items"`
	NextCursor string      `json:"nextCursor,omitempty"`
}

// limitDTO is one scope's caps; null is unbounded.
type limitDTO struct {
	Scope        string `json:"scope"`
	MaxPerDay    *int64 `json:"maxPerDay"`
	MaxPerWindow *int64 `json:"maxPerWindow"`
	WindowDays   *int   `json:"windowDays"`
	MaxTotal     *int64 `json:"maxTotal"`
}

type limitsDTO struct {
	TenantID  string     `json:"tenantId"`
	Limits    []limitDTO `json:"limits"`
	UpdatedAt time.Time  `json:"updatedAt"`
	Version   int64      `json:"version"`
}

func limitFromCaps(scope string, c limits.Caps) limitDTO {
	d := limitDTO{Scope: scope, MaxPerDay: c.PerDay, MaxPerWindow: c.PerWindow, MaxTotal: c.Total}
	if c.WindowDays != 0 {
		d.WindowDays = &c.WindowDays
	}
	return d
}

// writeVersioned answers v with its version as a strong ETag.
func (s *Server) writeVersioned(w http.ResponseWriter, r *http.Request, status int, version int64, v any) {
	w.Header().Set("ETag", strconv.Quote(strconv.FormatInt(version, 10)))
	s.writeJSON(w, r, status, v)
}

func (s *Server) createTenant(w http.ResponseWriter, r *http.Request) {
	if err := requirePlatformAdmin(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	var in tenantCreateDTO
	if err := s.decodeJSON(w, r, &in, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	if in.Name == nil {
		s.writeError(w, r, &domain.ValidationError{Violations: []domain.Violation{{Field: "name", Message: "is required"}}})
		return
	}
	t, err := s.Commands.CreateTenant.Handle(r.Context(), commands.CreateTenant{TenantID: newResourceID(r), Name: *in.Name})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/tenants/"+t.ID().String())
	s.writeVersioned(w, r, http.StatusCreated, t.Version(), tenantFromAggregate(t))
}

// tenantID reads the {tenantId} path parameter.
func tenantID(r *http.Request) (uuid.UUID, error) {
	return parseUUID("tenantId", chi.URLParam(r, "tenantId"))
}

func (s *Server) getTenant(w http.ResponseWriter, r *http.Request) {
	serveTenantRead(s, w, r, s.Tenants.Tenant,
		func(v projections.TenantView) int64 { return v.Version },
		func(v projections.TenantView) any { return tenantFromView(v) })
}

// serveTenantRead answers a read of one of a tenant's resources: it checks
// the tenant id and the caller's access to that tenant, reads (waiting for
// X-Min-Version if asked), and answers the rendered view with its version as
// ETag.
func serveTenantRead[V any](s *Server, w http.ResponseWriter, r *http.Request,
	read func(context.Context, uuid.UUID) (V, error), version func(V) int64, render func(V) any) {
	id, err := tenantID(r)
	if err == nil {
		err = requireTenantAdmin(r, id)
	}
	var v V
	if err == nil {
		err = s.readAtLeast(r, func() (int64, error) {
			var err error
			v, err = read(r.Context(), id)
			return version(v), err
		})
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeVersioned(w, r, http.StatusOK, version(v), render(v))
}

const (
	defaultPageSize = 50
	maxPageSize     = 500
)

func (s *Server) listTenants(w http.ResponseWriter, r *http.Request) {
	if err := requirePlatformAdmin(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	limit, err := pageSize(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	after, err := decodeTenantCursor(r.URL.Query().Get("cursor"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	views, err := s.Tenants.ListTenants(r.Context(), after, limit+1)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	views, next := page(views, limit, func(v projections.TenantView) projections.TenantKey {
		return projections.TenantKey{CreatedAt: v.CreatedAt, ID: v.TenantID}
	})
	out := tenantListDTO{Items: make([]tenantDTO, 0, len(views)), NextCursor: next}
	for _, v := range views {
		out.Items = append(out.Items, tenantFromView(v))
	}
	s.writeJSON(w, r, http.StatusOK, out)
}

// page cuts views, read with limit+1, to one page and returns the cursor of
// the next page, or "" on the last one.
func page[V any](views []V, limit int, key func(V) projections.TenantKey) ([]V, string) {
	if len(views) <= limit {
		return views, ""
	}
	views = views[:limit]
	return views, encodeTenantCursor(key(views[limit-1]))
}

func pageSize(r *http.Request) (int, error) {
	raw := r.URL.Query().Get("limit")
	if raw == "" {
		return defaultPageSize, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > maxPageSize {
		return 0, invalidField("limit", "must be a whole number from 1 to "+strconv.Itoa(maxPageSize))
	}
	return n, nil
}

// Cursors are opaque to clients: base64url of "<createdAt>|<id>".
func encodeTenantCursor(k projections.TenantKey) string {
	return base64.RawURLEncoding.EncodeToString([]byte(k.CreatedAt.UTC().Format(time.RFC3339Nano) + "|" + k.ID.String()))
}

func decodeTenantCursor(raw string) (projections.TenantKey, error) {
	if raw == "" {
		return projections.TenantKey{}, nil
	}
	bad := invalidField("cursor", "is not a cursor this API returned")
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil {
		return projections.TenantKey{}, bad
	}
	ts, id, ok := strings.Cut(string(b), "|")
	at, err1 := time.Parse(time.RFC3339Nano, ts)
	uid, err2 := uuid.Parse(id)
	if !ok || err1 != nil || err2 != nil {
		return projections.TenantKey{}, bad
	}
	return projections.TenantKey{CreatedAt: at, ID: uid}, nil
}

// ifMatch reads an If-Match header: nil if absent, the version if it names one.
func ifMatch(r *http.Request) (*int64, error) {
	raw := strings.TrimSpace(r.Header.Get("If-Match"))
	if raw == "" || raw == "*" {
		return nil, nil
	}
	v, err := strconv.ParseInt(strings.Trim(strings.TrimPrefix(raw, "W/"), `"`), 10, 64)
	if err != nil || v < 1 {
		return nil, invalidField("If-Match", `must be an ETag this API returned, such as "3"`)
	}
	return &v, nil
}

func (s *Server) suspendTenant(w http.ResponseWriter, r *http.Request) {
	var in tenantSuspendDTO
	id, version, err := s.tenantCommandInput(w, r, &in)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	t, err := s.Commands.SuspendTenant.Handle(r.Context(), commands.SuspendTenant{TenantID: id, Reason: in.Reason, IfMatch: version})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeVersioned(w, r, http.StatusOK, t.Version(), tenantFromAggregate(t))
}

func (s *Server) reactivateTenant(w http.ResponseWriter, r *http.Request) {
	var in struct{}
	id, version, err := s.tenantCommandInput(w, r, &in)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	t, err := s.Commands.ReactivateTenant.Handle(r.Context(), commands.ReactivateTenant{TenantID: id, IfMatch: version})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeVersioned(w, r, http.StatusOK, t.Version(), tenantFromAggregate(t))
}

// tenantCommandInput checks what every tenant lifecycle command needs: a
// platform admin, a tenant id, an optional If-Match and an optional body.
func (s *Server) tenantCommandInput(w http.ResponseWriter, r *http.Request, body any) (uuid.UUID, *int64, error) {
	if err := requirePlatformAdmin(r); err != nil {
		return uuid.Nil, nil, err
	}
	id, err := tenantID(r)
	if err != nil {
		return uuid.Nil, nil, err
	}
	version, err := ifMatch(r)
	if err != nil {
		return uuid.Nil, nil, err
	}
	return id, version, s.decodeJSON(w, r, body, true)
}

func (s *Server) getLimits(w http.ResponseWriter, r *http.Request) {
	serveTenantRead(s, w, r, s.Tenants.Limits,
		func(v projections.LimitsView) int64 { return v.Version },
		func(v projections.LimitsView) any {
			return limitsDTO{
				TenantID:  v.TenantID.String(),
				Limits:    []limitDTO{limitFromCaps("GLOBAL", v.Tenant), limitFromCaps("USER", v.User)},
				UpdatedAt: v.UpdatedAt, Version: v.Version,
			}
		})
}
