package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/domain"
)

// maxAttempts bounds how often an unpinned update reloads after losing a race.
const maxAttempts = 3

// decideFunc picks the events to record given a stream's history; it returns
// domain.ErrNotFound for a stream that must exist but does not.
type decideFunc func(history []domain.Event) ([]domain.Event, error)

// update loads stream, lets decide choose the events, and appends them at the
// loaded version, recorded under tenantID. It returns the whole history
// including the new events.
//
// With ifMatch set (the client's If-Match), the stream must be at that version
// and a concurrent write is the client's conflict to resolve: nothing is
// retried. Without it, losing a race to another writer reloads and decides
// again, since the decision was never the client's to pin.
func update(ctx context.Context, store EventStore, tenantID uuid.UUID, stream domain.StreamID, ifMatch *int64, decide decideFunc) ([]domain.Event, error) {
	return updateOwned(ctx, store, stream, ifMatch, func(history []domain.Event) (uuid.UUID, []domain.Event, error) {
		events, err := decide(history)
		return tenantID, events, err
	})
}

// updateOwned is update for a stream whose tenant only its history tells (a
// platform admin changing a campaign by id): decide returns the tenant the
// events are recorded under along with them.
func updateOwned(ctx context.Context, store EventStore, stream domain.StreamID, ifMatch *int64,
	decide func(history []domain.Event) (uuid.UUID, []domain.Event, error)) ([]domain.Event, error) {
	for attempt := 1; ; attempt++ {
		history, version, err := store.Load(ctx, stream)
		if err != nil {
			return nil, err
		}
		// decide goes first: it refuses a stream the caller may not see, and
		// a version conflict must not tell that caller the stream exists.
		tenantID, events, err := decide(history)
		if err != nil {
			return nil, err
		}
		if ifMatch != nil && *ifMatch != version {
			return nil, fmt.Errorf("%s is at version %d, not %d: %w", stream, version, *ifMatch, domain.ErrVersionConflict)
		}
		if len(events) == 0 {
			return history, nil
		}
		_, err = store.Append(ctx, metadata(ctx, tenantID), domain.StreamAppend{Stream: stream, ExpectedVersion: version, Events: events})
		if errors.Is(err, domain.ErrVersionConflict) && ifMatch == nil && attempt < maxAttempts {
			continue
		}
		if err != nil {
			return nil, err
		}
		return append(history, events...), nil
	}
}
