package engine_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/incentives-platform/incentives/domain/campaign"
	"github.com/incentives-platform/incentives/domain/engine"
	"github.com/incentives-platform/incentives/domain/rules"
)

var (
	tenantID   = uuid.MustParse("aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa")
	campaignID = uuid.MustParse("11111111-1111-4111-8111-111111111111")
	cohortID   = uuid.MustParse("cccccccc-cccc-4ccc-8ccc-cccccccccccc")
	t0         = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	day        = 24 * time.Hour
)

// newCampaign is an ACTIVE campaign of tenantID, at version 3, open-ended,
// with the rule doc of kind.
func newCampaign(tb testing.TB, kind rules.Kind, doc string) engine.Campaign {
	tb.Helper()
	r, err := rules.Parse(kind, []byte(doc))
	if err != nil {
		tb.Fatalf("rules.Parse(%s): %v", doc, err)
	}
	return engine.Campaign{ID: campaignID, TenantID: tenantID, Version: 3, Status: campaign.StatusActive, Rule: r}
}

// decodePayload decodes a payload as the consumer does: numbers as json.Number.
func decodePayload(tb testing.TB, payload string) map[string]any {
	tb.Helper()
	if payload == "" {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(payload))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		tb.Fatalf("payload %s: %v", payload, err)
	}
	return m
}

// newEvent is user u1's event of action at t0+offset; its id follows from
// its action, offset and payload, so every event of a test is distinct.
func newEvent(tb testing.TB, action string, offset time.Duration, payload string) engine.ActionEvent {
	tb.Helper()
	return engine.ActionEvent{
		EventID:    uuid.NewSHA1(uuid.NameSpaceOID, []byte(action+"/"+offset.String()+"/"+payload)),
		TenantID:   tenantID,
		UserID:     "u1",
		ActionCode: action,
		EventTs:    t0.Add(offset),
		Payload:    decodePayload(tb, payload),
		RawPayload: []byte(payload),
	}
}

const (
	fixed50   = `{"type":"CASHBACK","currency":"INR","amount":"50"}`
	atLeast   = `"event.payload.amount >= 100"`
	purchase  = `{"action":"PURCHASE","reward":` + fixed50 + `}`
	purchase1 = `{"action":"PURCHASE","condition":` + atLeast + `,"reward":` + fixed50 + `}`
)

func percent(typ, currency, extra string) string {
	return `{"action":"PURCHASE","reward":{"type":"` + typ + `","currency":"` + currency + `","percent":"5","percentOf":"amount"` + extra + `}}`
}

