package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/commands"
	"github.com/incentives-platform/incentives/domain/rules"
)

var _ commands.ActionLog = (*ActionLog)(nil)

// ActionLog reads the action-event log (table event) for dynamic cohorts.
type ActionLog struct {
	db *DB
}

// NewActionLog returns the log over db.
func NewActionLog(db *DB) *ActionLog { return &ActionLog{db: db} }

// UserSummary implements commands.ActionLog.
func (l *ActionLog) UserSummary(ctx context.Context, tenantID uuid.UUID) (int64, []string, error) {
	var (
		users int64
		codes []string
	)
	err := l.db.Pool.QueryRow(ctx, `
		SELECT (SELECT count(DISTINCT user_id) FROM event WHERE tenant_id = $1),
		       ARRAY(SELECT action_code FROM action UNION SELECT action_code FROM event WHERE tenant_id = $1 ORDER BY 1)`,
		tenantID).Scan(&users, &codes)
	if err != nil {
		return 0, nil, fmt.Errorf("summarise actions of tenant %s: %w", tenantID, err)
	}
	return users, codes, nil
}

// userAggregates sums each user's actions by code. An amount counts if
// payload.amount is a JSON number or a decimal string (DESIGN.md §11 writes
// money as strings); anything else adds nothing rather than failing the job.
// The query only reads, so it holds back no catch-up reader however long it
// runs, and rows stream to the caller as Postgres produces them.
const userAggregates = `
	SELECT user_id, action_code, count(*), coalesce(sum(amount), 0)::float8, min(event_ts), max(event_ts)
	FROM (
		SELECT user_id, action_code, event_ts,
		       CASE jsonb_typeof(payload->'amount')
		            WHEN 'number' THEN (payload->>'amount')::numeric
		            WHEN 'string' THEN CASE WHEN payload->>'amount' ~ '^[-+]?[0-9]+(\.[0-9]+)?$' THEN (payload->>'amount')::numeric END
		       END AS amount
		FROM event WHERE tenant_id = $1) e
	GROUP BY user_id, action_code
	ORDER BY user_id`

// EachUser implements commands.ActionLog.
func (l *ActionLog) EachUser(ctx context.Context, tenantID uuid.UUID, fn func(rules.UserActivity) error) error {
	// Stopping early cancels the query rather than reading the rest of a
	// result that can hold millions of rows.
	ctx, cancel := context.WithCancel(ctx)
	rows, err := l.db.Pool.Query(ctx, userAggregates, tenantID)
	if err != nil {
		cancel()
		return fmt.Errorf("read actions of tenant %s: %w", tenantID, err)
	}
	defer func() {
		cancel()
		rows.Close()
	}()
	var cur *rules.UserActivity
	for rows.Next() {
		var (
			userID, code string
			count        int64
			amount       float64
			first, last  time.Time
		)
		if err := rows.Scan(&userID, &code, &count, &amount, &first, &last); err != nil {
			return fmt.Errorf("read actions of tenant %s: %w", tenantID, err)
		}
		if cur != nil && cur.UserID != userID {
			if err := fn(*cur); err != nil {
				return err
			}
			cur = nil
		}
		if cur == nil {
			cur = &rules.UserActivity{UserID: userID, Counts: map[string]int64{}, Amounts: map[string]float64{},
				FirstSeen: first.UTC(), LastSeen: last.UTC()}
		}
		cur.Total += count
		cur.Counts[code], cur.Amounts[code] = count, amount
		if first.Before(cur.FirstSeen) {
			cur.FirstSeen = first.UTC()
		}
		if last.After(cur.LastSeen) {
			cur.LastSeen = last.UTC()
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read actions of tenant %s: %w", tenantID, err)
	}
	if cur != nil {
		return fn(*cur)
	}
	return nil
}
