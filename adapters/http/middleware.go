package http

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/adapters/auth"
	"github.com/incentives-platform/incentives/commands"
)

type ctxKey int

const (
	requestIDKey ctxKey = iota
	principalKey
)

// maxRequestIDLength bounds a client-supplied X-Request-Id.
const maxRequestIDLength = 128

// requestID takes the client's X-Request-Id if it is sane, or makes one, and
// echoes it in the response: it is the correlation id of every event the
// request records.
func (s *Server) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if id == "" || len(id) > maxRequestIDLength || strings.IndexFunc(id, func(c rune) bool { return c < 0x21 || c > 0x7e }) >= 0 {
			id = uuid.NewString()
		}
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey, id)))
	})
}

func requestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (w *statusRecorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

// Unwrap lets http.ResponseController reach the connection's writer (POST
// /cohorts extends its deadlines for long uploads).
func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

// accessLog logs one line per request and records its metrics. The
// Authorization header and query string are never logged: they can hold tokens.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		route := chi.RouteContext(r.Context()).RoutePattern()
		if route == "" {
			route = "unmatched"
		}
		took := time.Since(start)
		s.Observer.ObserveRequest(r.Method, route, rec.status, took)
		if route == "/healthz" || route == "/readyz" || route == "/metrics" {
			return // probes would drown the log
		}
		s.logger.InfoContext(r.Context(), "request", "method", r.Method, "route", route, "path", r.URL.Path,
			"status", rec.status, "bytes", rec.bytes, "took", took, "request_id", requestIDFrom(r.Context()))
	})
}

func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.logger.ErrorContext(r.Context(), "panic", "value", v, "stack", string(debug.Stack()))
				s.writeError(w, r, fmt.Errorf("panic: %v", v))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// authenticate requires a valid bearer token and records who asked in the
// context, for authorization and for the metadata of recorded events.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			s.writeError(w, r, errUnauthenticated)
			return
		}
		p, err := s.Verifier.Verify(strings.TrimSpace(token))
		if err != nil {
			detail := "the bearer token is not valid"
			if errors.Is(err, auth.ErrTokenExpired) {
				detail = "the bearer token has expired"
			}
			s.writeError(w, r, &httpError{status: http.StatusUnauthorized, typ: typeUnauthenticated, title: "Unauthenticated", detail: detail})
			return
		}
		ctx := context.WithValue(r.Context(), principalKey, p)
		ctx = commands.WithOrigin(ctx, commands.Origin{Actor: p.Actor(), CorrelationID: requestIDFrom(ctx)})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func principalFrom(ctx context.Context) auth.Principal {
	p, _ := ctx.Value(principalKey).(auth.Principal)
	return p
}

// requirePlatformAdmin refuses everyone but platform admins.
func requirePlatformAdmin(r *http.Request) error {
	if principalFrom(r.Context()).Role != auth.RolePlatformAdmin {
		return errForbidden
	}
	return nil
}

// requireTenantAdmin lets platform admins and the admins of tenantID through.
// Another tenant's admin is told the resource does not exist: whether it does
// is not theirs to know.
func requireTenantAdmin(r *http.Request, tenantID uuid.UUID) error {
	p := principalFrom(r.Context())
	switch {
	case p.Role == auth.RolePlatformAdmin:
		return nil
	case p.Role != auth.RoleTenantAdmin:
		return errForbidden
	case p.TenantID != tenantID:
		return &httpError{status: http.StatusNotFound, typ: typeNotFound, title: "Not found", detail: "no such resource"}
	}
	return nil
}

// actingTenant returns the tenant an admin caller acts for: its own tenant
// for a tenant admin, uuid.Nil (any tenant) for a platform admin. Commands on
// a tenant's resources take it as their TenantID and answer domain.ErrNotFound
// for a resource of another tenant. Users are refused.
func actingTenant(r *http.Request) (uuid.UUID, error) {
	p := principalFrom(r.Context())
	switch p.Role {
	case auth.RolePlatformAdmin:
		return uuid.Nil, nil
	case auth.RoleTenantAdmin:
		return p.TenantID, nil
	}
	return uuid.Nil, errForbidden
}

// requireOwner lets through a caller acting for tenant (actingTenant) when it
// may see a resource of owner; another tenant's resource does not exist for it.
func requireOwner(acting, owner uuid.UUID) error {
	if acting != uuid.Nil && acting != owner {
		return &httpError{status: http.StatusNotFound, typ: typeNotFound, title: "Not found", detail: "no such resource"}
	}
	return nil
}
