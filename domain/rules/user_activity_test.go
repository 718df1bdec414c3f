package rules_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/incentives-platform/incentives/domain/rules"
)

func TestUserConditionsOverActivity(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	buyer := rules.UserActivity{UserID: "u-1", Total: 5,
		Counts:    map[string]int64{"PURCHASE": 3, "LOGIN": 2},
		Amounts:   map[string]float64{"PURCHASE": 1250.5},
		FirstSeen: t0, LastSeen: t0.Add(72 * time.Hour)}
	known := []string{"LOGIN", "PURCHASE", "REFERRAL"}
	tests := []struct {
		rule    string
		want    bool
		failing bool
	}{
		{"user.counts['PURCHASE'] >= 3", true, false},
		{"user.counts['PURCHASE'] >= 3 && user.amounts['PURCHASE'] >= 1000.0", true, false},
		{"user.amounts['PURCHASE'] > 2000.0", false, false},
		{"user.total == 5 && user.userId == 'u-1'", true, false},
		// Known codes the user never did read as zero rather than failing.
		{"user.counts['REFERRAL'] == 0 && user.amounts['LOGIN'] == 0.0", true, false},
		{"user.lastSeen - user.firstSeen >= duration('72h')", true, false},
		{"user.lastSeen > timestamp('2026-11-02T00:00:00Z')", true, false},
		// An unknown code is a missing key: the user does not match, and why is reported.
		{"user.counts['GIFT'] > 0", false, true},
	}
	for _, tt := range tests {
		c, err := rules.CompileUserCondition("rule", tt.rule)
		if err != nil {
			t.Fatalf("CompileUserCondition(%q): %v", tt.rule, err)
		}
		got, err := c.Matches(buyer.Vars(known))
		if got != tt.want || (err != nil) != tt.failing || (err != nil && !errors.Is(err, rules.ErrConditionFailed)) {
			t.Errorf("%q over %+v = %v, %v; want %v (failing %v)", tt.rule, buyer, got, err, tt.want, tt.failing)
		}
	}
}

func TestUserConditionErrorsSayWhere(t *testing.T) {
	_, err := rules.CompileUserCondition("rule", "user.counts['PURCHASE'] >=")
	if msg := violations(t, err)["rule"]; msg == "" || !strings.Contains(msg, "line 1, column") {
		t.Fatalf("violation %q does not say where", msg)
	}
}