func TestEvaluateSimple(t *testing.T) {
	tests := []struct {
		name     string
		rule     string
		campaign func(*engine.Campaign) // changes to the ACTIVE, open-ended campaign
		inCohort bool
		action   string
		offset   time.Duration
		payload  string
		want     engine.Outcome
		amount   string // of an ISSUED decision
		reason   string // part of Reason
	}{
		{name: "fixed reward without condition", rule: purchase, payload: `{}`, want: engine.OutcomeIssued, amount: "50"},
		{name: "fixed reward, no payload at all", rule: purchase, want: engine.OutcomeIssued, amount: "50"},
		{name: "another action", rule: purchase, action: "LOGIN", want: engine.OutcomeConditionFalse, reason: "rewards PURCHASE, not LOGIN"},

		// Conditions read the payload's json.Numbers as CEL ints or doubles.
		{name: "condition on an integer above", rule: purchase1, payload: `{"amount": 150}`, want: engine.OutcomeIssued, amount: "50"},
		{name: "condition on an integer at the bound", rule: purchase1, payload: `{"amount": 100}`, want: engine.OutcomeIssued, amount: "50"},
		{name: "condition on an integer below", rule: purchase1, payload: `{"amount": 99}`, want: engine.OutcomeConditionFalse},
		{name: "condition on a fraction above", rule: purchase1, payload: `{"amount": 100.5}`, want: engine.OutcomeIssued, amount: "50"},
		{name: "condition on a fraction below", rule: purchase1, payload: `{"amount": 99.99}`, want: engine.OutcomeConditionFalse},
		{name: "condition on 100.0", rule: purchase1, payload: `{"amount": 100.0}`, want: engine.OutcomeIssued, amount: "50"},
		{name: "condition with a double literal", rule: `{"action":"PURCHASE","condition":"event.payload.amount >= 100.0","reward":` + fixed50 + `}`,
			payload: `{"amount": 100}`, want: engine.OutcomeIssued, amount: "50"},
		{name: "string equality holds", rule: `{"action":"PURCHASE","condition":"event.payload.channel == 'app'","reward":` + fixed50 + `}`,
			payload: `{"channel": "app"}`, want: engine.OutcomeIssued, amount: "50"},
		{name: "string equality fails", rule: `{"action":"PURCHASE","condition":"event.payload.channel == 'app'","reward":` + fixed50 + `}`,
			payload: `{"channel": "web"}`, want: engine.OutcomeConditionFalse},
		{name: "nested object and list", rule: `{"action":"PURCHASE","condition":"event.payload.order.total > 99 && event.payload.order.items.size() == 2 && event.payload.order.items[1] == 7","reward":` + fixed50 + `}`,
			payload: `{"order": {"total": 99.5, "items": [3, 7]}}`, want: engine.OutcomeIssued, amount: "50"},
		{name: "event fields", rule: `{"action":"PURCHASE","condition":"event.userId == 'u1' && event.actionCode == 'PURCHASE' && event.tenantId == '` + tenantID.String() + `' && event.eventTs >= timestamp('2026-11-25T10:00:00Z')","reward":` + fixed50 + `}`,
			payload: `{}`, want: engine.OutcomeIssued, amount: "50"},
		{name: "event time before the condition's", rule: `{"action":"PURCHASE","condition":"event.eventTs >= timestamp('2026-11-25T10:00:01Z')","reward":` + fixed50 + `}`,
			payload: `{}`, want: engine.OutcomeConditionFalse},
		{name: "missing payload field", rule: purchase1, payload: `{"channel": "app"}`, want: engine.OutcomeConditionFailed, reason: "no such key: amount"},
		{name: "no payload", rule: purchase1, want: engine.OutcomeConditionFailed, reason: "no such key: amount"},
		{name: "string where a number is compared", rule: purchase1, payload: `{"amount": "150"}`, want: engine.OutcomeConditionFailed, reason: "no such overload"},

		// Percentages round down to the reward's scale and respect the cap.
		{name: "percentage rounds down to cents", rule: percent("CASHBACK", "INR", ""), payload: `{"amount": 1234.56}`, want: engine.OutcomeIssued, amount: "61.72"},
		{name: "percentage never rounds up", rule: percent("CASHBACK", "INR", ""), payload: `{"amount": 19.99}`, want: engine.OutcomeIssued, amount: "0.99"},
		{name: "percentage of POINTS is whole", rule: percent("POINTS", "POINTS", ""), payload: `{"amount": 1999}`, want: engine.OutcomeIssued, amount: "99"},
		{name: "percentage under the cap", rule: percent("CASHBACK", "INR", `,"maxAmount":"100"`), payload: `{"amount": 1999.99}`, want: engine.OutcomeIssued, amount: "99.99"},
		{name: "percentage capped", rule: percent("CASHBACK", "INR", `,"maxAmount":"100"`), payload: `{"amount": 10000}`, want: engine.OutcomeIssued, amount: "100"},
		{name: "percentage of a decimal string", rule: percent("CASHBACK", "INR", ""), payload: `{"amount": "200.00"}`, want: engine.OutcomeIssued, amount: "10"},
		{name: "percentage of a nested field", rule: `{"action":"PURCHASE","reward":{"type":"CASHBACK","currency":"INR","percent":"10","percentOf":"order.total"}}`,
			payload: `{"order": {"total": 45.5}}`, want: engine.OutcomeIssued, amount: "4.55"},
		{name: "percentage of a missing field", rule: percent("CASHBACK", "INR", ""), payload: `{"total": 100}`, want: engine.OutcomeNoAmount, reason: "payload.amount"},
		{name: "percentage of a negative amount", rule: percent("CASHBACK", "INR", ""), payload: `{"amount": -100}`, want: engine.OutcomeNoAmount},
		{name: "percentage that rounds to nothing", rule: percent("CASHBACK", "INR", ""), payload: `{"amount": 0.19}`, want: engine.OutcomeNoAmount},
		{name: "percentage of POINTS that rounds to nothing", rule: percent("POINTS", "POINTS", ""), payload: `{"amount": 19}`, want: engine.OutcomeNoAmount},
		{name: "condition then percentage", rule: `{"action":"PURCHASE","condition":` + atLeast + `,"reward":{"type":"CASHBACK","currency":"INR","percent":"2.5","percentOf":"amount"}}`,
			payload: `{"amount": 150}`, want: engine.OutcomeIssued, amount: "3.75"},

		// [StartAt, EndAt) and the status.
		{name: "paused", rule: purchase, campaign: func(c *engine.Campaign) { c.Status = campaign.StatusPaused },
			want: engine.OutcomeNotActive, reason: "PAUSED"},
		{name: "draft", rule: purchase, campaign: func(c *engine.Campaign) { c.Status = campaign.StatusDraft },
			want: engine.OutcomeNotActive, reason: "DRAFT"},
		{name: "ended", rule: purchase, campaign: func(c *engine.Campaign) { c.Status = campaign.StatusEnded },
			want: engine.OutcomeNotActive, reason: "ENDED"},
		{name: "before startAt", rule: purchase, campaign: func(c *engine.Campaign) { c.StartAt = t0.Add(time.Millisecond) },
			want: engine.OutcomeNotActive, reason: "before the campaign's startAt"},
		{name: "at startAt", rule: purchase, campaign: func(c *engine.Campaign) { c.StartAt = t0 },
			want: engine.OutcomeIssued, amount: "50"},
		{name: "just before endAt", rule: purchase, campaign: func(c *engine.Campaign) { c.StartAt, c.EndAt = t0.Add(-day), t0.Add(time.Millisecond) },
			want: engine.OutcomeIssued, amount: "50"},
		{name: "at endAt", rule: purchase, campaign: func(c *engine.Campaign) { c.EndAt = t0 },
			want: engine.OutcomeNotActive, reason: "at or after the campaign's endAt"},
		{name: "not active wins over the cohort", rule: purchase, campaign: func(c *engine.Campaign) { c.EndAt, c.CohortID = t0, cohortID },
			want: engine.OutcomeNotActive},

		// Cohorts.
		{name: "not in the cohort", rule: purchase, campaign: func(c *engine.Campaign) { c.CohortID = cohortID },
			want: engine.OutcomeNotInCohort, reason: cohortID.String()},
		{name: "in the cohort", rule: purchase, campaign: func(c *engine.Campaign) { c.CohortID = cohortID }, inCohort: true,
			want: engine.OutcomeIssued, amount: "50"},
		{name: "no cohort: everyone", rule: purchase, inCohort: false, want: engine.OutcomeIssued, amount: "50"},
		{name: "the cohort comes before the condition", rule: purchase1, campaign: func(c *engine.Campaign) { c.CohortID = cohortID },
			payload: `{}`, want: engine.OutcomeNotInCohort},

		{name: "another tenant's campaign", rule: purchase, campaign: func(c *engine.Campaign) { c.TenantID = uuid.New() },
			want: engine.OutcomeConditionFalse, reason: "belongs to tenant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCampaign(t, rules.Simple, tt.rule)
			if tt.campaign != nil {
				tt.campaign(&c)
			}
			action := tt.action
			if action == "" {
				action = "PURCHASE"
			}
			e := newEvent(t, action, 0, tt.payload)
			d, progress := engine.Evaluate(e, c, tt.inCohort, nil)
			if d.Outcome != tt.want {
				t.Fatalf("Evaluate(%s) = %s (%s), want %s", tt.payload, d.Outcome, d.Reason, tt.want)
			}
			if !strings.Contains(d.Reason, tt.reason) {
				t.Errorf("Reason = %q, want it to contain %q", d.Reason, tt.reason)
			}
			if progress != nil {
				t.Errorf("progress = %+v, want nil for a SIMPLE campaign", progress)
			}
			if tt.want != engine.OutcomeIssued {
				if d.Reward != nil {
					t.Errorf("Reward = %+v on a %s decision, want none", d.Reward, d.Outcome)
				}
				return
			}
			want := engine.Reward{Type: c.Rule.Reward.Type, Currency: c.Rule.Reward.Currency, Amount: decimal.RequireFromString(tt.amount)}
			if d.Reward == nil || d.Reward.Type != want.Type || d.Reward.Currency != want.Currency || !d.Reward.Amount.Equal(want.Amount) {
				t.Errorf("Reward = %+v, want %+v", d.Reward, want)
			}
			if scale := c.Rule.Reward.Scale(); -d.Reward.Amount.Exponent() > scale {
				t.Errorf("amount %s has more than %d decimal places", d.Reward.Amount, scale)
			}
		})
	}
}

