package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	enginecmd "github.com/incentives-platform/incentives/commands/engine"
	"github.com/incentives-platform/incentives/domain/engine"
	"github.com/incentives-platform/incentives/domain/rules"
)

var _ enginecmd.PublishLog = (*PublishLog)(nil)

// PublishLog is INCENTIVE_EVENT_LOG: which incentives reached
// incentive-generated. The engine's batch queues each incentive it issues in
// incentive_unpublished; marking it published moves it from there to the
// log in one statement, so the republisher reads only the small queue and
// never anti-joins every incentive ever issued with the log.
// It is safe for concurrent use.
type PublishLog struct {
	db *DB
}

// NewPublishLog returns the publish log over db.
func NewPublishLog(db *DB) *PublishLog { return &PublishLog{db: db} }

// MarkPublished implements commands/engine.PublishLog. Marking an incentive
// again keeps its first published_at.
func (l *PublishLog) MarkPublished(ctx context.Context, ids []uuid.UUID, at time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := l.db.Pool.Exec(ctx, `
		WITH d AS (
			DELETE FROM incentive_unpublished WHERE incentive_id = ANY($1::uuid[])
		)
		INSERT INTO incentive_event_log (incentive_id, user_id, published_at)
		SELECT i.incentive_id, i.user_id, $2 FROM incentive i WHERE i.incentive_id = ANY($1::uuid[])
		ORDER BY i.incentive_id
		ON CONFLICT DO NOTHING`, ids, at)
	if err != nil {
		return fmt.Errorf("mark %d incentives published: %w", len(ids), err)
	}
	return nil
}

// Unpublished implements commands/engine.PublishLog. "Issued before
// olderThan" is read as committed by the engine before olderThan: an
// incentive's IssuedAt is its event's time, which for a late event is long
// past when the batch commits, and the republisher must leave the consumer
// its grace to publish what it just committed. Oldest first.
func (l *PublishLog) Unpublished(ctx context.Context, olderThan time.Time, limit int) ([]engine.Incentive, error) {
	rows, err := l.db.Pool.Query(ctx, `
		SELECT `+incentiveColumns+`
		FROM incentive_unpublished p
		JOIN incentive i ON i.incentive_id = p.incentive_id
		WHERE p.recorded_at < $1
		  AND NOT EXISTS (SELECT 1 FROM incentive_event_log l WHERE l.incentive_id = p.incentive_id)
		ORDER BY p.recorded_at, p.incentive_id
		LIMIT $2`, olderThan, limit)
	if err != nil {
		return nil, fmt.Errorf("unpublished incentives: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanIncentive)
	if err != nil {
		return nil, fmt.Errorf("unpublished incentives: %w", err)
	}
	return out, nil
}

func scanIncentive(row pgx.CollectableRow) (engine.Incentive, error) {
	var (
		inc         engine.Incentive
		source      string
		typ, amount string
		issuedAt    time.Time
	)
	if err := row.Scan(&inc.ID, &inc.DecisionID, &inc.TenantID, &inc.CampaignID, &inc.CampaignVersion, &inc.UserID, &source,
		&typ, &inc.Reward.Currency, &amount, &issuedAt); err != nil {
		return inc, err
	}
	var err error
	if inc.SourceEventID, err = uuid.Parse(source); err != nil {
		return inc, fmt.Errorf("incentive %s: source event id %q: %w", inc.ID, source, err)
	}
	if inc.Reward.Amount, err = decimal.NewFromString(amount); err != nil {
		return inc, fmt.Errorf("incentive %s: amount %q: %w", inc.ID, amount, err)
	}
	inc.Reward.Type, inc.IssuedAt = rules.RewardType(typ), issuedAt.UTC()
	return inc, nil
}
