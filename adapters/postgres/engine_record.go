package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/shopspring/decimal"

	enginecmd "github.com/incentives-platform/incentives/commands/engine"
	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/engine"
	"github.com/incentives-platform/incentives/domain/incentive"
)

// decisionColumns are the columns a batch writes of each decision, in the
// order of decisionRow.
var decisionColumns = []string{"decision_id", "tenant_id", "user_id", "campaign_id", "campaign_version", "source_event_id",
	"outcome", "reason", "reward_type", "reward_currency", "reward_amount", "inputs", "limits", "incentive_id", "decided_at"}

// limitsJSON is the stored (and served) form of the limit answer a decision
// saw: decision.limits.
type limitsJSON struct {
	Granted   bool          `json:"granted"`
	RefusedBy *counterJSON  `json:"refusedBy"`
	Counters  []counterJSON `json:"counters"`
}

type counterJSON struct {
	Scope string `json:"scope"`
	Kind  string `json:"kind"`
	Cap   int64  `json:"cap"`
	Seen  int64  `json:"seen"`
}

func encodeLimits(a *enginecmd.LimitAnswer) ([]byte, error) {
	if a == nil {
		return nil, nil
	}
	l := limitsJSON{Granted: a.Granted, Counters: make([]counterJSON, len(a.Counters))}
	if a.RefusedBy != nil {
		c := counterJSON(*a.RefusedBy)
		l.RefusedBy = &c
	}
	for i, c := range a.Counters {
		l.Counters[i] = counterJSON(c)
	}
	return json.Marshal(l)
}

func decodeLimits(raw []byte) (*enginecmd.LimitAnswer, error) {
	if raw == nil {
		return nil, nil
	}
	var l limitsJSON
	if err := json.Unmarshal(raw, &l); err != nil {
		return nil, err
	}
	a := &enginecmd.LimitAnswer{Granted: l.Granted, Counters: make([]enginecmd.LimitCounter, len(l.Counters))}
	if l.RefusedBy != nil {
		c := enginecmd.LimitCounter(*l.RefusedBy)
		a.RefusedBy = &c
	}
	for i, c := range l.Counters {
		a.Counters[i] = enginecmd.LimitCounter(c)
	}
	return a, nil
}

// numeric converts an exact decimal for pgx's binary protocol (COPY).
func numeric(d decimal.Decimal) pgtype.Numeric {
	return pgtype.Numeric{Int: d.Coefficient(), Exp: d.Exponent(), Valid: true}
}

func decisionRow(d *enginecmd.RecordedDecision, incentiveID uuid.UUID) ([]any, error) {
	inputs := []byte("{}")
	if len(d.Inputs) > 0 {
		var err error
		if inputs, err = json.Marshal(d.Inputs); err != nil {
			// Inputs explain a decision; they must never stop a batch (a
			// batch that fails is redelivered and fails again forever).
			inputs, _ = json.Marshal(map[string]string{"unrecordable": err.Error()})
		}
	}
	lim, err := encodeLimits(d.Limits)
	if err != nil {
		return nil, fmt.Errorf("limits of decision %s: %w", d.ID, err)
	}
	var rewardType, currency pgtype.Text
	var amount pgtype.Numeric
	if r := d.Reward; r != nil {
		rewardType, currency = pgtype.Text{String: string(r.Type), Valid: true}, pgtype.Text{String: r.Currency, Valid: true}
		amount = numeric(r.Amount)
	}
	return []any{d.ID, d.TenantID, d.UserID, d.CampaignID, d.CampaignVer, d.SourceEventID, string(d.Outcome), d.Reason,
		rewardType, currency, amount, inputs, lim, pgtype.UUID{Bytes: incentiveID, Valid: incentiveID != uuid.Nil}, d.DecidedAt}, nil
}

