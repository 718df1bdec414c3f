package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/shopspring/decimal"

	enginecmd "github.com/incentives-platform/incentives/commands/engine"
	"github.com/incentives-platform/incentives/domain/engine"
	"github.com/incentives-platform/incentives/domain/rules"
	"github.com/incentives-platform/incentives/projections"
)

// Decisions reads the engine's decision records: why a user got a reward
// or nothing. It is safe for concurrent use.
type Decisions struct {
	db *DB
}

// NewDecisions returns the decision reads over db.
func NewDecisions(db *DB) *Decisions { return &Decisions{db: db} }

// UserDecisions returns up to limit decisions about a tenant's user, newest
// first (by decision time, then decision id), strictly after the place
// before in that order; the zero key starts at the newest. A non-nil
// campaignID and a non-empty outcome narrow the list. An unknown user has
// no decisions: the answer is empty, not an error.
func (s *Decisions) UserDecisions(ctx context.Context, tenantID uuid.UUID, userID string, campaignID uuid.UUID,
	outcome engine.Outcome, before projections.TenantKey, limit int) ([]enginecmd.RecordedDecision, error) {
	args := []any{tenantID, userID}
	where := []string{"tenant_id = $1", "user_id = $2"}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if campaignID != uuid.Nil {
		where = append(where, "campaign_id = "+arg(campaignID))
	}
	if outcome != "" {
		where = append(where, "outcome = "+arg(string(outcome)))
	}
	if before != (projections.TenantKey{}) {
		where = append(where, "(decided_at, decision_id) < ("+arg(before.CreatedAt)+", "+arg(before.ID)+")")
	}
	q := `SELECT decision_id, tenant_id, user_id, campaign_id, campaign_version, source_event_id, outcome, reason,
		       reward_type, reward_currency, reward_amount::text, inputs, limits, decided_at
		FROM decision WHERE ` + strings.Join(where, " AND ") + `
		ORDER BY decided_at DESC, decision_id DESC LIMIT ` + arg(limit)
	rows, err := s.db.Pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("decisions of user %q of tenant %s: %w", userID, tenantID, err)
	}
	out, err := pgx.CollectRows(rows, scanDecision)
	if err != nil {
		return nil, fmt.Errorf("decisions of user %q of tenant %s: %w", userID, tenantID, err)
	}
	return out, nil
}

func scanDecision(row pgx.CollectableRow) (enginecmd.RecordedDecision, error) {
	var (
		d                    enginecmd.RecordedDecision
		outcome              string
		rewardType, currency pgtype.Text
		amount               pgtype.Text
		inputs, limits       []byte
	)
	if err := row.Scan(&d.ID, &d.TenantID, &d.UserID, &d.CampaignID, &d.CampaignVer, &d.SourceEventID, &outcome, &d.Reason,
		&rewardType, &currency, &amount, &inputs, &limits, &d.DecidedAt); err != nil {
		return d, err
	}
	d.Outcome, d.DecidedAt = engine.Outcome(outcome), d.DecidedAt.UTC()
	if rewardType.Valid && amount.Valid {
		a, err := decimal.NewFromString(amount.String)
		if err != nil {
			return d, fmt.Errorf("decision %s: amount %q: %w", d.ID, amount.String, err)
		}
		d.Reward = &engine.Reward{Type: rules.RewardType(rewardType.String), Currency: currency.String, Amount: a}
	}
	// Numbers stay as written (json.Number): inputs are shown, not computed with.
	dec := json.NewDecoder(bytes.NewReader(inputs))
	dec.UseNumber()
	if err := dec.Decode(&d.Inputs); err != nil {
		return d, fmt.Errorf("decision %s: inputs: %w", d.ID, err)
	}
	var err error
	if d.Limits, err = decodeLimits(limits); err != nil {
		return d, fmt.Errorf("decision %s: limits: %w", d.ID, err)
	}
	return d, nil
}
