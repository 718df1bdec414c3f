package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/incentives-platform/incentives/domain/rules"
	"github.com/incentives-platform/incentives/projections"
)

var _ projections.IncentivesStore = (*IncentiveViews)(nil)

// IncentiveChangeMapper turns a change of an incentive_view row into the
// message the relay will publish, and names its topic: before is the row
// before the change (nil for a new row), after the row as written. It must
// be safe for concurrent use.
type IncentiveChangeMapper interface {
	IncentiveChangeMessage(before, after *projections.IncentiveView) (topic string, msg *message.Message, err error)
}

// IncentiveViews is the incentive read model (table incentive_view), the
// incentives projection's store. Each change of a row is published as a
// change event (the db.incentives stream) through the outbox, in the
// transaction that writes the row and the checkpoint: the stream holds a
// change if and only if the table does, and a delivery that changes nothing
// publishes nothing. It is safe for concurrent use.
type IncentiveViews struct {
	db      *DB
	changes IncentiveChangeMapper
}

// NewIncentiveViews returns the read model over db, publishing its changes
// as changes maps them. It panics on a nil dependency.
func NewIncentiveViews(db *DB, changes IncentiveChangeMapper) *IncentiveViews {
	if db == nil || changes == nil {
		panic("postgres: NewIncentiveViews needs a database and a change mapper")
	}
	return &IncentiveViews{db: db, changes: changes}
}

// DatabaseName is the name of the database db is connected to.
func (db *DB) DatabaseName() string { return db.Pool.Config().ConnConfig.Database }

const incentiveViewColumns = `incentive_id, tenant_id, campaign_id, campaign_version, decision_id, user_id, source_event_id,
	reward_type, reward_currency, reward_amount, issued_at, position, version`

func scanIncentiveView(row pgx.Row) (projections.IncentiveView, error) {
	var v projections.IncentiveView
	err := scanIncentiveInto(row, &v)
	return v, err
}

// scanIncentiveInto scans the incentiveViewColumns of row, and then extra.
func scanIncentiveInto(row pgx.Row, v *projections.IncentiveView, extra ...any) error {
	var typ string
	err := row.Scan(append([]any{&v.IncentiveID, &v.TenantID, &v.CampaignID, &v.CampaignVersion, &v.DecisionID, &v.UserID, &v.SourceEventID,
		&typ, &v.RewardCurrency, &v.RewardAmount, &v.IssuedAt, &v.Position, &v.Version}, extra...)...)
	v.RewardType, v.IssuedAt = rules.RewardType(typ), v.IssuedAt.UTC()
	return err
}

// outboxPublisher publishes to the outbox in tx, for the relay to forward.
func outboxPublisher(tx *sql.Tx) (message.Publisher, error) {
	pub, err := wsql.NewPublisher(tx, wsql.PublisherConfig{SchemaAdapter: wsql.DefaultPostgreSQLSchema{}}, nil)
	if err != nil {
		return nil, err
	}
	return forwarder.NewPublisher(pub, forwarder.PublisherConfig{ForwarderTopic: OutboxTopic}), nil
}

func incentiveViewArgs(v *projections.IncentiveView) []any {
	return []any{v.IncentiveID, v.TenantID, v.CampaignID, v.CampaignVersion, v.DecisionID, v.UserID, v.SourceEventID,
		string(v.RewardType), v.RewardCurrency, numeric(v.RewardAmount), v.IssuedAt, v.Position, v.Version}
}

// UpdateIncentive implements projections.IncentivesStore. In one
// transaction it loads the row under a lock, lets evolve compute the next,
// writes it if it changed together with its change event in the outbox, and
// writes the checkpoint. A data exception (an amount too large for the
// column) wraps projections.ErrUnprojectable.
func (s *IncentiveViews) UpdateIncentive(ctx context.Context, cp projections.Checkpoint, id uuid.UUID, evolve func(*projections.IncentiveView) *projections.IncentiveView) error {
	tx, err := s.db.SQL.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("project incentive %s: begin: %w", id, err)
	}
	if err := s.update(ctx, tx, cp, id, evolve); err != nil {
		return unprojectable(errors.Join(err, ignoreTxDone(tx.Rollback())))
	}
	if err := tx.Commit(); err != nil {
		return unprojectable(fmt.Errorf("project incentive %s: commit: %w", id, err))
	}
	return nil
}

func (s *IncentiveViews) update(ctx context.Context, tx *sql.Tx, cp projections.Checkpoint, id uuid.UUID, evolve func(*projections.IncentiveView) *projections.IncentiveView) error {
	raced, err := s.apply(ctx, tx, id, evolve)
	if raced {
		// Another delivery created the row after this one found none; its
		// insert has committed, so loading again finds it.
		if raced, err = s.apply(ctx, tx, id, evolve); raced {
			err = fmt.Errorf("incentive view %s: created concurrently, then not found", id)
		}
	}
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, saveCheckpointSQL, checkpointArgs(cp)...); err != nil {
		return fmt.Errorf("save checkpoint of %s: %w", cp.Projection, err)
	}
	return nil
}

// apply loads the row of id under a lock, evolves it and, if it changed,
// writes it and its change event. raced reports that there was no row to
// lock but a concurrent transaction inserted one before this one could:
// nothing was written, and the caller loads again.
func (s *IncentiveViews) apply(ctx context.Context, tx *sql.Tx, id uuid.UUID, evolve func(*projections.IncentiveView) *projections.IncentiveView) (raced bool, err error) {
	var cur *projections.IncentiveView
	v, err := scanIncentiveView(tx.QueryRowContext(ctx, `SELECT `+incentiveViewColumns+` FROM incentive_view WHERE incentive_id = $1 FOR UPDATE`, id))
	switch {
	case err == nil:
		cur = &v
	case !errors.Is(err, sql.ErrNoRows):
		return false, fmt.Errorf("load incentive view %s: %w", id, err)
	}
	next := evolve(cur)
	if next == cur || next == nil {
		return false, nil
	}
	// The row as the table holds it (the amount at the column's scale) is
	// what the change event carries, so a sink ends up with the table.
	var saved projections.IncentiveView
	if cur == nil {
		saved, err = scanIncentiveView(tx.QueryRowContext(ctx, `
			INSERT INTO incentive_view (`+incentiveViewColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
			ON CONFLICT (incentive_id) DO NOTHING
			RETURNING `+incentiveViewColumns, incentiveViewArgs(next)...))
		if errors.Is(err, sql.ErrNoRows) {
			return true, nil
		}
	} else {
		saved, err = scanIncentiveView(tx.QueryRowContext(ctx, `
			UPDATE incentive_view SET tenant_id = $2, campaign_id = $3, campaign_version = $4, decision_id = $5, user_id = $6,
			    source_event_id = $7, reward_type = $8, reward_currency = $9, reward_amount = $10, issued_at = $11,
			    position = $12, version = $13
			WHERE incentive_id = $1
			RETURNING `+incentiveViewColumns, incentiveViewArgs(next)...))
	}
	if err != nil {
		return false, fmt.Errorf("save incentive view %s: %w", id, err)
	}
	saved.RecordedAt = next.RecordedAt
	topic, msg, err := s.changes.IncentiveChangeMessage(cur, &saved)
	if err != nil {
		return false, fmt.Errorf("change event of incentive view %s: %w", id, err)
	}
	outbox, err := outboxPublisher(tx)
	if err != nil {
		return false, err
	}
	if err := outbox.Publish(topic, msg); err != nil {
		return false, fmt.Errorf("outbox: change event of incentive view %s: %w", id, err)
	}
	return false, nil
}
