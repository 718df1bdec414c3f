package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

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
			return loadViews(ctx, q, schema, "incentive_view", incentiveViewColumns, r.Incentives,
				func(row pgx.Row) (projections.IncentiveView, error) { return scanIncentiveView(row) },
				func(v *projections.IncentiveView) uuid.UUID { return v.IncentiveID })
		},
	}
	m.BeforeSwap = func(ctx context.Context, tx *sql.Tx, schema string) error {
		shadow := pgx.Identifier{schema, "incentive_view"}.Sanitize()
		rows, err := tx.QueryContext(ctx, `
			SELECT `+prefixed("s", incentiveViewColumns)+`, l.incentive_id IS NOT NULL
			FROM `+shadow+` s LEFT JOIN public.incentive_view l USING (incentive_id)
			WHERE l.incentive_id IS NULL OR (`+prefixed("s", incentiveViewColumns)+`) IS DISTINCT FROM (`+prefixed("l", incentiveViewColumns)+`)
			ORDER BY s.position`)
		if err != nil {
			return fmt.Errorf("rows the swap changes: %w", err)
		}
		type change struct {
			after   projections.IncentiveView
			existed bool
		}
		var changed []change
		for rows.Next() {
			var c change
			if err := scanIncentiveInto(rows, &c.after, &c.existed); err != nil {
				rows.Close()
				return err
			}
			changed = append(changed, c)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return err
		}
		pub, err := outboxPublisher(tx)
		if err != nil {
			return err
		}
		for _, c := range changed {
			var before *projections.IncentiveView
			if c.existed {
				b, err := scanIncentiveView(tx.QueryRowContext(ctx, `SELECT `+incentiveViewColumns+` FROM public.incentive_view WHERE incentive_id = $1`, c.after.IncentiveID))
				if err != nil {
					return err
				}
				before = &b
			}
			// The change is dated by its event, as the live projection dates it.
			if v := r.Incentives.All[c.after.IncentiveID]; v != nil {
				c.after.RecordedAt = v.RecordedAt
			}
			topic, msg, err := changes.IncentiveChangeMessage(before, &c.after)
			if err != nil {
				return err
			}
			if err := pub.Publish(topic, msg); err != nil {
				return fmt.Errorf("outbox: change event of incentive %s: %w", c.after.IncentiveID, err)
			}
		}
		return nil
	}
	return m
}

// prefixed qualifies each column of a list with a table alias.
func prefixed(alias, columns string) string {
	cols := splitColumns(columns)
	for i, c := range cols {
		cols[i] = alias + "." + c
	}
	return strings.Join(cols, ", ")
}