// A decision says what it read: the payload its condition saw, the value a
// percentage was taken of.
func TestEvaluateRecordsInputs(t *testing.T) {
	c := newCampaign(t, rules.Simple, `{"action":"PURCHASE","condition":`+atLeast+`,
		"reward":{"type":"CASHBACK","currency":"INR","percent":"5","percentOf":"amount","maxAmount":"100"}}`)
	e := newEvent(t, "PURCHASE", 0, `{"amount": 1234.56, "channel": "app"}`)
	d, _ := engine.Evaluate(e, c, false, nil)
	want := map[string]any{
		"condition": "event.payload.amount >= 100",
		"payload":   map[string]any{"amount": json.Number("1234.56"), "channel": "app"},
		"percent":   "5", "percentOf": "amount", "maxAmount": "100", "base": json.Number("1234.56"),
	}
	if !reflect.DeepEqual(d.Inputs, want) {
		t.Errorf("Inputs = %#v, want %#v", d.Inputs, want)
	}
	if _, err := json.Marshal(d.Inputs); err != nil {
		t.Errorf("Inputs do not marshal to JSON: %v", err)
	}

	plain := newCampaign(t, rules.Simple, purchase)
	if d, _ := engine.Evaluate(e, plain, false, nil); d.Inputs != nil {
		t.Errorf("a fixed reward without condition read nothing, but Inputs = %v", d.Inputs)
	}
}

