package commands_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/adapters/memstore"
	"github.com/incentives-platform/incentives/commands"
	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/campaign"
	"github.com/incentives-platform/incentives/domain/cohort"
)

const simpleRule = `{"action":"PURCHASE","condition":"event.payload.amount >= 100","reward":{"type":"CASHBACK","currency":"INR","amount":"50"}}`

func fields(t *testing.T, err error) map[string]string {
	t.Helper()
	var ve *domain.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("%v is not a validation error", err)
	}
	out := map[string]string{}
	for _, v := range ve.Violations {
		out[v.Field] += v.Message
	}
	return out
}

func TestCreateCampaignChecksTenantRuleAndCohortTogether(t *testing.T) {
	store := memstore.New()
	app := newApp(store, &recorder{})
	ctx := context.Background()
	acme, other := uuid.New(), uuid.New()
	for _, id := range []uuid.UUID{acme, other} {
		if _, err := app.CreateTenant.Handle(ctx, commands.CreateTenant{TenantID: id, Name: "T"}); err != nil {
			t.Fatal(err)
		}
	}
	// A cohort of the other tenant.
	foreign := uuid.New()
	events, err := cohort.Create(foreign, other, cohort.Definition{Name: "VIP", Kind: cohort.Dynamic, Rule: "user.total > 3"}, cohort.Members{}, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Append(ctx, domain.Metadata{TenantID: other}, domain.StreamAppend{Stream: cohort.Stream(foreign), Events: events}); err != nil {
		t.Fatal(err)
	}
	before := store.Count()

	_, err = app.CreateCampaign.Handle(ctx, commands.CreateCampaign{CampaignID: uuid.New(), TenantID: uuid.New(), Input: commands.CampaignInput{
		Name: " ", Type: "SIMPLE", CohortID: foreign,
		Rule: []byte(`{"action":"PURCHASE","condition":"event.payload.amount >=","reward":{"type":"CASHBACK","currency":"INR","amount":"50"}}`),
	}})
	got := fields(t, err)
	for _, f := range []string{"tenantId", "name", "rule.condition", "cohortId"} {
		if got[f] == "" {
			t.Errorf("no violation of %s in %v", f, got)
		}
	}
	if got["rule"] != "" {
		t.Errorf("a broken condition also reported as a wrong rule type: %v", got)
	}
	if _, err := app.CreateCampaign.Handle(ctx, commands.CreateCampaign{CampaignID: uuid.New(), TenantID: acme, Input: commands.CampaignInput{
		Name: "x", Type: "QUEST", Rule: []byte(simpleRule)}}); fields(t, err)["rule"] == "" {
		t.Errorf("a SIMPLE rule on a QUEST campaign: %v", err)
	}
	if store.Count() != before {
		t.Fatalf("refused commands appended %d events", store.Count()-before)
	}

	id := uuid.New()
	c, err := app.CreateCampaign.Handle(ctx, commands.CreateCampaign{CampaignID: id, TenantID: acme, Input: commands.CampaignInput{
		Name: "Festive", Type: "SIMPLE", Rule: []byte(simpleRule), EndAt: now.Add(24 * time.Hour)}})
	if err != nil || c.Status() != campaign.StatusDraft || c.Version() != 1 || c.Definition().Rule.Action != "PURCHASE" {
		t.Fatalf("create = %+v, %v", c, err)
	}
	if got := store.Recorded(campaign.Stream(id)); len(got) != 1 || got[0].Metadata.TenantID != acme {
		t.Fatalf("recorded %+v", got)
	}
}

func TestCampaignCommandsKeepTenantsApart(t *testing.T) {
	store := memstore.New()
	app := newApp(store, &recorder{})
	ctx := context.Background()
	acme := uuid.New()
	if _, err := app.CreateTenant.Handle(ctx, commands.CreateTenant{TenantID: acme, Name: "Acme"}); err != nil {
		t.Fatal(err)
	}
	id := uuid.New()
	if _, err := app.CreateCampaign.Handle(ctx, commands.CreateCampaign{CampaignID: id, TenantID: acme, Input: commands.CampaignInput{
		Name: "Festive", Type: "SIMPLE", Rule: []byte(simpleRule)}}); err != nil {
		t.Fatal(err)
	}
	stale := int64(7)
	// Another tenant's admin: not found, even with a stale If-Match that
	// would otherwise be a conflict.
	if _, err := app.ActivateCampaign.Handle(ctx, commands.ActivateCampaign{TenantID: uuid.New(), CampaignID: id, IfMatch: &stale}); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("another tenant activating: %v", err)
	}
	if _, err := app.ActivateCampaign.Handle(ctx, commands.ActivateCampaign{TenantID: acme, CampaignID: id, IfMatch: &stale}); !errors.Is(err, domain.ErrVersionConflict) {
		t.Fatalf("stale If-Match: %v", err)
	}
	// A platform admin (uuid.Nil) acts on any tenant; the events are the tenant's.
	c, err := app.ActivateCampaign.Handle(ctx, commands.ActivateCampaign{CampaignID: id})
	if err != nil || c.Status() != campaign.StatusActive {
		t.Fatalf("activate = %+v, %v", c, err)
	}
	if rec := store.Recorded(campaign.Stream(id)); rec[1].Metadata.TenantID != acme {
		t.Fatalf("activation recorded under tenant %s", rec[1].Metadata.TenantID)
	}
	if _, err := app.ActivateCampaign.Handle(ctx, commands.ActivateCampaign{CampaignID: id}); !errors.Is(err, domain.ErrInvalidTransition) {
		t.Fatalf("activate twice: %v", err)
	}
	// Ending is a no-op until endAt passes: this campaign has none.
	if c, err := app.EndCampaign.Handle(ctx, commands.EndCampaign{CampaignID: id}); err != nil || c.Status() != campaign.StatusActive || c.Version() != 2 {
		t.Fatalf("end a campaign without endAt = %+v, %v", c, err)
	}
}
