package postgres

import (
	"context"
	"database/sql"

	"github.com/incentives-platform/incentives/domain"
)

// AppendTx exposes appendTx to tests that need to hold a transaction open.
func (s *EventStore) AppendTx(ctx context.Context, tx *sql.Tx, meta domain.Metadata, appends ...domain.StreamAppend) ([]domain.RecordedEvent, error) {
	return s.appendTx(ctx, tx, meta, appends)
}

// StartCursor exposes startCursor.
func (s *EventStore) StartCursor(ctx context.Context, opt ReplayOptions) (Cursor, error) {
	return s.startCursor(ctx, opt)
}
