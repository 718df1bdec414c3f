package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/domain"
)

// Origin says who asked for a command and in which request: the adapter that
// received it (the HTTP API, the engine) puts it in the context.
type Origin struct {
	// Actor is "<role>:<subject>" of the caller, or an internal process name.
	Actor string
	// CorrelationID ties together everything one request caused (the HTTP
	// request id, or the source message's correlation id).
	CorrelationID string
	// CausationID is the id of what directly caused the command, if not the request.
	CausationID string
}

type originKey struct{}

// WithOrigin returns ctx carrying o.
func WithOrigin(ctx context.Context, o Origin) context.Context {
	return context.WithValue(ctx, originKey{}, o)
}

// OriginFrom returns the origin in ctx, or the zero Origin.
func OriginFrom(ctx context.Context) Origin {
	o, _ := ctx.Value(originKey{}).(Origin)
	return o
}

func metadata(ctx context.Context, tenantID uuid.UUID) domain.Metadata {
	o := OriginFrom(ctx)
	return domain.Metadata{TenantID: tenantID, CorrelationID: o.CorrelationID, CausationID: o.CausationID, Actor: o.Actor}
}
