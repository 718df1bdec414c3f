// Package memstore is an in-memory event store with the Postgres store's
// contract (adapters/eventstoretest runs the same conformance suite against
// both). Handler tests use it; nothing in production does, since it forgets
// everything when the process exits and has no outbox.
package memstore

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/incentives-platform/incentives/commands"
	"github.com/incentives-platform/incentives/domain"
)

var _ commands.EventStore = (*Store)(nil)

// Store is safe for concurrent use.
type Store struct {
	mu       sync.Mutex
	streams  map[string][]domain.RecordedEvent
	position int64
}

// New returns an empty store.
func New() *Store { return &Store{streams: map[string][]domain.RecordedEvent{}} }

// Load returns a stream's events and version.
func (s *Store) Load(_ context.Context, stream domain.StreamID) ([]domain.Event, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	recs := s.streams[stream.String()]
	events := make([]domain.Event, len(recs))
	for i, r := range recs {
		events[i] = r.Event
	}
	return events, int64(len(recs)), nil
}

// Append writes all streams or none.
func (s *Store) Append(_ context.Context, meta domain.Metadata, appends ...domain.StreamAppend) ([]domain.RecordedEvent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range appends {
		if head := int64(len(s.streams[a.Stream.String()])); head != a.ExpectedVersion {
			return nil, fmt.Errorf("stream %s is at version %d, not %d: %w", a.Stream, head, a.ExpectedVersion, domain.ErrVersionConflict)
		}
	}
	var out []domain.RecordedEvent
	now := time.Now().UTC()
	for _, a := range appends {
		for i, e := range a.Events {
			s.position++
			v := a.ExpectedVersion + int64(i) + 1
			rec := domain.RecordedEvent{Position: s.position, EventID: domain.EventID(a.Stream, v), Stream: a.Stream,
				Version: v, Event: e, Metadata: meta, RecordedAt: now}
			s.streams[a.Stream.String()] = append(s.streams[a.Stream.String()], rec)
			out = append(out, rec)
		}
	}
	return out, nil
}

// Recorded returns every recorded event of stream, for assertions on metadata.
func (s *Store) Recorded(stream domain.StreamID) []domain.RecordedEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]domain.RecordedEvent(nil), s.streams[stream.String()]...)
}

// Count returns the number of events in the store.
func (s *Store) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int(s.position)
}
