package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	enginecmd "github.com/incentives-platform/incentives/commands/engine"
	"github.com/incentives-platform/incentives/domain/campaign"
	"github.com/incentives-platform/incentives/domain/engine"
	"github.com/incentives-platform/incentives/domain/limits"
	"github.com/incentives-platform/incentives/domain/rules"
	"github.com/incentives-platform/incentives/domain/tenant"
)

var _ enginecmd.CatalogSource = (*EngineCatalog)(nil)

// EngineCatalog loads the engine's catalog from the read models: the ACTIVE
// campaigns, every tenant's status and caps, every cohort's member set.
// It is safe for concurrent use.
//
// The engine reloads it every second or so, so a load must be cheap when
// little changed: compiled rules are kept by (campaign, version) and a
// campaign whose version is already compiled comes back without its
// rule_json. CEL compilation is the expensive part, and a version's rule
// never changes.
type EngineCatalog struct {
	db     *DB
	logger *slog.Logger

	mu       sync.Mutex
	compiled map[campaignVersion]rules.Rule
	// refused are versions whose rule did not compile: logged once, then
	// left out quietly.
	refused map[campaignVersion]bool
}

type campaignVersion struct {
	id      uuid.UUID
	version int64
}

// NewEngineCatalog returns the catalog source over db; logger reports
// campaigns left out because their rule no longer compiles.
func NewEngineCatalog(db *DB, logger *slog.Logger) *EngineCatalog {
	return &EngineCatalog{db: db, logger: logger, compiled: map[campaignVersion]rules.Rule{}, refused: map[campaignVersion]bool{}}
}

// LoadSnapshot implements commands/engine.CatalogSource. The three reads
// share one REPEATABLE READ snapshot, so a cohort and the campaign naming
// it are seen at one moment.
func (s *EngineCatalog) LoadSnapshot(ctx context.Context) (enginecmd.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := enginecmd.Snapshot{Tenants: map[uuid.UUID]enginecmd.TenantState{}, CohortMembers: map[uuid.UUID]uuid.UUID{}}
	tx, err := s.db.Pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return snap, fmt.Errorf("load engine catalog: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }() // read-only: nothing to keep
	if snap.Campaigns, err = s.campaigns(ctx, tx); err != nil {
		return snap, fmt.Errorf("load engine catalog: campaigns: %w", err)
	}
	if err := loadTenantStates(ctx, tx, snap.Tenants); err != nil {
		return snap, fmt.Errorf("load engine catalog: tenants: %w", err)
	}
	rows, err := tx.Query(ctx, `SELECT cohort_id, members_generation FROM cohort`)
	if err != nil {
		return snap, fmt.Errorf("load engine catalog: cohorts: %w", err)
	}
	var (
		id  uuid.UUID
		gen pgtype.UUID
	)
	if _, err := pgx.ForEachRow(rows, []any{&id, &gen}, func() error {
		snap.CohortMembers[id] = uuid.UUID(gen.Bytes) // uuid.Nil when never computed
		return nil
	}); err != nil {
		return snap, fmt.Errorf("load engine catalog: cohorts: %w", err)
	}
	return snap, nil
}

// campaigns reads the ACTIVE campaigns, compiling the rules of versions it
// has not compiled before. Caller holds s.mu.
func (s *EngineCatalog) campaigns(ctx context.Context, tx pgx.Tx) ([]engine.Campaign, error) {
	known := make([]uuid.UUID, 0, len(s.compiled))
	knownVer := make([]int64, 0, len(s.compiled))
	for k := range s.compiled {
		known, knownVer = append(known, k.id), append(knownVer, k.version)
	}
	rows, err := tx.Query(ctx, `
		SELECT c.campaign_id, c.tenant_id, c.version, c.status, c.type, c.start_at, c.end_at, c.cohort_id,
		       CASE WHEN k.id IS NULL THEN c.rule_json END
		FROM campaign c
		LEFT JOIN unnest($1::uuid[], $2::bigint[]) AS k(id, version) ON k.id = c.campaign_id AND k.version = c.version
		WHERE c.status = 'ACTIVE'
		ORDER BY c.created_at, c.campaign_id`, known, knownVer)
	if err != nil {
		return nil, err
	}
	var (
		out            []engine.Campaign
		seen           = map[campaignVersion]bool{}
		c              engine.Campaign
		status, typ    string
		startAt, endAt pgtype.Timestamptz
		cohortID       pgtype.UUID
		ruleJSON       []byte
	)
	_, err = pgx.ForEachRow(rows, []any{&c.ID, &c.TenantID, &c.Version, &status, &typ, &startAt, &endAt, &cohortID, &ruleJSON}, func() error {
		k := campaignVersion{c.ID, c.Version}
		seen[k] = true
		rule, ok := s.compiled[k]
		if !ok {
			if s.refused[k] || ruleJSON == nil {
				return nil
			}
			var err error
			if rule, err = rules.Parse(rules.Kind(typ), ruleJSON); err != nil {
				s.refused[k] = true
				s.logger.WarnContext(ctx, "campaign left out of the engine: its rule does not compile",
					"campaign_id", c.ID, "tenant_id", c.TenantID, "version", c.Version, "err", err)
				return nil
			}
			s.compiled[k] = rule
		}
		out = append(out, engine.Campaign{ID: c.ID, TenantID: c.TenantID, Version: c.Version, Status: campaign.Status(status),
			StartAt: utcOrZero(startAt), EndAt: utcOrZero(endAt), Rule: rule, CohortID: uuid.UUID(cohortID.Bytes)})
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Forget versions no longer active, so the cache follows the catalog.
	for k := range s.compiled {
		if !seen[k] {
			delete(s.compiled, k)
		}
	}
	for k := range s.refused {
		if !seen[k] {
			delete(s.refused, k)
		}
	}
	return out, nil
}

// loadTenantStates reads every tenant with its effective caps; a scope
// without a tenant_limit row is unbounded.
func loadTenantStates(ctx context.Context, tx pgx.Tx, into map[uuid.UUID]enginecmd.TenantState) error {
	rows, err := tx.Query(ctx, `
		SELECT t.tenant_id, t.status,
		       g.max_per_day, g.max_per_window, g.window_days, g.max_total,
		       u.max_per_day, u.max_per_window, u.window_days, u.max_total
		FROM tenant t
		LEFT JOIN tenant_limit g ON g.tenant_id = t.tenant_id AND g.scope = 'GLOBAL'
		LEFT JOIN tenant_limit u ON u.tenant_id = t.tenant_id AND u.scope = 'USER'`)
	if err != nil {
		return err
	}
	var (
		id           uuid.UUID
		status       string
		g, u         limits.Caps
		gDays, uDays *int
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &status, &g.PerDay, &g.PerWindow, &gDays, &g.Total, &u.PerDay, &u.PerWindow, &uDays, &u.Total}, func() error {
		st := enginecmd.TenantState{Status: tenant.Status(status), Tenant: g, User: u}
		if gDays != nil {
			st.Tenant.WindowDays = *gDays
		}
		if uDays != nil {
			st.User.WindowDays = *uDays
		}
		into[id] = st
		// Caps holds pointers: the next row must not write through them.
		g, u = limits.Caps{}, limits.Caps{}
		return nil
	})
	return err
}
