package commands

import (
	"context"
	"time"

	"github.com/incentives-platform/incentives/domain"
)

// EventStore is where aggregates' histories live. Implementations must be safe
// for concurrent use.
type EventStore interface {
	// Load returns the stream's events, oldest first, and its version; a
	// stream that does not exist has version 0 and no events.
	Load(ctx context.Context, stream domain.StreamID) ([]domain.Event, int64, error)
	// Append records the events of all given streams atomically, or nothing.
	// It returns an error wrapping domain.ErrVersionConflict if any stream is
	// not at its ExpectedVersion.
	Append(ctx context.Context, meta domain.Metadata, appends ...domain.StreamAppend) ([]domain.RecordedEvent, error)
}

// Clock tells the time. Tests pass a fixed one.
type Clock interface {
	Now() time.Time
}

// SystemClock is the wall clock, in UTC, to the millisecond: the precision of
// every recorded instant (the Avro contracts carry timestamp-millis), so what
// a command returns is exactly what a later read returns.
type SystemClock struct{}

// Now returns the current time.
func (SystemClock) Now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

// Handler handles one command type and returns its result.
type Handler[C any, R any] interface {
	Handle(ctx context.Context, cmd C) (R, error)
}
