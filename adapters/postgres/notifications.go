package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/incentives-platform/incentives/domain/engine"
)

// Notifications reads what the DCM replays to a client that reconnects with
// `since`: one user's incentives after a point, in the order (recorded_at,
// issued_at, incentive_id): the order in which the engine wrote them (and
// so, but for the milliseconds between concurrent transactions, the order
// they went out live), and within one batch the order of their actions. Not issued_at: that is the time of the action that earned the reward,
// and a late action's incentive, written while the client was away, would
// sort before the client's cursor and never be replayed. It reads the
// engine's incentive table, which is written in the transaction that issues
// an incentive and before it is published, so a notification the client
// missed is always there by the time it could have been sent. It is safe
// for concurrent use.
type Notifications struct {
	db *DB
}

// NewNotifications returns the catch-up reads over db.
func NewNotifications(db *DB) *Notifications { return &Notifications{db: db} }

// incentiveColumns are the columns scanIncentive reads, qualified by i.
const incentiveColumns = `i.incentive_id, i.decision_id, i.tenant_id, i.campaign_id, i.campaign_version, i.user_id,
	i.source_event_id, i.type, i.reward_currency, i.reward_amount::text, i.issued_at`

// IncentivesAfter returns up to limit incentives of the tenant's user that
// come strictly after the incentive after, oldest first. An incentive id
// that is not this user's (unknown, another user's, another tenant's) has no
// place in the user's history: the answer is empty, not an error, and says
// nothing about whose it is.
func (n *Notifications) IncentivesAfter(ctx context.Context, tenantID uuid.UUID, userID string, after uuid.UUID, limit int) ([]engine.Incentive, error) {
	return n.query(ctx, `
		SELECT `+incentiveColumns+`
		FROM incentive s
		JOIN incentive i ON i.tenant_id = s.tenant_id AND i.user_id = s.user_id
		                AND (i.recorded_at, i.issued_at, i.incentive_id) > (s.recorded_at, s.issued_at, s.incentive_id)
		WHERE s.incentive_id = $3 AND s.tenant_id = $1 AND s.user_id = $2
		ORDER BY i.recorded_at, i.issued_at, i.incentive_id
		LIMIT $4`, tenantID, userID, after, limit)
}

// IncentivesSince returns up to limit incentives of the tenant's user
// written at or after since, oldest first. "At" is included: one batch
// writes several incentives at the same instant, and a client that passes
// the time of the last one it saw would otherwise miss its siblings (it may
// see that one again; an incentive id as the cursor never repeats one).
func (n *Notifications) IncentivesSince(ctx context.Context, tenantID uuid.UUID, userID string, since time.Time, limit int) ([]engine.Incentive, error) {
	return n.query(ctx, `
		SELECT `+incentiveColumns+`
		FROM incentive i
		WHERE i.tenant_id = $1 AND i.user_id = $2 AND i.recorded_at >= $3
		ORDER BY i.recorded_at, i.issued_at, i.incentive_id
		LIMIT $4`, tenantID, userID, since, limit)
}

func (n *Notifications) query(ctx context.Context, q string, tenantID uuid.UUID, userID string, cursor any, limit int) ([]engine.Incentive, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := n.db.Pool.Query(ctx, q, tenantID, userID, cursor, limit)
	if err != nil {
		return nil, fmt.Errorf("incentives of user %q of tenant %s: %w", userID, tenantID, err)
	}
	out, err := pgx.CollectRows(rows, scanIncentive)
	if err != nil {
		return nil, fmt.Errorf("incentives of user %q of tenant %s: %w", userID, tenantID, err)
	}
	return out, nil
}
