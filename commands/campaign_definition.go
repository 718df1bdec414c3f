package commands

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/campaign"
	"github.com/incentives-platform/incentives/domain/cohort"
	"github.com/incentives-platform/incentives/domain/rules"
)

// RuleSchema checks a rule document against the published rule schema
// (schemas/rule.schema.json), so the platform never accepts a rule that
// clients validating against that file would refuse. It must be safe for
// concurrent use.
type RuleSchema interface {
	// ValidateRule returns every violation, named "rule..."; none if doc fits.
	ValidateRule(kind rules.Kind, doc []byte) []domain.Violation
}

// CampaignInput is what a tenant writes about a campaign, as it came in.
type CampaignInput struct {
	Name string
	// Type is SIMPLE or QUEST.
	Type string
	// StartAt and EndAt are optional: zero is unset.
	StartAt, EndAt time.Time
	// Rule is the rule document (rule_json); nil when the caller sent none.
	Rule []byte
	// CohortID restricts the campaign to a cohort of the same tenant; uuid.Nil for everyone.
	CohortID uuid.UUID
}

// definition turns in into a campaign definition of tenantID. Problems with
// the rule or the cohort come back as violations, for the caller to report
// together with the campaign's own (campaign.Create or Update); err is only
// for the store failing.
func definition(ctx context.Context, store EventStore, schema RuleSchema, tenantID uuid.UUID, in CampaignInput) (campaign.Definition, []domain.Violation, error) {
	def := campaign.Definition{Name: in.Name, Type: campaign.Type(in.Type), StartAt: in.StartAt, EndAt: in.EndAt, CohortID: in.CohortID}
	var found []domain.Violation
	switch {
	case in.Rule == nil:
		found = append(found, domain.Violation{Field: "rule", Message: "is required"})
	case def.Type == campaign.Simple || def.Type == campaign.Quest:
		if found = schema.ValidateRule(def.Type, in.Rule); len(found) > 0 {
			break
		}
		rule, err := rules.Parse(def.Type, in.Rule)
		var ve *domain.ValidationError
		switch {
		case errors.As(err, &ve):
			found = append(found, ve.Violations...)
		case err != nil:
			return def, nil, err
		}
		def.Rule = rule
	}
	if len(found) > 0 {
		// The rule's own violations say what is wrong with it; the
		// campaign need not add that it is not a rule of its type.
		def.Rule.Kind = def.Type
	}
	if in.CohortID != uuid.Nil {
		history, _, err := store.Load(ctx, cohort.Stream(in.CohortID))
		if err != nil {
			return def, nil, err
		}
		c, err := cohort.Rehydrate(history)
		if errors.Is(err, domain.ErrNotFound) || (err == nil && c.TenantID() != tenantID) {
			found = append(found, domain.Violation{Field: "cohortId", Message: "no such cohort in this tenant"})
		} else if err != nil {
			return def, nil, err
		}
	}
	return def, found, nil
}

// withViolations adds found to err, the campaign's own verdict: one answer
// lists every problem of the input.
func withViolations(err error, found []domain.Violation) error {
	if len(found) == 0 {
		return err
	}
	var ve *domain.ValidationError
	switch {
	case err == nil:
		return &domain.ValidationError{Violations: found}
	case errors.As(err, &ve):
		return &domain.ValidationError{Violations: append(found, ve.Violations...)}
	}
	return err
}
