package engine

import (
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/domain/campaign"
	"github.com/incentives-platform/incentives/domain/rules"
)

// Evaluate decides what campaign c makes of event e for e's user, before
// limits: the caller asks the limits about every ISSUED decision and turns
// the refused ones into LIMITED (and, for a quest, saves
// CompleteRefused(progress) instead of the returned progress).
//
// inCohort says whether the user is in c's cohort; it is ignored when c has
// none. progress is the user's quest progress in c, nil if there is none yet
// or c is SIMPLE; it is never modified.
//
// It returns the decision and, for a QUEST campaign whose progress changed,
// the new progress to save; nil when c is SIMPLE or nothing changed.
//
// Evaluate builds the event's CEL variables if a condition needs them; a
// caller evaluating one event against several campaigns builds them once
// with EventVars and calls EvaluateVars.
func Evaluate(e ActionEvent, c Campaign, inCohort bool, progress *QuestProgress) (Decision, *QuestProgress) {
	return EvaluateVars(e, nil, c, inCohort, progress)
}

// EvaluateVars is Evaluate with the event's CEL variables built beforehand:
// vars must be EventVars(e), or nil to have them built when a condition
// needs them.
//
// # What a decision decides
//
// In this order, the first rule that applies decides:
//
//  1. NOT_ACTIVE: c is not ACTIVE, or e.EventTs is outside [StartAt, EndAt)
//     (a zero bound is open).
//  2. NOT_IN_COHORT: c has a cohort and the user is not in it.
//  3. CONDITION_FALSE: c belongs to another tenant than e (the caller should
//     not have asked).
//  4. SIMPLE: CONDITION_FALSE when e's action is not the rule's (nor should
//     this be asked); CONDITION_FAILED (Reason is the error) when the
//     condition cannot be evaluated, CONDITION_FALSE when it does not
//     hold; then NO_AMOUNT when a percentage reward finds no positive
//     amount at its payload field (rules.Reward.AmountFor); else ISSUED
//     with the amount.
//  5. QUEST: see quest.go.
//
// # Inputs
//
// Decision.Inputs holds what the decision read, for a person asking why. Its
// keys (absent when they do not apply):
//
//   - "condition": the SIMPLE rule's condition, when it has one, and
//     "payload": the whole payload it was evaluated on, as received (numbers
//     as json.Number). The whole payload rather than the fields used: CEL may
//     read any field, and the payload is what the event log holds too.
//   - "percent", "percentOf", "maxAmount" and "base": a percentage reward's
//     terms and the payload value it was a percentage of (as received;
//     absent when the field is missing).
//   - quests: "countsBefore" and "countsAfter" (per step), "countedStep"
//     (index into rule.steps), "windowStart" (after the event),
//     "windowRestarted", "stepsChanged", "completionRetried", and
//     "conditions": the step conditions evaluated, each a map with "step",
//     "condition" and "result" (true or false) or "error"; "payload" as
//     above when there is any.
//
// Values are strings, numbers, booleans, []int, time.Time and maps of them,
// so any JSON encoder stores them.
func EvaluateVars(e ActionEvent, vars map[string]any, c Campaign, inCohort bool, progress *QuestProgress) (Decision, *QuestProgress) {
	d := Decision{
		ID:            DecisionID(c.ID, e.UserID, e.EventID),
		TenantID:      e.TenantID,
		UserID:        e.UserID,
		CampaignID:    c.ID,
		CampaignVer:   c.Version,
		SourceEventID: e.EventID,
		DecidedAt:     e.EventTs,
	}
	if reason, active := activeAt(c, e.EventTs); !active {
		d.Outcome, d.Reason = OutcomeNotActive, reason
		return d, nil
	}
	if c.CohortID != uuid.Nil && !inCohort {
		d.Outcome, d.Reason = OutcomeNotInCohort, "user is not in cohort "+c.CohortID.String()
		return d, nil
	}
	if c.TenantID != e.TenantID {
		d.Outcome, d.Reason = OutcomeConditionFalse, "campaign belongs to tenant "+c.TenantID.String()+", not the event's"
		return d, nil
	}
	ev := evaluation{e: e, vars: vars}
	if c.Rule.Kind == rules.Quest {
		return d, ev.quest(&d, c, progress)
	}
	ev.simple(&d, c.Rule)
	return d, nil
}

