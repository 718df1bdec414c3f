package jsonschema_test

import (
	"testing"

	"github.com/incentives-platform/incentives/adapters/jsonschema"
	"github.com/incentives-platform/incentives/domain/rules"
)

// The published schema and the platform's own parser must agree: a rule
// the platform accepts passes the schema (clients that validate offline never
// refuse a good rule), and every shape the schema refuses the platform
// refuses too, at the same field.
func TestRuleSchemaAgreesWithTheParser(t *testing.T) {
	s, err := jsonschema.LoadRuleSchema()
	if err != nil {
		t.Fatal(err)
	}
	good := []struct {
		kind rules.Kind
		doc  string
	}{
		{rules.Simple, `{"action":"PURCHASE","condition":"event.payload.amount >= 100","reward":{"type":"CASHBACK","currency":"INR","amount":"50"}}`},
		{rules.Simple, `{"action":"PURCHASE","reward":{"type":"CASHBACK","currency":"INR","percent":"5","percentOf":"order.total","maxAmount":"100.50"}}`},
		{rules.Simple, `{"action":"LOGIN","reward":{"type":"POINTS","currency":"POINTS","amount":"10"}}`},
		{rules.Quest, `{"steps":[{"action":"LOGIN","count":3},{"action":"PURCHASE","condition":"event.payload.amount > 0"}],"ordered":true,"windowDays":7,"reward":{"type":"COUPON","currency":"INR","amount":"200"}}`},
	}
	for _, g := range good {
		if _, err := rules.Parse(g.kind, []byte(g.doc)); err != nil {
			t.Fatalf("Parse(%s) = %v", g.doc, err)
		}
		if v := s.ValidateRule(g.kind, []byte(g.doc)); len(v) != 0 {
			t.Errorf("schema refuses a rule the platform accepts: %s: %v", g.doc, v)
		}
	}
	bad := []struct {
		kind  rules.Kind
		doc   string
		field string
	}{
		{rules.Simple, `{"reward":{"type":"POINTS","currency":"POINTS","amount":"10"}}`, "rule"},
		{rules.Simple, `{"action":"buy","reward":{"type":"POINTS","currency":"POINTS","amount":"10"}}`, "rule.action"},
		{rules.Simple, `{"action":"BUY","colour":"red","reward":{"type":"POINTS","currency":"POINTS","amount":"10"}}`, "rule"},
		{rules.Simple, `{"action":"BUY","reward":{"type":"MONEY","currency":"POINTS","amount":"10"}}`, "rule.reward.type"},
		{rules.Simple, `{"action":"BUY","reward":{"type":"POINTS","currency":"POINTS","amount":10}}`, "rule.reward.amount"},
		{rules.Simple, `{"action":"BUY","reward":{"type":"POINTS","currency":"POINTS","amount":"1.23456"}}`, "rule.reward.amount"},
		{rules.Simple, `{"action":"BUY","reward":{"type":"POINTS","currency":"POINTS","amount":"1","percent":"2","percentOf":"amount"}}`, "rule.reward.percent"},
		{rules.Quest, `{"steps":[],"reward":{"type":"POINTS","currency":"POINTS","amount":"10"}}`, "rule.steps"},
		{rules.Quest, `{"steps":[{"action":"LOGIN","count":0}],"reward":{"type":"POINTS","currency":"POINTS","amount":"10"}}`, "rule.steps[0].count"},
		{rules.Quest, `{"steps":[{"action":"LOGIN"}],"windowDays":400,"reward":{"type":"POINTS","currency":"POINTS","amount":"10"}}`, "rule.windowDays"},
		{rules.Quest, `{"steps":[{"action":"LOGIN"}],"reward":{"type":"CASHBACK","currency":"INR","percent":"5","percentOf":"amount"}}`, "rule.reward"},
	}
	for _, b := range bad {
		if _, err := rules.Parse(b.kind, []byte(b.doc)); err == nil {
			t.Errorf("Parse accepts %s, which the schema refuses", b.doc)
		}
		v := s.ValidateRule(b.kind, []byte(b.doc))
		found := false
		for _, x := range v {
			found = found || x.Field == b.field
		}
		if !found {
			t.Errorf("ValidateRule(%s) = %v, want a violation at %s", b.doc, v, b.field)
		}
	}
}
