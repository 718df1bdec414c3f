package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/incentives-platform/incentives/domain/rules"

	"github.com/incentives-platform/incentives/domain/limits"
	"github.com/incentives-platform/incentives/projections"
)

// The replay models of the read models: each writes the same rows as its
// live store (tenantRow, campaignRow, ...), so a replayed table equals the
// live one row for row.

func splitColumns(cols string) []string {
	out := strings.Split(cols, ",")
	for i := range out {
		out[i] = strings.TrimSpace(out[i])
	}
	return out
}

// takeViews turns a model's dirty views into rows.
func takeViews[V any](views *projections.Views[V], rows func(*V) [][]any) (inserts, updates [][]any) {
	ins, upd := views.TakeDirty()
	for _, v := range ins {
		inserts = append(inserts, rows(v)...)
	}
	for _, v := range upd {
		updates = append(updates, rows(v)...)
	}
	return inserts, updates
}

func one[V any](row func(*V) []any) func(*V) [][]any {
	return func(v *V) [][]any { return [][]any{row(v)} }
}

// loadViews reads a shadow table back into views.
func loadViews[V any](ctx context.Context, q pgx.Tx, schema, table, columns string, views *projections.Views[V],
	scan func(pgx.Row) (V, error), id func(*V) uuid.UUID) error {
	rows, err := q.Query(ctx, `SELECT `+columns+` FROM `+pgx.Identifier{schema, table}.Sanitize())
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return err
		}
		views.Load(id(&v), v)
	}
	return rows.Err()
}

// TenantsReplay is the replay model of the tenants projection: tenant and
// tenant_limit.
func TenantsReplay() *ReplayModel {
	r := projections.NewTenantsRebuild()
	return &ReplayModel{
		Rebuild: r,
		Tables: []ReplayTable{
			{Name: "tenant", Columns: splitColumns(tenantColumns), Key: []string{"tenant_id"}},
			{Name: "tenant_limit", Columns: splitColumns(limitColumns), Key: []string{"tenant_id", "scope"}},
		},
		Take: func() (map[string][][]any, map[string][][]any, error) {
			ti, tu := takeViews(r.Tenants, one(tenantRow))
			li, lu := takeViews(r.Limits, limitsRows)
			return map[string][][]any{"tenant": ti, "tenant_limit": li}, map[string][][]any{"tenant": tu, "tenant_limit": lu}, nil
		},
		Settle: func(committed bool) { r.Tenants.Settle(committed); r.Limits.Settle(committed) },
		Load: func(ctx context.Context, q pgx.Tx, schema string) error {
			err := loadViews(ctx, q, schema, "tenant", tenantColumns, r.Tenants, scanTenant,
				func(v *projections.TenantView) uuid.UUID { return v.TenantID })
			if err != nil {
				return err
			}
			return loadLimitViews(ctx, q, schema, r.Limits)
		},
	}
}

