package campaign_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/campaign"
	"github.com/incentives-platform/incentives/domain/rules"
)

var (
	id     = uuid.MustParse("c0ffee00-0000-4000-8000-000000000001")
	tenant = uuid.MustParse("7e4a0000-0000-4000-8000-000000000002")
	t0     = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
)

func simpleRule(t *testing.T) rules.Rule {
	t.Helper()
	r, err := rules.Parse(rules.Simple, []byte(`{"action":"PURCHASE","reward":{"type":"POINTS","currency":"POINTS","amount":"10"}}`))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func def(t *testing.T) campaign.Definition {
	return campaign.Definition{Name: "Festive cashback", Type: campaign.Simple, StartAt: t0, EndAt: t0.Add(30 * 24 * time.Hour), Rule: simpleRule(t)}
}

func TestCreateValidates(t *testing.T) {
	d := def(t)
	events, err := campaign.Create(id, tenant, d, t0)
	if err != nil || !reflect.DeepEqual(events, []domain.Event{campaign.Created{CampaignID: id, TenantID: tenant, Definition: d, CreatedAt: t0}}) {
		t.Fatalf("Create = %v, %v", events, err)
	}
	bad := d
	bad.Name, bad.Type, bad.EndAt = " ", campaign.Quest, t0.Add(-time.Hour)
	_, err = campaign.Create(id, uuid.Nil, bad, t0)
	var ve *domain.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Create(bad) = %v", err)
	}
	fields := map[string]bool{}
	for _, v := range ve.Violations {
		fields[v.Field] = true
	}
	for _, f := range []string{"tenantId", "name", "rule", "endAt"} {
		if !fields[f] {
			t.Errorf("no violation of %s in %v", f, ve.Violations)
		}
	}
}

func TestLifecycle(t *testing.T) {
	d := def(t)
	created := campaign.Created{CampaignID: id, TenantID: tenant, Definition: d, CreatedAt: t0}
	activated := campaign.Activated{CampaignID: id, ActivatedAt: t0}
	paused := campaign.Paused{CampaignID: id, PausedAt: t0}
	ended := campaign.Ended{CampaignID: id, Reason: campaign.EndAtReached, EndedAt: t0}
	now := t0.Add(time.Hour)
	afterEnd := d.EndAt.Add(time.Second)
	activate := func(at time.Time) func(*campaign.Campaign) ([]domain.Event, error) {
		return func(c *campaign.Campaign) ([]domain.Event, error) { return c.Activate(at) }
	}
	pause := func(c *campaign.Campaign) ([]domain.Event, error) { return c.Pause(now) }
	update := func(c *campaign.Campaign) ([]domain.Event, error) { return c.Update(d, now) }
	tests := []struct {
		name    string
		given   []domain.Event
		when    func(*campaign.Campaign) ([]domain.Event, error)
		then    []domain.Event
		wantErr error
	}{
		{"activate a draft", []domain.Event{created}, activate(now), []domain.Event{campaign.Activated{CampaignID: id, ActivatedAt: now}}, nil},
		{"activate a paused campaign", []domain.Event{created, activated, paused}, activate(now), []domain.Event{campaign.Activated{CampaignID: id, ActivatedAt: now}}, nil},
		{"activate an active campaign", []domain.Event{created, activated}, activate(now), nil, domain.ErrInvalidTransition},
		{"activate after endAt", []domain.Event{created}, activate(afterEnd), nil, domain.ErrInvalidTransition},
		{"activate an ended campaign", []domain.Event{created, activated, ended}, activate(now), nil, domain.ErrInvalidTransition},
		{"pause an active campaign", []domain.Event{created, activated}, pause, []domain.Event{campaign.Paused{CampaignID: id, PausedAt: now}}, nil},
		{"pause a draft", []domain.Event{created}, pause, nil, domain.ErrInvalidTransition},
		{"update an active campaign", []domain.Event{created, activated}, update, []domain.Event{campaign.Updated{CampaignID: id, Definition: d, UpdatedAt: now}}, nil},
		{"update an ended campaign", []domain.Event{created, ended}, update, nil, domain.ErrInvalidTransition},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := campaign.Rehydrate(tt.given)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tt.when(c)
			if !errors.Is(err, tt.wantErr) || !reflect.DeepEqual(got, tt.then) {
				t.Fatalf("got %v, %v; want %v, %v", got, err, tt.then, tt.wantErr)
			}
		})
	}
}

func TestOnlyDraftsChangeType(t *testing.T) {
	d := def(t)
	c, _ := campaign.Rehydrate([]domain.Event{campaign.Created{CampaignID: id, TenantID: tenant, Definition: d, CreatedAt: t0},
		campaign.Activated{CampaignID: id, ActivatedAt: t0}})
	quest, err := rules.Parse(rules.Quest, []byte(`{"steps":[{"action":"LOGIN","count":2}],"reward":{"type":"POINTS","currency":"POINTS","amount":"5"}}`))
	if err != nil {
		t.Fatal(err)
	}
	d.Type, d.Rule = campaign.Quest, quest
	var ve *domain.ValidationError
	if _, err := c.Update(d, t0); !errors.As(err, &ve) || ve.Violations[0].Field != "type" {
		t.Fatalf("changing the type of an active campaign: %v", err)
	}
}

func TestEndIfDue(t *testing.T) {
	d := def(t)
	created := campaign.Created{CampaignID: id, TenantID: tenant, Definition: d, CreatedAt: t0}
	active, _ := campaign.Rehydrate([]domain.Event{created, campaign.Activated{CampaignID: id, ActivatedAt: t0}})
	draft, _ := campaign.Rehydrate([]domain.Event{created})
	if got := active.EndIfDue(d.EndAt.Add(-time.Second)); got != nil {
		t.Fatalf("ended before endAt: %v", got)
	}
	want := []domain.Event{campaign.Ended{CampaignID: id, Reason: campaign.EndAtReached, EndedAt: d.EndAt}}
	if got := active.EndIfDue(d.EndAt); !reflect.DeepEqual(got, want) {
		t.Fatalf("EndIfDue at endAt = %v, want %v", got, want)
	}
	if got := draft.EndIfDue(d.EndAt.Add(time.Hour)); got != nil {
		t.Fatalf("a draft ended by itself: %v", got)
	}
	c, _ := campaign.Rehydrate([]domain.Event{created, campaign.Activated{CampaignID: id, ActivatedAt: t0}, want[0]})
	if c.Status() != campaign.StatusEnded || c.Version() != 3 {
		t.Fatalf("after Ended: %s v%d", c.Status(), c.Version())
	}
}
