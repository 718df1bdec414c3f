package postgres

import (
	"testing"

	"github.com/incentives-platform/incentives/adapters/avro"
	"github.com/incentives-platform/incentives/adapters/kafka"
)

// NewTestEventStore returns an event store over db wired as in production:
// Avro codec and Kafka domain messages. Exported to the external test package.
func NewTestEventStore(tb testing.TB, db *DB) *EventStore {
	tb.Helper()
	_, codec, err := avro.LoadPlatform()
	if err != nil {
		tb.Fatal(err)
	}
	s, err := NewEventStore(db, EventStoreConfig{Codec: codec, Outbox: kafka.DomainMessages{Codec: codec}})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}
