package rules

import (
	"time"
)

// UserActivity is what one user did, as a dynamic cohort's rule
// (CompileUserCondition) sees it: the aggregate of the user's recorded
// actions.
type UserActivity struct {
	UserID string
	// Total is the number of recorded actions of every code.
	Total int64
	// Counts holds the number of actions by action code.
	Counts map[string]int64
	// Amounts holds the sum of payload.amount by action code; actions
	// without a numeric amount add nothing.
	Amounts   map[string]float64
	FirstSeen time.Time
	LastSeen  time.Time
}

// Vars returns the variables of a user rule for a. Every code in known that
// the user never did reads as 0 in counts and amounts, so
// `user.counts['REFERRAL'] == 0` is true of a user without referrals instead
// of failing on a missing key; a code in neither a nor known still fails.
func (a UserActivity) Vars(known []string) map[string]any {
	counts := make(map[string]any, len(known)+len(a.Counts))
	amounts := make(map[string]any, len(known)+len(a.Amounts))
	for _, code := range known {
		counts[code], amounts[code] = int64(0), 0.0
	}
	for code, n := range a.Counts {
		counts[code] = n
	}
	for code, sum := range a.Amounts {
		amounts[code] = sum
	}
	return map[string]any{"user": map[string]any{
		"userId":    a.UserID,
		"total":     a.Total,
		"counts":    counts,
		"amounts":   amounts,
		"firstSeen": a.FirstSeen.UTC(),
		"lastSeen":  a.LastSeen.UTC(),
	}}
}
