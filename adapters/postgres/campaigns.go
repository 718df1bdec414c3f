package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/campaign"
	"github.com/incentives-platform/incentives/domain/rules"
	"github.com/incentives-platform/incentives/projections"
)

var _ projections.CampaignsStore = (*Campaigns)(nil)

// MaxSearchResults bounds what one campaign search returns: a tenant with
// more active campaigns for one action than this has a problem no page
// would solve.
const MaxSearchResults = 1000

// Campaigns is the campaign read model: the campaigns projection's store,
// the API's queries and the engine's campaign search.
type Campaigns struct {
	db *DB
}

// NewCampaigns returns the read model over db.
func NewCampaigns(db *DB) *Campaigns { return &Campaigns{db: db} }

const campaignColumns = `campaign_id, tenant_id, name, type, status, start_at, end_at, rule_json, cohort_id, created_at, updated_at, version`

// campaignRow is a campaign view as the values of campaignColumns.
func campaignRow(v *projections.CampaignView) []any {
	return []any{v.CampaignID, v.TenantID, v.Name, string(v.Type), string(v.Status), nullTime(v.StartAt), nullTime(v.EndAt),
		v.Rule, nullUUID(v.CohortID), v.CreatedAt, v.UpdatedAt, v.Version}
}

func scanCampaign(row pgx.Row) (projections.CampaignView, error) {
	var (
		v              projections.CampaignView
		typ, status    string
		startAt, endAt *time.Time
		cohortID       *uuid.UUID
	)
	err := row.Scan(&v.CampaignID, &v.TenantID, &v.Name, &typ, &status, &startAt, &endAt, &v.Rule, &cohortID, &v.CreatedAt, &v.UpdatedAt, &v.Version)
	v.Type, v.Status = campaign.Type(typ), campaign.Status(status)
	if startAt != nil {
		v.StartAt = startAt.UTC()
	}
	if endAt != nil {
		v.EndAt = endAt.UTC()
	}
	if cohortID != nil {
		v.CohortID = *cohortID
	}
	v.CreatedAt, v.UpdatedAt = v.CreatedAt.UTC(), v.UpdatedAt.UTC()
	if err == nil {
		v.Rule, err = canonicalJSON(v.Rule)
	}
	return v, err
}

// canonicalJSON rewrites a jsonb value with sorted keys, as rules.Rule.Document
// writes it: jsonb keeps its own key order, and a read must answer the same
// bytes the write did.
func canonicalJSON(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("rule_json: %w", err)
	}
	return rules.CanonicalJSON(v), nil
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func nullUUID(id uuid.UUID) *uuid.UUID {
	if id == uuid.Nil {
		return nil
	}
	return &id
}

