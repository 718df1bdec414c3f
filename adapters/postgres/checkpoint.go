package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/incentives-platform/incentives/projections"
)

// project runs fn, a projection's read-model change, in one transaction with
// the write of its checkpoint.
func (db *DB) project(ctx context.Context, cp projections.Checkpoint, fn func(pgx.Tx) error) error {
	return unprojectable(db.inTx(ctx, func(tx pgx.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, saveCheckpointSQL, checkpointArgs(cp)...); err != nil {
			return fmt.Errorf("save checkpoint of %s: %w", cp.Projection, err)
		}
		return nil
	}))
}

// saveCheckpointSQL writes a projection's checkpoint, with checkpointArgs;
// a projection runs it in the transaction of its read-model change.
const saveCheckpointSQL = `
	INSERT INTO projection_checkpoint (projection, topic, partition, kafka_offset, position, updated_at)
	VALUES ($1, $2, $3, $4, $5, now())
	ON CONFLICT (projection, topic, partition) DO UPDATE
	SET kafka_offset = excluded.kafka_offset, position = excluded.position, updated_at = excluded.updated_at`

func checkpointArgs(cp projections.Checkpoint) []any {
	return []any{cp.Projection, cp.Topic, cp.Partition, cp.Offset, cp.Position}
}

// unprojectable wraps a data exception (SQLSTATE class 22: bad encoding,
// out of range), which will fail the same way on every retry, with
// projections.ErrUnprojectable; other errors it returns as they are.
func unprojectable(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "22") {
		return fmt.Errorf("%w: %w", projections.ErrUnprojectable, err)
	}
	return err
}

// Checkpoints returns the checkpoints of a projection, by topic and partition.
func (db *DB) Checkpoints(ctx context.Context, projection string) ([]projections.Checkpoint, error) {
	rows, err := db.Pool.Query(ctx, `
		SELECT projection, topic, partition, kafka_offset, position FROM projection_checkpoint
		WHERE projection = $1 ORDER BY topic, partition`, projection)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (projections.Checkpoint, error) {
		var c projections.Checkpoint
		err := r.Scan(&c.Projection, &c.Topic, &c.Partition, &c.Offset, &c.Position)
		return c, err
	})
}
