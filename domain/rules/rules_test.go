package rules_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/rules"
)

func violations(t *testing.T, err error) map[string]string {
	t.Helper()
	var ve *domain.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v is not a validation error", err)
	}
	out := map[string]string{}
	for _, v := range ve.Violations {
		out[v.Field] += v.Message
	}
	return out
}

func TestParseAcceptsTheDesignExamples(t *testing.T) {
	simple, err := rules.Parse(rules.Simple, []byte(`{"action": "PURCHASE", "condition": "event.payload.amount >= 100",
		"reward": {"type": "CASHBACK", "currency": "INR", "amount": "50"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if simple.Action != "PURCHASE" || simple.Condition.Source() != "event.payload.amount >= 100" ||
		simple.Reward.Type != rules.RewardCashback || !simple.Reward.Amount.Equal(decimal.NewFromInt(50)) {
		t.Fatalf("simple rule %+v", simple)
	}
	quest, err := rules.Parse(rules.Quest, []byte(`{"steps": [{"action": "LOGIN", "count": 3},
		{"action": "PURCHASE", "count": 1, "condition": "event.payload.amount > 0"}],
		"ordered": false, "windowDays": 7, "reward": {"type": "POINTS", "currency": "POINTS", "amount": "500"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(quest.Steps) != 2 || quest.Steps[0].Count != 3 || quest.WindowDays != 7 || quest.Ordered ||
		!reflect.DeepEqual(quest.Actions(), []string{"LOGIN", "PURCHASE"}) {
		t.Fatalf("quest rule %+v", quest)
	}
	pct, err := rules.Parse(rules.Simple, []byte(`{"action": "PURCHASE",
		"reward": {"type": "CASHBACK", "currency": "INR", "percent": "5", "percentOf": "amount", "maxAmount": "100"}}`))
	if err != nil || !pct.Reward.IsPercentage() {
		t.Fatalf("percentage rule %+v, %v", pct, err)
	}
}

func TestParseReportsEveryProblemWhereItIs(t *testing.T) {
	tests := []struct {
		name string
		kind rules.Kind
		doc  string
		want map[string]string // field -> part of its message
	}{
		{"not an object", rules.Simple, `[1]`, map[string]string{"rule": "must be an object"}},
		{"not JSON", rules.Simple, `{"action":`, map[string]string{"rule": "one JSON object"}},
		{"missing everything", rules.Simple, `{}`, map[string]string{"rule.action": "action code", "rule.reward": "required"}},
		{"unknown field", rules.Simple, `{"action":"LOGIN","reward":{"type":"POINTS","currency":"POINTS","amount":"1"},"bonus":1}`,
			map[string]string{"rule.bonus": "not a known field"}},
		{"steps in a SIMPLE rule", rules.Simple, `{"steps":[],"reward":{"type":"POINTS","currency":"POINTS","amount":"1"}}`,
			map[string]string{"rule.steps": "not a known field", "rule.action": "action code"}},
		{"lower-case action", rules.Simple, `{"action":"purchase","reward":{"type":"POINTS","currency":"POINTS","amount":"1"}}`,
			map[string]string{"rule.action": "action code"}},
		{"bad CEL", rules.Simple, `{"action":"PURCHASE","condition":"evnt.payload.amount > 1","reward":{"type":"POINTS","currency":"POINTS","amount":"1"}}`,
			map[string]string{"rule.condition": "line 1, column 1: undeclared reference to 'evnt'"}},
		{"CEL syntax error", rules.Simple, `{"action":"PURCHASE","condition":"event.payload.amount >","reward":{"type":"POINTS","currency":"POINTS","amount":"1"}}`,
			map[string]string{"rule.condition": "line 1, column"}},
		{"CEL not boolean", rules.Simple, `{"action":"PURCHASE","condition":"1 + 2","reward":{"type":"POINTS","currency":"POINTS","amount":"1"}}`,
			map[string]string{"rule.condition": "must be true or false"}},
		{"blank CEL", rules.Simple, `{"action":"PURCHASE","condition":"  ","reward":{"type":"POINTS","currency":"POINTS","amount":"1"}}`,
			map[string]string{"rule.condition": "blank"}},
		{"float amount", rules.Simple, `{"action":"LOGIN","reward":{"type":"CASHBACK","currency":"INR","amount":12.5}}`,
			map[string]string{"rule.reward.amount": "decimal string"}},
		{"negative amount", rules.Simple, `{"action":"LOGIN","reward":{"type":"CASHBACK","currency":"INR","amount":"-1"}}`,
			map[string]string{"rule.reward.amount": "greater than zero"}},
		{"too precise", rules.Simple, `{"action":"LOGIN","reward":{"type":"CASHBACK","currency":"INR","amount":"0.00001"}}`,
			map[string]string{"rule.reward.amount": "4 decimal places"}},
		{"exponent", rules.Simple, `{"action":"LOGIN","reward":{"type":"CASHBACK","currency":"INR","amount":"1e3"}}`,
			map[string]string{"rule.reward.amount": "not a decimal"}},
		{"bad type and currency", rules.Simple, `{"action":"LOGIN","reward":{"type":"MONEY","currency":"rupees","amount":"1"}}`,
			map[string]string{"rule.reward.type": "CASHBACK", "rule.reward.currency": "capital letters"}},
		{"amount and percent", rules.Simple, `{"action":"LOGIN","reward":{"type":"CASHBACK","currency":"INR","amount":"1","percent":"5","percentOf":"amount"}}`,
			map[string]string{"rule.reward": "not both"}},
		{"percent over 100", rules.Simple, `{"action":"LOGIN","reward":{"type":"CASHBACK","currency":"INR","percent":"150","percentOf":"amount"}}`,
			map[string]string{"rule.reward.percent": "at most 100"}},
		{"percent of nothing", rules.Simple, `{"action":"LOGIN","reward":{"type":"CASHBACK","currency":"INR","percent":"5"}}`,
			map[string]string{"rule.reward.percentOf": "payload field"}},
		{"cap on a fixed amount", rules.Simple, `{"action":"LOGIN","reward":{"type":"CASHBACK","currency":"INR","amount":"5","maxAmount":"9"}}`,
			map[string]string{"rule.reward.maxAmount": "only caps percentage"}},
		{"no steps", rules.Quest, `{"steps":[],"reward":{"type":"POINTS","currency":"POINTS","amount":"1"}}`,
			map[string]string{"rule.steps": "1 to 10"}},
		{"bad step", rules.Quest, `{"steps":[{"action":"LOGIN","count":0},{"action":"PURCHASE","condition":"event.x ==","extra":1}],"windowDays":400,"ordered":"yes","reward":{"type":"POINTS","currency":"POINTS","amount":"1"}}`,
			map[string]string{"rule.steps[0].count": "1 to 1000", "rule.steps[1].condition": "line 1", "rule.steps[1].extra": "not a known field",
				"rule.windowDays": "1 to 366", "rule.ordered": "true or false"}},
		{"percentage quest", rules.Quest, `{"steps":[{"action":"LOGIN"}],"reward":{"type":"CASHBACK","currency":"INR","percent":"5","percentOf":"amount"}}`,
			map[string]string{"rule.reward.percent": "SIMPLE campaigns"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := rules.Parse(tt.kind, []byte(tt.doc))
			got := violations(t, err)
			for field, part := range tt.want {
				if !strings.Contains(got[field], part) {
					t.Errorf("violation of %s = %q, want it to mention %q (all: %v)", field, got[field], part, got)
				}
			}
			if len(got) != len(tt.want) {
				t.Errorf("violations %v, want exactly the fields of %v", got, tt.want)
			}
		})
	}
}

func event(payload string) map[string]any {
	var p map[string]any
	if err := json.Unmarshal([]byte(payload), &p); err != nil {
		panic(err)
	}
	return map[string]any{"event": map[string]any{"actionCode": "PURCHASE", "userId": "u1",
		"eventTs": time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC), "payload": p}}
}

func TestConditionsEvaluate(t *testing.T) {
	r, err := rules.Parse(rules.Simple, []byte(`{"action":"PURCHASE","condition":"event.payload.amount >= 100.0 && event.payload.channel == 'app'","reward":{"type":"POINTS","currency":"POINTS","amount":"1"}}`))
	if err != nil {
		t.Fatal(err)
	}
	for payload, want := range map[string]bool{
		`{"amount": 150, "channel": "app"}`: true,
		`{"amount": 99, "channel": "app"}`:  false,
		`{"amount": 150, "channel": "web"}`: false,
	} {
		got, err := r.Condition.Matches(event(payload))
		if err != nil || got != want {
			t.Errorf("Matches(%s) = %v, %v; want %v", payload, got, err, want)
		}
	}
	if _, err := r.Condition.Matches(event(`{"channel": "app"}`)); !errors.Is(err, rules.ErrConditionFailed) {
		t.Errorf("a payload without amount: error %v, want ErrConditionFailed", err)
	}
	if ok, err := (rules.Condition{}).Matches(event(`{}`)); !ok || err != nil {
		t.Errorf("the zero condition = %v, %v; want it to match", ok, err)
	}
}

func TestConditionsHaveACostLimit(t *testing.T) {
	r, err := rules.Parse(rules.Simple, []byte(`{"action":"PURCHASE","condition":"event.payload.items.all(i, event.payload.items.all(j, event.payload.items.all(k, true)))","reward":{"type":"POINTS","currency":"POINTS","amount":"1"}}`))
	if err != nil {
		t.Fatal(err)
	}
	items := make([]any, 100)
	for i := range items {
		items[i] = i
	}
	vars := map[string]any{"event": map[string]any{"payload": map[string]any{"items": items}}}
	if _, err := r.Condition.Matches(vars); !errors.Is(err, rules.ErrConditionFailed) || !strings.Contains(err.Error(), "cost") {
		t.Fatalf("a million-step condition: %v, want it stopped by the cost limit", err)
	}
}

func TestRewardAmounts(t *testing.T) {
	d := decimal.RequireFromString
	tests := []struct {
		reward  string
		payload string
		want    string
		ok      bool
	}{
		{`{"type":"CASHBACK","currency":"INR","amount":"50"}`, `{}`, "50", true},
		{`{"type":"CASHBACK","currency":"INR","percent":"5","percentOf":"amount"}`, `{"amount": 1234.5}`, "61.72", true},
		{`{"type":"CASHBACK","currency":"INR","percent":"5","percentOf":"amount"}`, `{"amount": "0.19"}`, "0", false},
		{`{"type":"CASHBACK","currency":"INR","percent":"10","percentOf":"order.total","maxAmount":"100"}`, `{"order": {"total": 5000}}`, "100", true},
		{`{"type":"POINTS","currency":"POINTS","percent":"1","percentOf":"amount"}`, `{"amount": 999}`, "9", true},
		{`{"type":"CASHBACK","currency":"INR","percent":"5","percentOf":"amount"}`, `{"amount": "lots"}`, "0", false},
		{`{"type":"CASHBACK","currency":"INR","percent":"5","percentOf":"amount"}`, `{"amount": -100}`, "0", false},
		{`{"type":"CASHBACK","currency":"INR","percent":"5","percentOf":"amount"}`, `{}`, "0", false},
	}
	for _, tt := range tests {
		r, err := rules.Parse(rules.Simple, []byte(`{"action":"PURCHASE","reward":`+tt.reward+`}`))
		if err != nil {
			t.Fatal(err)
		}
		var p map[string]any
		dec := json.NewDecoder(strings.NewReader(tt.payload))
		dec.UseNumber()
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		got, ok := r.Reward.AmountFor(p)
		if ok != tt.ok || (ok && !got.Equal(d(tt.want))) {
			t.Errorf("%s of %s = %s, %v; want %s, %v", tt.reward, tt.payload, got, ok, tt.want, tt.ok)
		}
	}
}

func TestDocumentRoundTrips(t *testing.T) {
	for kind, doc := range map[rules.Kind]string{
		rules.Simple: `{"action":"PURCHASE","condition":"event.payload.amount > 1.0","reward":{"type":"CASHBACK","currency":"INR","percent":"2.5","percentOf":"amount","maxAmount":"75.50"}}`,
		rules.Quest:  `{"steps":[{"action":"LOGIN","count":3},{"action":"PURCHASE","condition":"true"}],"ordered":true,"windowDays":7,"reward":{"type":"COUPON","currency":"INR","amount":"100"}}`,
	} {
		r, err := rules.Parse(kind, []byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		again, err := rules.Parse(kind, r.Document())
		if err != nil {
			t.Fatalf("Parse(Document()) of %s: %v", r.Document(), err)
		}
		if string(again.Document()) != string(r.Document()) {
			t.Fatalf("document changed on a round trip:\n%s\n%s", r.Document(), again.Document())
		}
	}
}

// Money is paid in the reward's units: whole POINTS, cents otherwise, and
// never a fraction more than the rule says.
func TestRewardsArePaidInTheirUnits(t *testing.T) {
	for _, doc := range []string{
		`{"action":"BUY","reward":{"type":"POINTS","currency":"POINTS","amount":"10.5"}}`,
		`{"action":"BUY","reward":{"type":"CASHBACK","currency":"INR","amount":"0.001"}}`,
		`{"action":"BUY","reward":{"type":"POINTS","currency":"POINTS","percent":"5","percentOf":"amount","maxAmount":"50.5"}}`,
	} {
		if _, err := rules.Parse(rules.Simple, []byte(doc)); err == nil {
			t.Errorf("Parse(%s) accepted an amount finer than its unit", doc)
		}
	}
	r, err := rules.Parse(rules.Simple, []byte(`{"action":"BUY","reward":{"type":"CASHBACK","currency":"INR","percent":"1","percentOf":"amount","maxAmount":"5000"}}`))
	if err != nil {
		t.Fatal(err)
	}
	uncapped, err := rules.Parse(rules.Simple, []byte(`{"action":"BUY","reward":{"type":"CASHBACK","currency":"INR","percent":"10","percentOf":"amount"}}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rule       rules.Rule
		base, want string
	}{
		{r, "99.999999999999999999", "0.99"}, // 1% rounded down, not half up first
		{r, "1e17", "5000"},                  // capped
		{uncapped, "1e17", ""},               // larger than any reward: nothing
	} {
		got, ok := tc.rule.Reward.AmountFor(map[string]any{"amount": json.Number(tc.base)})
		if tc.want == "" {
			if ok {
				t.Errorf("AmountFor(%s) = %s, want nothing", tc.base, got)
			}
			continue
		}
		if !ok || got.String() != tc.want {
			t.Errorf("AmountFor(%s) = %s, %v; want %s", tc.base, got, ok, tc.want)
		}
	}
}
