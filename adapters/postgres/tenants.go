package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/limits"
	"github.com/incentives-platform/incentives/domain/tenant"
	"github.com/incentives-platform/incentives/projections"
)

var _ projections.TenantsStore = (*Tenants)(nil)

// Tenants is the tenant and tenant_limit read models: the tenants
// projection's store and the queries the API serves from them.
type Tenants struct {
	db *DB
}

// NewTenants returns the read models over db.
func NewTenants(db *DB) *Tenants { return &Tenants{db: db} }

const tenantColumns = `tenant_id, name, status, created_at, updated_at, version`

// tenantRow is a tenant view as the values of tenantColumns: what the
// projection upserts and a replay copies.
func tenantRow(v *projections.TenantView) []any {
	return []any{v.TenantID, v.Name, string(v.Status), v.CreatedAt, v.UpdatedAt, v.Version}
}

const limitColumns = `tenant_id, scope, max_per_day, max_per_window, window_days, max_total, created_at, updated_at, version`

// limitsRows is a limits view as tenant_limit rows, one per scope, in the
// order of limitColumns.
func limitsRows(v *projections.LimitsView) [][]any {
	var rows [][]any
	for _, row := range []struct {
		scope string
		caps  limits.Caps
	}{{scopeGlobal, v.Tenant}, {scopeUser, v.User}} {
		var windowDays *int
		if row.caps.WindowDays != 0 {
			windowDays = &row.caps.WindowDays
		}
		rows = append(rows, []any{v.TenantID, row.scope, row.caps.PerDay, row.caps.PerWindow, windowDays, row.caps.Total,
			v.CreatedAt, v.UpdatedAt, v.Version})
	}
	return rows
}

func scanTenant(row pgx.Row) (projections.TenantView, error) {
	var v projections.TenantView
	var status string
	err := row.Scan(&v.TenantID, &v.Name, &status, &v.CreatedAt, &v.UpdatedAt, &v.Version)
	v.Status, v.CreatedAt, v.UpdatedAt = tenant.Status(status), v.CreatedAt.UTC(), v.UpdatedAt.UTC()
	return v, err
}

// UpdateTenant implements projections.TenantsStore.
func (s *Tenants) UpdateTenant(ctx context.Context, cp projections.Checkpoint, id uuid.UUID, evolve func(*projections.TenantView) *projections.TenantView) error {
	return s.db.project(ctx, cp, func(tx pgx.Tx) error {
		var cur *projections.TenantView
		v, err := scanTenant(tx.QueryRow(ctx, `SELECT `+tenantColumns+` FROM tenant WHERE tenant_id = $1 FOR UPDATE`, id))
		switch {
		case err == nil:
			cur = &v
		case !errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("load tenant view %s: %w", id, err)
		}
		next := evolve(cur)
		if next == cur || next == nil {
			return nil
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO tenant (`+tenantColumns+`) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (tenant_id) DO UPDATE
			SET name = excluded.name, status = excluded.status, updated_at = excluded.updated_at, version = excluded.version`,
			tenantRow(next)...)
		return err
	})
}

// Tenant returns one tenant, or domain.ErrNotFound.
func (s *Tenants) Tenant(ctx context.Context, id uuid.UUID) (projections.TenantView, error) {
	v, err := scanTenant(s.db.Pool.QueryRow(ctx, `SELECT `+tenantColumns+` FROM tenant WHERE tenant_id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return v, fmt.Errorf("tenant %s: %w", id, domain.ErrNotFound)
	}
	return v, err
}

// ListTenants returns up to limit tenants after key, oldest first.
func (s *Tenants) ListTenants(ctx context.Context, after projections.TenantKey, limit int) ([]projections.TenantView, error) {
	rows, err := s.db.Pool.Query(ctx, `SELECT `+tenantColumns+` FROM tenant
		WHERE (created_at, tenant_id) > ($1, $2) ORDER BY created_at, tenant_id LIMIT $3`,
		after.CreatedAt, after.ID, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (projections.TenantView, error) { return scanTenant(r) })
}

// Scopes of tenant_limit rows.
const (
	scopeGlobal = "GLOBAL"
	scopeUser   = "USER"
)

// UpdateLimits implements projections.TenantsStore.
func (s *Tenants) UpdateLimits(ctx context.Context, cp projections.Checkpoint, tenantID uuid.UUID, evolve func(*projections.LimitsView) *projections.LimitsView) error {
	return s.db.project(ctx, cp, func(tx pgx.Tx) error {
		cur, err := loadLimits(ctx, tx, tenantID, true)
		if err != nil && !errors.Is(err, domain.ErrNotFound) {
			return err
		}
		next := evolve(cur)
		if next == cur || next == nil {
			return nil
		}
		for _, row := range limitsRows(next) {
			_, err := tx.Exec(ctx, `
				INSERT INTO tenant_limit (`+limitColumns+`)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
				ON CONFLICT (tenant_id, scope) DO UPDATE
				SET max_per_day = excluded.max_per_day, max_per_window = excluded.max_per_window, window_days = excluded.window_days,
				    max_total = excluded.max_total, updated_at = excluded.updated_at, version = excluded.version`,
				row...)
			if err != nil {
				return fmt.Errorf("save %s limits of %s: %w", row[1], tenantID, err)
			}
		}
		return nil
	})
}

// Limits returns a tenant's limits, or domain.ErrNotFound.
func (s *Tenants) Limits(ctx context.Context, tenantID uuid.UUID) (projections.LimitsView, error) {
	var v *projections.LimitsView
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		v, err = loadLimits(ctx, tx, tenantID, false)
		return err
	})
	if err != nil {
		return projections.LimitsView{}, err
	}
	return *v, nil
}

func loadLimits(ctx context.Context, tx pgx.Tx, tenantID uuid.UUID, forUpdate bool) (*projections.LimitsView, error) {
	q := `SELECT scope, max_per_day, max_per_window, window_days, max_total, created_at, updated_at, version
		FROM tenant_limit WHERE tenant_id = $1`
	if forUpdate {
		q += ` FOR UPDATE`
	}
	rows, err := tx.Query(ctx, q, tenantID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	v := projections.LimitsView{TenantID: tenantID}
	n := 0
	for rows.Next() {
		var (
			scope      string
			caps       limits.Caps
			windowDays *int
		)
		if err := rows.Scan(&scope, &caps.PerDay, &caps.PerWindow, &windowDays, &caps.Total, &v.CreatedAt, &v.UpdatedAt, &v.Version); err != nil {
			return nil, err
		}
		if windowDays != nil {
			caps.WindowDays = *windowDays
		}
		if scope == scopeGlobal {
			v.Tenant = caps
		} else {
			v.User = caps
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, fmt.Errorf("limits of tenant %s: %w", tenantID, domain.ErrNotFound)
	}
	v.CreatedAt, v.UpdatedAt = v.CreatedAt.UTC(), v.UpdatedAt.UTC()
	return &v, nil
}