// UpdateCampaign implements projections.CampaignsStore.
func (s *Campaigns) UpdateCampaign(ctx context.Context, cp projections.Checkpoint, id uuid.UUID, evolve func(*projections.CampaignView) *projections.CampaignView) error {
	return s.db.project(ctx, cp, func(tx pgx.Tx) error {
		var cur *projections.CampaignView
		v, err := scanCampaign(tx.QueryRow(ctx, `SELECT `+campaignColumns+` FROM campaign WHERE campaign_id = $1 FOR UPDATE`, id))
		switch {
		case err == nil:
			cur = &v
		case !errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("load campaign view %s: %w", id, err)
		}
		next := evolve(cur)
		if next == cur || next == nil {
			return nil
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO campaign (`+campaignColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
			ON CONFLICT (campaign_id) DO UPDATE
			SET name = excluded.name, type = excluded.type, status = excluded.status, start_at = excluded.start_at,
			    end_at = excluded.end_at, rule_json = excluded.rule_json, cohort_id = excluded.cohort_id,
			    updated_at = excluded.updated_at, version = excluded.version`,
			campaignRow(next)...)
		if err != nil {
			return fmt.Errorf("save campaign view %s: %w", id, err)
		}
		return nil
	})
}

// Campaign returns one campaign, or domain.ErrNotFound.
func (s *Campaigns) Campaign(ctx context.Context, id uuid.UUID) (projections.CampaignView, error) {
	v, err := scanCampaign(s.db.Pool.QueryRow(ctx, `SELECT `+campaignColumns+` FROM campaign WHERE campaign_id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return v, fmt.Errorf("campaign %s: %w", id, domain.ErrNotFound)
	}
	return v, err
}

// actionMatch is the condition "the rule listens to action" as two
// containments the GIN index on rule_json (jsonb_path_ops) answers: a SIMPLE
// rule's action, or any QUEST step's. It adds its two arguments to args.
func actionMatch(action string, args *[]any) string {
	simple, _ := json.Marshal(map[string]any{"action": action})
	quest, _ := json.Marshal(map[string]any{"steps": []any{map[string]any{"action": action}}})
	*args = append(*args, string(simple), string(quest))
	n := len(*args)
	return fmt.Sprintf("(rule_json @> $%d::jsonb OR rule_json @> $%d::jsonb)", n-1, n)
}

// activeAt is the condition "[start_at, end_at) holds the instant", with
// unset ends open.
func activeAt(at time.Time, args *[]any) string {
	*args = append(*args, at)
	n := strconv.Itoa(len(*args))
	return "(start_at IS NULL OR start_at <= $" + n + ") AND (end_at IS NULL OR end_at > $" + n + ")"
}

// ListCampaigns returns up to limit campaigns of a tenant after key, oldest
// first, that pass filter.
func (s *Campaigns) ListCampaigns(ctx context.Context, tenantID uuid.UUID, filter projections.CampaignFilter, after projections.CampaignKey, limit int) ([]projections.CampaignView, error) {
	args := []any{tenantID, after.CreatedAt, after.ID}
	where := []string{"tenant_id = $1", "(created_at, campaign_id) > ($2, $3)"}
	if filter.Status != "" {
		args = append(args, string(filter.Status))
		where = append(where, "status = $"+strconv.Itoa(len(args)))
	}
	if filter.Type != "" {
		args = append(args, string(filter.Type))
		where = append(where, "type = $"+strconv.Itoa(len(args)))
	}
	if filter.Action != "" {
		where = append(where, actionMatch(filter.Action, &args))
	}
	if !filter.ActiveAt.IsZero() {
		where = append(where, activeAt(filter.ActiveAt, &args))
	}
	args = append(args, limit)
	rows, err := s.db.Pool.Query(ctx, `SELECT `+campaignColumns+` FROM campaign WHERE `+strings.Join(where, " AND ")+
		` ORDER BY created_at, campaign_id LIMIT $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return nil, fmt.Errorf("list campaigns of %s: %w", tenantID, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (projections.CampaignView, error) { return scanCampaign(r) })
}

// searchQuery is the engine's campaign search: the (tenant_id, status)
// index finds the tenant's active campaigns and the GIN index on rule_json
// those of the action; campaigns_test.go EXPLAINs it to keep it so.
func searchQuery(tenantID uuid.UUID, action string, now time.Time) (string, []any) {
	args := []any{tenantID}
	q := `SELECT ` + campaignColumns + ` FROM campaign
		WHERE tenant_id = $1 AND status = 'ACTIVE' AND ` + actionMatch(action, &args) + ` AND ` + activeAt(now, &args) + `
		ORDER BY created_at, campaign_id LIMIT ` + strconv.Itoa(MaxSearchResults)
	return q, args
}

// SearchCampaigns returns the ACTIVE campaigns of a tenant whose rule listens
// to action and whose dates hold now: the campaigns an action event of that
// tenant can match (ProjectLLD.md §4's /campaigns/search).
func (s *Campaigns) SearchCampaigns(ctx context.Context, tenantID uuid.UUID, action string, now time.Time) ([]projections.CampaignView, error) {
	q, args := searchQuery(tenantID, action, now)
	rows, err := s.db.Pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("search campaigns of %s for %s: %w", tenantID, action, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (projections.CampaignView, error) { return scanCampaign(r) })
}

// DueToEnd returns up to limit campaigns, ACTIVE or PAUSED, whose endAt is
// at or before now: the ones the scheduler ends.
func (s *Campaigns) DueToEnd(ctx context.Context, now time.Time, limit int) ([]uuid.UUID, error) {
	rows, err := s.db.Pool.Query(ctx, `SELECT campaign_id FROM campaign
		WHERE status IN ('ACTIVE', 'PAUSED') AND end_at IS NOT NULL AND end_at <= $1
		ORDER BY end_at LIMIT $2`, now, limit)
	if err != nil {
		return nil, fmt.Errorf("campaigns due to end: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
}