// Record implements commands/engine.BatchTx.
//
// A decision the table holds already (its event was logged twice under two
// event_ts, or a caller retried Record) is kept as first recorded, and its
// incentive is not issued again (insertDecisions). The incentives of
// the new decisions go in with one statement that also queues them for
// publication (incentive_unpublished) and links completed quests to them,
// and their IncentiveIssued events, one new stream each, with one more
// (EventStore.createStreamsTx).
func (t *engineTx) Record(ctx context.Context, decisions []enginecmd.RecordedDecision, incentives []engine.Incentive) ([]engine.Incentive, error) {
	if len(decisions) == 0 && len(incentives) == 0 {
		return nil, nil
	}
	byDecision := make(map[uuid.UUID]*engine.Incentive, len(incentives))
	for i := range incentives {
		byDecision[incentives[i].DecisionID] = &incentives[i]
	}
	seen := make(map[uuid.UUID]*enginecmd.RecordedDecision, len(decisions))
	rows := make([][]any, 0, len(decisions))
	for i := range decisions {
		d := &decisions[i]
		if seen[d.ID] != nil {
			continue
		}
		seen[d.ID] = d
		var incID uuid.UUID
		if inc := byDecision[d.ID]; inc != nil {
			incID = inc.ID
		}
		row, err := decisionRow(d, incID)
		if err != nil {
			return nil, err
		}
		rows = append(rows, row)
	}
	for _, inc := range incentives {
		if seen[inc.DecisionID] == nil {
			return nil, fmt.Errorf("record: incentive %s has no decision %s in the batch", inc.ID, inc.DecisionID)
		}
	}
	var fresh map[uuid.UUID]bool // nil: every decision is new
	err := t.pg(func(c *pgx.Conn) error {
		var err error
		fresh, err = insertDecisions(ctx, c, rows)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("record %d decisions: %w", len(rows), err)
	}
	issue := make([]engine.Incentive, 0, len(incentives))
	for _, inc := range incentives {
		if fresh == nil || fresh[inc.DecisionID] {
			// The decision's version is the one that decided, whatever the
			// incentive carries: row, event and decision must agree.
			inc.CampaignVersion = seen[inc.DecisionID].CampaignVer
			issue = append(issue, inc)
		}
	}
	if len(issue) == 0 {
		return nil, nil
	}
	if err := t.insertIncentives(ctx, issue); err != nil {
		return nil, err
	}
	creates := make([]streamCreate, len(issue))
	for i, inc := range issue {
		creates[i] = streamCreate{
			Stream: incentive.Stream(inc.ID),
			Event:  incentive.IssuedEvent(inc),
			// The action event is what all of this is about; the decision
			// is what directly caused the incentive.
			Meta: domain.Metadata{TenantID: inc.TenantID, CorrelationID: inc.SourceEventID.String(),
				CausationID: inc.DecisionID.String(), Actor: engineActor},
		}
	}
	if t.done {
		return nil, fmt.Errorf("record: %w", sql.ErrTxDone)
	}
	if _, err := t.s.events.createStreamsTx(ctx, t.tx, creates); err != nil {
		return nil, fmt.Errorf("record %d IncentiveIssued events: %w", len(creates), err)
	}
	return issue, nil
}

// insertDecisions writes the decision rows and returns the ids of those
// that are new, or nil when all are. As with the event log (LogEvents), the
// rows are first COPYed straight into decision under a savepoint; only if
// one is there already does the slower way through a temporary table and
// ON CONFLICT DO NOTHING run. Rows must be distinct by decision id.
func insertDecisions(ctx context.Context, c *pgx.Conn, rows [][]any) (map[uuid.UUID]bool, error) {
	slices.SortFunc(rows, func(a, b []any) int { // one lock order for every batch
		x, y := a[0].(uuid.UUID), b[0].(uuid.UUID)
		return slices.Compare(x[:], y[:])
	})
	if _, err := c.Exec(ctx, `SAVEPOINT engine_record`); err != nil {
		return nil, err
	}
	_, err := c.CopyFrom(ctx, pgx.Identifier{"decision"}, decisionColumns, pgx.CopyFromRows(rows))
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23505" {
		if err != nil {
			return nil, err
		}
		_, err = c.Exec(ctx, `RELEASE SAVEPOINT engine_record`)
		return nil, err
	}
	if _, err := c.Exec(ctx, `ROLLBACK TO SAVEPOINT engine_record`); err != nil {
		return nil, err
	}
	if _, err := c.Exec(ctx, `CREATE TEMP TABLE IF NOT EXISTS engine_decision_in (LIKE decision INCLUDING DEFAULTS) ON COMMIT DROP`); err != nil {
		return nil, err
	}
	if _, err := c.CopyFrom(ctx, pgx.Identifier{"engine_decision_in"}, decisionColumns, pgx.CopyFromRows(rows)); err != nil {
		return nil, err
	}
	res, err := c.Query(ctx, `INSERT INTO decision (`+columnList(decisionColumns)+`)
		SELECT `+columnList(decisionColumns)+` FROM engine_decision_in ORDER BY decision_id
		ON CONFLICT DO NOTHING RETURNING decision_id`)
	if err != nil {
		return nil, err
	}
	ids, err := pgx.CollectRows(res, pgx.RowTo[uuid.UUID])
	fresh := make(map[uuid.UUID]bool, len(ids))
	for _, id := range ids {
		fresh[id] = true
	}
	return fresh, err
}

