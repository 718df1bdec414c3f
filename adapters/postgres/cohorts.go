package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/cohort"
	"github.com/incentives-platform/incentives/projections"
)

var _ projections.CohortsStore = (*Cohorts)(nil)

// Cohorts is the cohort read model: the cohorts projection's store and the
// queries the API serves from it.
type Cohorts struct {
	db *DB
}

// NewCohorts returns the read model over db.
func NewCohorts(db *DB) *Cohorts { return &Cohorts{db: db} }

const cohortColumns = `cohort_id, tenant_id, name, kind, rule, members_generation, member_count, computed_at, created_at, updated_at, version`

// cohortRow is a cohort view as the values of cohortColumns.
func cohortRow(v *projections.CohortView) []any {
	return []any{v.CohortID, v.TenantID, v.Name, string(v.Kind), nullIfZero(v.Rule), nullIfZero(v.Members.Generation),
		v.Members.Count, nullTime(v.ComputedAt), v.CreatedAt, v.UpdatedAt, v.Version}
}

func scanCohort(row pgx.Row) (projections.CohortView, error) {
	var (
		v          projections.CohortView
		kind       string
		rule       *string
		generation *uuid.UUID
		computedAt *time.Time
	)
	err := row.Scan(&v.CohortID, &v.TenantID, &v.Name, &kind, &rule, &generation, &v.Members.Count, &computedAt,
		&v.CreatedAt, &v.UpdatedAt, &v.Version)
	v.Kind, v.CreatedAt, v.UpdatedAt = cohort.Kind(kind), v.CreatedAt.UTC(), v.UpdatedAt.UTC()
	if rule != nil {
		v.Rule = *rule
	}
	if generation != nil {
		v.Members.Generation = *generation
	}
	if computedAt != nil {
		v.ComputedAt = computedAt.UTC()
	}
	return v, err
}

// nullIfZero returns nil for a zero value, so it is stored as NULL.
func nullIfZero[T comparable](v T) any {
	var zero T
	if v == zero {
		return nil
	}
	return v
}

// UpdateCohort implements projections.CohortsStore.
func (s *Cohorts) UpdateCohort(ctx context.Context, cp projections.Checkpoint, id uuid.UUID, evolve func(*projections.CohortView) *projections.CohortView) error {
	return s.db.project(ctx, cp, func(tx pgx.Tx) error {
		var cur *projections.CohortView
		v, err := scanCohort(tx.QueryRow(ctx, `SELECT `+cohortColumns+` FROM cohort WHERE cohort_id = $1 FOR UPDATE`, id))
		switch {
		case err == nil:
			cur = &v
		case !errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("load cohort view %s: %w", id, err)
		}
		next := evolve(cur)
		if next == cur || next == nil {
			return nil
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO cohort (`+cohortColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
			ON CONFLICT (cohort_id) DO UPDATE
			SET name = excluded.name, kind = excluded.kind, rule = excluded.rule, members_generation = excluded.members_generation,
			    member_count = excluded.member_count, computed_at = excluded.computed_at, updated_at = excluded.updated_at,
			    version = excluded.version`,
			cohortRow(next)...)
		if err != nil {
			return fmt.Errorf("save cohort view %s: %w", id, err)
		}
		return nil
	})
}

// CohortReads serves the API's cohort reads: the read model and the jobs.
type CohortReads struct {
	*Cohorts
	*CohortJobs
}

// NewCohortReads returns the cohort reads over db.
func NewCohortReads(db *DB) CohortReads { return CohortReads{NewCohorts(db), NewCohortJobs(db)} }

// Cohort returns one cohort, or domain.ErrNotFound.
func (s *Cohorts) Cohort(ctx context.Context, id uuid.UUID) (projections.CohortView, error) {
	v, err := scanCohort(s.db.Pool.QueryRow(ctx, `SELECT `+cohortColumns+` FROM cohort WHERE cohort_id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return v, fmt.Errorf("cohort %s: %w", id, domain.ErrNotFound)
	}
	return v, err
}
