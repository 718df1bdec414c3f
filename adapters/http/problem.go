package http

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/incentives-platform/incentives/domain"
)

// Problem types: stable URNs a client can switch on (docs/api.md lists them).
const (
	typeMalformed        = "urn:incentives:problem:malformed-request"
	typeValidation       = "urn:incentives:problem:validation-failed"
	typeUnsupportedMedia = "urn:incentives:problem:unsupported-media-type"
	typeTooLarge         = "urn:incentives:problem:request-too-large"
	typeUnauthenticated  = "urn:incentives:problem:unauthenticated"
	typeForbidden        = "urn:incentives:problem:forbidden"
	typeNotFound         = "urn:incentives:problem:not-found"
	typeVersionConflict  = "urn:incentives:problem:version-conflict"
	typeInvalidState     = "urn:incentives:problem:invalid-state-transition"
	typeMethodNotAllowed = "urn:incentives:problem:method-not-allowed"
	typeInternal         = "urn:incentives:problem:internal"
	typeNotYet           = "urn:incentives:problem:not-caught-up"

	typeIdempotencyReused     = "urn:incentives:problem:idempotency-key-reused"
	typeIdempotencyInProgress = "urn:incentives:problem:idempotency-key-in-progress"
)

// problem is an RFC 9457 problem details object.
type problem struct {
	Type      string       `json:"type"`
	Title     string       `json:"title"`
	Status    int          `json:"status"`
	Detail    string       `json:"detail,omitempty"`
	Instance  string       `json:"instance,omitempty"`
	RequestID string       `json:"requestId,omitempty"`
	Errors    []fieldError `json:"errors,omitempty"`
}

type fieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// httpError is an error the HTTP layer itself decided (bad JSON, no token).
type httpError struct {
	status int
	typ    string
	title  string
	detail string
	fields []fieldError
}

func (e *httpError) Error() string { return e.title + ": " + e.detail }

func badRequest(detail string) *httpError {
	return &httpError{status: http.StatusBadRequest, typ: typeMalformed, title: "Malformed request", detail: detail}
}

func invalidField(field, message string) *httpError {
	return &httpError{status: http.StatusBadRequest, typ: typeMalformed, title: "Malformed request",
		detail: field + ": " + message, fields: []fieldError{{field, message}}}
}

var (
	errUnauthenticated = &httpError{status: http.StatusUnauthorized, typ: typeUnauthenticated, title: "Unauthenticated",
		detail: "a valid bearer token is required"}
	errForbidden = &httpError{status: http.StatusForbidden, typ: typeForbidden, title: "Forbidden",
		detail: "your role may not do this"}
)

// writeError answers err as problem+json. It is the only place where errors
// become statuses.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	p := problem{Instance: r.URL.Path, RequestID: requestIDFrom(r.Context())}
	var (
		he *httpError
		ve *domain.ValidationError
	)
	switch {
	case errors.As(err, &he):
		p.Type, p.Title, p.Status, p.Detail, p.Errors = he.typ, he.title, he.status, he.detail, he.fields
	case errors.As(err, &ve):
		p.Type, p.Title, p.Status = typeValidation, "Validation failed", http.StatusUnprocessableEntity
		p.Detail = ve.Error()
		for _, v := range ve.Violations {
			p.Errors = append(p.Errors, fieldError{v.Field, v.Message})
		}
	case errors.Is(err, domain.ErrNotFound):
		p.Type, p.Title, p.Status, p.Detail = typeNotFound, "Not found", http.StatusNotFound, "no such resource"
	case errors.Is(err, domain.ErrVersionConflict):
		p.Type, p.Title, p.Status = typeVersionConflict, "Version conflict", http.StatusConflict
		p.Detail = "the resource changed since you read it; read it again and retry with its current ETag"
	case errors.Is(err, domain.ErrInvalidTransition):
		p.Type, p.Title, p.Status, p.Detail = typeInvalidState, "Invalid state transition", http.StatusConflict, err.Error()
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		return // the client went away; nobody is listening
	default:
		p.Type, p.Title, p.Status = typeInternal, "Internal error", http.StatusInternalServerError
		p.Detail = "the request failed on our side; quote the request id when reporting it"
		s.logger.ErrorContext(r.Context(), "request failed", "request_id", p.RequestID, "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if p.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	if p.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="incentives"`)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(p); err != nil {
		s.logger.DebugContext(r.Context(), "write problem", "err", err)
	}
}

// writeJSON answers v with status. It encodes before it writes anything, so
// a value that cannot be encoded is a 500, not a 2xx with an empty body.
func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	// Rule conditions are full of >= and &&; this is JSON, not HTML.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		s.writeError(w, r, fmt.Errorf("encode the answer: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if _, err := w.Write(body.Bytes()); err != nil {
		s.logger.DebugContext(r.Context(), "write response", "err", err, slog.String("path", r.URL.Path))
	}
}
