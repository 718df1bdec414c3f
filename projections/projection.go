package projections

import (
	"context"
	"errors"

	"github.com/incentives-platform/incentives/domain"
)

// Checkpoint is where a projection is in one partition of one source topic.
type Checkpoint struct {
	Projection string
	Topic      string
	Partition  int32
	// Offset is the Kafka offset of the delivery.
	Offset int64
	// Position is the event-store position of the delivered event.
	Position int64
}

// Delivery is one recorded event as a projection receives it.
type Delivery struct {
	Event      domain.RecordedEvent
	Checkpoint Checkpoint
}

// Projector keeps one read model up to date.
type Projector interface {
	// Name is stable: it names the projection's consumer group
	// ("projection.<name>") and its checkpoints. Renaming a projection makes
	// it read every topic again from the start.
	Name() string
	// Aggregates are the aggregates whose domain topics the projection reads.
	Aggregates() []string
	// Handle applies one delivery, idempotently. It is called for one
	// partition at a time but for several partitions concurrently, so it
	// must be safe for concurrent use.
	Handle(ctx context.Context, d Delivery) error
}

// ErrUnprojectable marks an event a read model can never hold as it stands
// (the database refuses its data). Retrying it would stall its partition
// and every event behind it, other tenants' too, so the runner sends it to
// the DLQ for an operator instead. Stores wrap such failures with it.
var ErrUnprojectable = errors.New("event cannot be projected")
