package domain

import (
	"strconv"
	"time"

	"github.com/google/uuid"
)

// Event is a fact an aggregate recorded. EventType is the stable, versioned
// name the event is stored and published under, such as "tenant.created.v1";
// it is declared as a constant next to the event type, never derived from the
// Go type name, so renaming Go code never renames stored history.
type Event interface {
	EventType() string
}

// StreamID names the event stream of one aggregate instance.
type StreamID struct {
	// Aggregate is the aggregate's stable name ("tenant", "limits"). It also
	// names the domain topic the stream's events are published to.
	Aggregate string
	// ID is the aggregate instance's id.
	ID uuid.UUID
}

// String returns the stream's storage key, "<aggregate>-<uuid>".
func (s StreamID) String() string { return s.Aggregate + "-" + s.ID.String() }

// Metadata travels with every recorded event: whose data it is, which request
// caused it and who asked.
type Metadata struct {
	// TenantID is the tenant the event belongs to.
	TenantID uuid.UUID
	// CorrelationID ties together everything one request or message caused.
	CorrelationID string
	// CausationID is the id of the request or event that directly caused this one.
	CausationID string
	// Actor is who asked: "<role>:<subject>" of the caller's token, or the
	// name of an internal process.
	Actor string
}

// StreamAppend is one stream's part of an atomic append: its events are
// written only if the stream is still at ExpectedVersion (0 for a stream that
// must not exist yet).
type StreamAppend struct {
	Stream          StreamID
	ExpectedVersion int64
	Events          []Event
}

// RecordedEvent is an event as the event store holds it.
type RecordedEvent struct {
	// Position is the store-wide sequence number. Positions are unique and
	// increase within a stream, but are assigned before commit, so a reader
	// of the whole store must not use them alone as a cursor.
	Position int64
	// EventID is derived from the stream and version, so every copy of an
	// event (a relay retry, a replay) carries the same id.
	EventID    uuid.UUID
	Stream     StreamID
	Version    int64
	Event      Event
	Metadata   Metadata
	RecordedAt time.Time
}

// eventIDSpace is the UUIDv5 namespace of event ids. It must never change:
// consumers deduplicate by event id.
var eventIDSpace = uuid.MustParse("3f0c3a4e-5d0b-4c59-9a57-6f4a8f5b2a10")

// EventID returns the id of the event at version in stream: the same stream
// and version always give the same id.
func EventID(stream StreamID, version int64) uuid.UUID {
	return uuid.NewSHA1(eventIDSpace, []byte(stream.String()+"/"+strconv.FormatInt(version, 10)))
}