// loadLimitViews reads shadow tenant_limit rows back, two per view.
func loadLimitViews(ctx context.Context, q pgx.Tx, schema string, views *projections.Views[projections.LimitsView]) error {
	rows, err := q.Query(ctx, `SELECT `+limitColumns+` FROM `+pgx.Identifier{schema, "tenant_limit"}.Sanitize())
	if err != nil {
		return err
	}
	defer rows.Close()
	byTenant := map[uuid.UUID]*projections.LimitsView{}
	for rows.Next() {
		var (
			v          projections.LimitsView
			scope      string
			caps       limits.Caps
			windowDays *int
		)
		if err := rows.Scan(&v.TenantID, &scope, &caps.PerDay, &caps.PerWindow, &windowDays, &caps.Total,
			&v.CreatedAt, &v.UpdatedAt, &v.Version); err != nil {
			return err
		}
		if windowDays != nil {
			caps.WindowDays = *windowDays
		}
		cur := byTenant[v.TenantID]
		if cur == nil {
			v.CreatedAt, v.UpdatedAt = v.CreatedAt.UTC(), v.UpdatedAt.UTC()
			cur = &v
			byTenant[v.TenantID] = cur
		}
		if scope == scopeGlobal {
			cur.Tenant = caps
		} else {
			cur.User = caps
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for id, v := range byTenant {
		views.Load(id, *v)
	}
	return nil
}

// CampaignsReplay is the replay model of the campaigns projection.
func CampaignsReplay() *ReplayModel {
	r := projections.NewCampaignsRebuild()
	return &ReplayModel{
		Rebuild: r,
		Tables:  []ReplayTable{{Name: "campaign", Columns: splitColumns(campaignColumns), Key: []string{"campaign_id"}}},
		Take: func() (map[string][][]any, map[string][][]any, error) {
			i, u := takeViews(r.Campaigns, one(campaignRow))
			return map[string][][]any{"campaign": i}, map[string][][]any{"campaign": u}, nil
		},
		Settle: r.Campaigns.Settle,
		Load: func(ctx context.Context, q pgx.Tx, schema string) error {
			return loadViews(ctx, q, schema, "campaign", campaignColumns, r.Campaigns, scanCampaign,
				func(v *projections.CampaignView) uuid.UUID { return v.CampaignID })
		},
	}
}

// CohortsReplay is the replay model of the cohorts projection.
func CohortsReplay() *ReplayModel {
	r := projections.NewCohortsRebuild()
	return &ReplayModel{
		Rebuild: r,
		Tables:  []ReplayTable{{Name: "cohort", Columns: splitColumns(cohortColumns), Key: []string{"cohort_id"}}},
		Take: func() (map[string][][]any, map[string][][]any, error) {
			i, u := takeViews(r.Cohorts, one(cohortRow))
			return map[string][][]any{"cohort": i}, map[string][][]any{"cohort": u}, nil
		},
		Settle: r.Cohorts.Settle,
		Load: func(ctx context.Context, q pgx.Tx, schema string) error {
			return loadViews(ctx, q, schema, "cohort", cohortColumns, r.Cohorts, scanCohort,
				func(v *projections.CohortView) uuid.UUID { return v.CohortID })
		},
	}
}

// IncentivesReplay is the replay model of the incentives projection. The
// swap publishes a db.incentives change event for every row it changes: a
// row the live table lacks (an incentive the live projection had not yet
// consumed: it will find the row there and publish nothing) or holds
// otherwise. Rows the replay rebuilds as they were publish nothing, so
// analytics sinks see each change once.
func IncentivesReplay(changes IncentiveChangeMapper) *ReplayModel {
	r := projections.NewIncentivesRebuild()
	m := &ReplayModel{
		Rebuild: r,
		Tables:  []ReplayTable{{Name: "incentive_view", Columns: splitColumns(incentiveViewColumns), Key: []string{"incentive_id"}}},
		Take: func() (map[string][][]any, map[string][][]any, error) {
			i, u := takeViews(r.Incentives, one(incentiveViewArgs))
			return map[string][][]any{"incentive_view": i}, map[string][][]any{"incentive_view": u}, nil
		},
		Settle: r.Incentives.Settle,
		Load: func(ctx context.Context, q pgx.Tx, schema string) error {
			return loadViews(ctx, q, schema, "incentive_view", incentiveViewColumns, r.Incentives, scanIncentiveView,
				func(v *projections.IncentiveView) uuid.UUID { return v.IncentiveID })
		},
	}
	m.BeforeSwap = func(ctx context.Context, tx *sql.Tx, schema string) error {
		return publishIncentiveChanges(ctx, tx, pgx.Identifier{schema, "incentive_view"}.Sanitize(), changes)
	}
	return m
}

// changePage is how many changed rows the swap reads before it writes their
// change events: a result set must be closed before the same transaction
// writes, and a page keeps memory bounded.
const changePage = 5000

// publishIncentiveChanges writes to the outbox, in tx, a change event for
// every row the swap of shadow over incentive_view changes: created or
// updated rows (dated by their event's recording time, which a view
// reloaded after an interruption does not carry), then deleted ones
// (dated now). Events go a thousand per outbox statement: the swap holds
// the live tables while it writes them.
func publishIncentiveChanges(ctx context.Context, tx *sql.Tx, shadow string, changes IncentiveChangeMapper) error {
	pub, err := outboxPublisher(tx)
	if err != nil {
		return err
	}
	type change struct{ before, after *projections.IncentiveView }
	publish := func(page []change) error {
		var (
			batch []*message.Message
			topic string
		)
		flush := func() error {
			if len(batch) == 0 {
				return nil
			}
			err := pub.Publish(topic, batch...)
			batch = batch[:0]
			return err
		}
		for _, c := range page {
			t, msg, err := changes.IncentiveChangeMessage(c.before, c.after)
			if err != nil {
				return err
			}
			if t != topic {
				if err := flush(); err != nil {
					return err
				}
				topic = t
			}
			if batch = append(batch, msg); len(batch) == 1000 {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if err := flush(); err != nil {
			return fmt.Errorf("outbox: change events: %w", err)
		}
		return nil
	}
	sCols, lCols := prefixed("s", incentiveViewColumns), prefixed("l", incentiveViewColumns)
	// One join finds the changed rows; a cursor hands them over a page at a
	// time, each page read whole before its events are written (a result
	// set must be closed before the transaction's next statement).
	fetch := func(name, query string, scan func(*sql.Rows) (change, error)) error {
		if _, err := tx.ExecContext(ctx, `DECLARE `+name+` NO SCROLL CURSOR FOR `+query); err != nil {
			return fmt.Errorf("rows the swap changes: %w", err)
		}
		for {
			rows, err := tx.QueryContext(ctx, `FETCH `+fmt.Sprint(changePage)+` FROM `+name)
			if err != nil {
				return fmt.Errorf("rows the swap changes: %w", err)
			}
			var page []change
			for rows.Next() {
				c, err := scan(rows)
				if err != nil {
					return errors.Join(err, rows.Close())
				}
				page = append(page, c)
			}
			if err := errors.Join(rows.Err(), rows.Close()); err != nil {
				return err
			}
			if err := publish(page); err != nil {
				return err
			}
			if len(page) < changePage {
				_, err := tx.ExecContext(ctx, `CLOSE `+name)
				return err
			}
		}
	}
	// The whole result is read: plan for all of it, not for its first rows
	// (a cursor's default). The diff is computed first, so the event store
	// is only read for the rows that changed, usually none.
	if _, err := tx.ExecContext(ctx, `SET LOCAL cursor_tuple_fraction = 1.0`); err != nil {
		return err
	}
	err = fetch("replay_changed", `
		WITH d AS MATERIALIZED (
			SELECT s.incentive_id FROM `+shadow+` s LEFT JOIN public.incentive_view l USING (incentive_id)
			WHERE l.incentive_id IS NULL OR (`+sCols+`) IS DISTINCT FROM (`+lCols+`))
		SELECT `+sCols+`, e.recorded_at, l.incentive_id IS NOT NULL, `+lCols+`
		FROM d
		JOIN `+shadow+` s ON s.incentive_id = d.incentive_id
		JOIN event_store e ON e.position = s.position
		LEFT JOIN public.incentive_view l ON l.incentive_id = d.incentive_id`,
		func(rows *sql.Rows) (change, error) {
			var (
				c          = change{after: &projections.IncentiveView{}}
				live       projections.IncentiveView
				existed    bool
				recordedAt time.Time
				liveScan   = nullableIncentive{v: &live}
			)
			if err := scanIncentiveInto(rows, c.after, append([]any{&recordedAt, &existed}, liveScan.dest()...)...); err != nil {
				return c, err
			}
			c.after.RecordedAt = recordedAt.UTC()
			if existed {
				liveScan.finish()
				c.before = &live
			}
			return c, nil
		})
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	return fetch("replay_deleted", `SELECT `+lCols+` FROM public.incentive_view l
		WHERE NOT EXISTS (SELECT 1 FROM `+shadow+` s WHERE s.incentive_id = l.incentive_id)`,
		func(rows *sql.Rows) (change, error) {
			before := &projections.IncentiveView{}
			err := scanIncentiveInto(rows, before)
			before.RecordedAt = now
			return change{before: before}, err
		})
}

// prefixed qualifies each column of a list with a table alias.
func prefixed(alias, columns string) string {
	cols := splitColumns(columns)
	for i, c := range cols {
		cols[i] = alias + "." + c
	}
	return strings.Join(cols, ", ")
}

// nullableIncentive scans the columns of a left-joined incentive_view row,
// which are all NULL when there is none.
type nullableIncentive struct {
	v         *projections.IncentiveView
	typ       *string
	ids       [5]*uuid.UUID
	user, cur *string
	amount    decimal.NullDecimal
	campaignV *int64
	issued    *time.Time
	pos, ver  *int64
}

func (n *nullableIncentive) dest() []any {
	return []any{&n.ids[0], &n.ids[1], &n.ids[2], &n.campaignV, &n.ids[3], &n.user, &n.ids[4], &n.typ, &n.cur, &n.amount, &n.issued, &n.pos, &n.ver}
}

// finish fills the view from a row that was there.
func (n *nullableIncentive) finish() {
	v := n.v
	v.IncentiveID, v.TenantID, v.CampaignID, v.CampaignVersion, v.DecisionID = *n.ids[0], *n.ids[1], *n.ids[2], *n.campaignV, *n.ids[3]
	v.UserID, v.SourceEventID, v.RewardType, v.RewardCurrency = *n.user, *n.ids[4], rules.RewardType(*n.typ), *n.cur
	v.RewardAmount = n.amount.Decimal
	v.IssuedAt, v.Position, v.Version = n.issued.UTC(), *n.pos, *n.ver
}