// Decision and incentive ids follow from campaign, user and event alone, so
// a redelivered event decides the same ids again.
func TestDecisionIdentity(t *testing.T) {
	c := newCampaign(t, rules.Simple, purchase)
	e := newEvent(t, "PURCHASE", 0, `{}`)
	e.EventID = uuid.MustParse("22222222-2222-4222-8222-222222222222")
	d, _ := engine.Evaluate(e, c, false, nil)
	// uuid.uuid5(UUID("b3a5f0d2-..."), "<campaign>/u1/<event>") in Python:
	// changing it would pay every redelivered event again.
	if got, want := d.ID.String(), "d343e96a-796f-5966-b5b2-d2c8210a6f5e"; got != want {
		t.Errorf("decision id = %s, want %s", got, want)
	}
	want := engine.Decision{ID: d.ID, TenantID: tenantID, UserID: "u1", CampaignID: campaignID, CampaignVer: 3,
		SourceEventID: e.EventID, Outcome: engine.OutcomeIssued,
		Reward: &engine.Reward{Type: rules.RewardCashback, Currency: "INR", Amount: decimal.RequireFromString("50")}, DecidedAt: t0}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("decision = %+v, want %+v", d, want)
	}
	again, _ := engine.Evaluate(e, c, false, nil)
	if !reflect.DeepEqual(again, d) {
		t.Errorf("a second evaluation of the same event = %+v, want %+v", again, d)
	}

	inc := engine.NewIncentive(d)
	if got, want := inc.ID.String(), "6507bc04-5748-5975-9c9c-ee1afe52589f"; got != want {
		t.Errorf("incentive id = %s, want %s", got, want)
	}
	wantInc := engine.Incentive{ID: inc.ID, DecisionID: d.ID, TenantID: tenantID, CampaignID: campaignID, CampaignVersion: 3, UserID: "u1",
		SourceEventID: e.EventID, Reward: *d.Reward, IssuedAt: t0}
	if !reflect.DeepEqual(inc, wantInc) {
		t.Errorf("NewIncentive = %+v, want %+v", inc, wantInc)
	}

	other := []struct {
		name string
		e    engine.ActionEvent
		c    engine.Campaign
	}{
		{"another event", func() engine.ActionEvent { x := e; x.EventID = uuid.New(); return x }(), c},
		{"another user", func() engine.ActionEvent { x := e; x.UserID = "u2"; return x }(), c},
		{"another campaign", e, func() engine.Campaign { x := c; x.ID = uuid.New(); return x }()},
	}
	for _, o := range other {
		if d2, _ := engine.Evaluate(o.e, o.c, false, nil); d2.ID == d.ID {
			t.Errorf("%s decides the same id %s", o.name, d.ID)
		}
	}
	// The campaign's version is recorded but is not part of the id: an
	// event redelivered after an edit must not pay twice.
	c4 := c
	c4.Version = 4
	if d4, _ := engine.Evaluate(e, c4, false, nil); d4.ID != d.ID || d4.CampaignVer != 4 {
		t.Errorf("at version 4: id %s, version %d; want id %s, version 4", d4.ID, d4.CampaignVer, d.ID)
	}
}