// insertIncentives writes the incentive rows, queues them for publication
// and links the quest progress they complete, in one statement.
func (t *engineTx) insertIncentives(ctx context.Context, issue []engine.Incentive) error {
	n := len(issue)
	var (
		ids, decisionIDs, tenants, campaigns = make([]uuid.UUID, n), make([]uuid.UUID, n), make([]uuid.UUID, n), make([]uuid.UUID, n)
		versions                             = make([]int64, n)
		users, sources, types                = make([]string, n), make([]string, n), make([]string, n)
		currencies, amounts                  = make([]string, n), make([]string, n)
		issuedAt                             = make([]pgtype.Timestamptz, n)
	)
	for i, inc := range issue {
		ids[i], decisionIDs[i], tenants[i], campaigns[i] = inc.ID, inc.DecisionID, inc.TenantID, inc.CampaignID
		versions[i] = inc.CampaignVersion
		users[i], sources[i], types[i] = inc.UserID, inc.SourceEventID.String(), string(inc.Reward.Type)
		currencies[i], amounts[i] = inc.Reward.Currency, inc.Reward.Amount.String()
		issuedAt[i] = pgtype.Timestamptz{Time: inc.IssuedAt, Valid: true}
	}
	var inserted int64
	err := t.pg(func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `
			WITH k AS (
				SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::bigint[], $6::text[], $7::text[],
				                     $8::text[], $9::text[], $10::text[], $11::timestamptz[])
				       AS k(incentive_id, decision_id, tenant_id, campaign_id, campaign_version, user_id, source_event_id,
				            type, reward_currency, reward_amount, issued_at)
			), i AS (
				INSERT INTO incentive (incentive_id, decision_id, tenant_id, campaign_id, campaign_version, user_id,
				                       source_event_id, type, reward_currency, reward_amount, issued_at)
				SELECT incentive_id, decision_id, tenant_id, campaign_id, campaign_version, user_id,
				       source_event_id, type, reward_currency, reward_amount::numeric, issued_at
				FROM k ORDER BY incentive_id
				RETURNING incentive_id
			), p AS (
				INSERT INTO incentive_unpublished (incentive_id) SELECT incentive_id FROM i
			), q AS (
				UPDATE user_aggregation ua SET incentive_id = k.incentive_id
				FROM k
				WHERE ua.campaign_id = k.campaign_id AND ua.user_id = k.user_id
				  AND ua.completed_at IS NOT NULL AND ua.incentive_id IS NULL
			)
			SELECT count(*) FROM i`,
			ids, decisionIDs, tenants, campaigns, versions, users, sources, types, currencies, amounts, issuedAt).Scan(&inserted)
	})
	if err != nil {
		return fmt.Errorf("record %d incentives: %w", n, err)
	}
	if inserted != int64(n) {
		return fmt.Errorf("record incentives: %d of %d inserted", inserted, n)
	}
	return nil
}

// columnList joins column names for SQL; they are constants of this file.
func columnList(cols []string) string { return strings.Join(cols, ", ") }