// activeAt reports whether c rewards events at t, and if not, why.
func activeAt(c Campaign, t time.Time) (string, bool) {
	switch {
	case c.Status != campaign.StatusActive:
		return "campaign is " + string(c.Status), false
	case !c.StartAt.IsZero() && t.Before(c.StartAt):
		return "event at " + stamp(t) + " is before the campaign's startAt " + stamp(c.StartAt), false
	case !c.EndAt.IsZero() && !t.Before(c.EndAt):
		return "event at " + stamp(t) + " is at or after the campaign's endAt " + stamp(c.EndAt), false
	}
	return "", true
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// evaluation is one event's evaluation against one campaign.
type evaluation struct {
	e    ActionEvent
	vars map[string]any
}

// matches evaluates cond on the event, building its variables on first need.
func (ev *evaluation) matches(cond rules.Condition) (bool, error) {
	if cond.IsZero() {
		return true, nil
	}
	if ev.vars == nil {
		ev.vars = EventVars(ev.e)
	}
	return cond.Matches(ev.vars)
}

func (ev *evaluation) simple(d *Decision, r rules.Rule) {
	if r.Action != ev.e.ActionCode {
		d.Outcome, d.Reason = OutcomeConditionFalse, "campaign rewards "+r.Action+", not "+ev.e.ActionCode
		return
	}
	if !r.Condition.IsZero() {
		d.Inputs = map[string]any{"condition": r.Condition.Source(), "payload": ev.e.Payload}
		ok, err := ev.matches(r.Condition)
		switch {
		case err != nil:
			d.Outcome, d.Reason = OutcomeConditionFailed, err.Error()
			return
		case !ok:
			d.Outcome = OutcomeConditionFalse
			return
		}
	}
	ev.reward(d, r.Reward)
}

// reward sets d to ISSUED with what r pays for the event, or to NO_AMOUNT;
// it reports whether it issued.
func (ev *evaluation) reward(d *Decision, r rules.Reward) bool {
	amount, ok := r.AmountFor(ev.e.Payload)
	if r.IsPercentage() {
		if d.Inputs == nil {
			d.Inputs = map[string]any{}
		}
		d.Inputs["percent"], d.Inputs["percentOf"] = r.Percent.String(), r.PercentOf
		if !r.MaxAmount.IsZero() {
			d.Inputs["maxAmount"] = r.MaxAmount.String()
		}
		if base, found := valueAt(ev.e.Payload, r.PercentOf); found {
			d.Inputs["base"] = base
		}
	}
	if !ok {
		d.Outcome = OutcomeNoAmount
		d.Reason = fmt.Sprintf("%s%% of payload.%s pays nothing: the field is missing, not a number, or too small", r.Percent, r.PercentOf)
		return false
	}
	d.Outcome = OutcomeIssued
	d.Reward = &Reward{Type: r.Type, Currency: r.Currency, Amount: amount}
	return true
}

// valueAt returns the value at a dotted path of a JSON object, as it is.
func valueAt(m map[string]any, path string) (any, bool) {
	var v any = m
	for key := range strings.SplitSeq(path, ".") {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = obj[key]; !ok {
			return nil, false
		}
	}
	return v, true
}

// NewIncentive returns the incentive an ISSUED decision creates, with the
// deterministic id IncentiveID(d.ID), the decision's time and campaign version. It panics if d
// is not ISSUED or has no reward: only a programming error gets there, and
// an incentive of nothing must never be paid.
func NewIncentive(d Decision) Incentive {
	if d.Outcome != OutcomeIssued || d.Reward == nil {
		panic(fmt.Sprintf("engine: NewIncentive of decision %s, which is %s", d.ID, d.Outcome))
	}
	return Incentive{
		ID:              IncentiveID(d.ID),
		DecisionID:      d.ID,
		TenantID:        d.TenantID,
		CampaignID:      d.CampaignID,
		CampaignVersion: d.CampaignVer,
		UserID:          d.UserID,
		SourceEventID:   d.SourceEventID,
		Reward:          *d.Reward,
		IssuedAt:        d.DecidedAt,
	}
}
