package postgres

import (
	"context"
	"database/sql"

	"github.com/incentives-platform/incentives/domain"
)

// StreamCreate exposes streamCreate to the test of the bulk append.
type StreamCreate = streamCreate

// CreateStreamsTx exposes createStreamsTx to the test that proves it writes
// what appendTx writes.
func (s *EventStore) CreateStreamsTx(ctx context.Context, tx *sql.Tx, creates []StreamCreate) ([]domain.RecordedEvent, error) {
	return s.createStreamsTx(ctx, tx, creates)
}