func TestNewIncentiveRefusesUnissuedDecisions(t *testing.T) {
	for _, d := range []engine.Decision{
		{Outcome: engine.OutcomeLimited, Reward: &engine.Reward{Amount: decimal.NewFromInt(1)}},
		{Outcome: engine.OutcomeIssued},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewIncentive(%s, reward %v) did not panic", d.Outcome, d.Reward)
				}
			}()
			engine.NewIncentive(d)
		}()
	}
}

// Variables built once per event give the same decisions as Evaluate
// building its own, and are not changed by evaluation.
func TestEventVarsAreShared(t *testing.T) {
	e := newEvent(t, "PURCHASE", 0, `{"amount": 150, "channel": "app"}`)
	vars := engine.EventVars(e)
	before := engine.EventVars(e)
	for _, doc := range []string{purchase, purchase1, `{"action":"PURCHASE","condition":"event.payload.channel == 'web'","reward":` + fixed50 + `}`} {
		c := newCampaign(t, rules.Simple, doc)
		got, _ := engine.EvaluateVars(e, vars, c, false, nil)
		want, _ := engine.Evaluate(e, c, false, nil)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: EvaluateVars = %+v, Evaluate = %+v", doc, got, want)
		}
	}
	if !reflect.DeepEqual(vars, before) {
		t.Errorf("evaluation changed the variables: %v, was %v", vars, before)
	}
	ev := vars["event"].(map[string]any)
	if ev["eventTs"] != t0 || ev["userId"] != "u1" || ev["actionCode"] != "PURCHASE" || ev["tenantId"] != tenantID.String() {
		t.Errorf("event variables = %v", ev)
	}
}

// BenchmarkEvaluateSimple is the engine's hot path: a SIMPLE campaign with a
// condition that holds, a fixed reward.
func BenchmarkEvaluateSimple(b *testing.B) {
	c := newCampaign(b, rules.Simple, purchase1)
	e := newEvent(b, "PURCHASE", 0, `{"amount": 150, "channel": "app", "sku": "A-1001", "items": 3}`)
	b.Run("vars-per-call", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if d, _ := engine.Evaluate(e, c, false, nil); d.Outcome != engine.OutcomeIssued {
				b.Fatal(d.Outcome)
			}
		}
	})
	b.Run("vars-shared", func(b *testing.B) {
		vars := engine.EventVars(e)
		b.ReportAllocs()
		for b.Loop() {
			if d, _ := engine.EvaluateVars(e, vars, c, false, nil); d.Outcome != engine.OutcomeIssued {
				b.Fatal(d.Outcome)
			}
		}
	})
}
