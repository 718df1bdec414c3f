package engine

import (
	"fmt"
	"slices"
	"time"

	"github.com/incentives-platform/incentives/domain/rules"
)

// quest decides a QUEST campaign's answer to the event and returns the new
// progress, or nil if it did not change. The rules, in order:
//
//   - ALREADY_COMPLETED: the user completed the quest before; it rewards once,
//     whatever the window.
//   - The stored counts no longer fit the rule (its steps were edited while
//     the user was in progress): they restart from zero ("stepsChanged").
//   - windowDays > 0 and the event is at or after WindowStart + windowDays
//     (whole days of 24 hours): the counts restart from zero, and the window
//     from the next counted event, this one if it counts ("windowRestarted").
//   - CONDITION_FALSE: no step has the event's action.
//   - Every step already full but the quest not completed: an earlier
//     completion was refused by the limits (CompleteRefused) and this event,
//     of any step's action, retries it ("completionRetried"): ISSUED.
//   - The event counts toward one step: in an unordered quest, the first in
//     list order whose action matches, whose condition holds and whose count
//     is not reached; in an ordered quest, only the first unfinished step
//     (if its action matches and its condition holds). Then ISSUED (the
//     progress records Completed = the event's time) when every step is
//     full, else PROGRESSED.
//   - Otherwise NOT_COUNTED when some step of the action had its condition
//     hold (it was full, or out of order); CONDITION_FAILED (Reason: the
//     first error) when some condition could not be evaluated; else
//     CONDITION_FALSE.
//
// An event earlier than WindowStart (late delivery) counts in the current
// window and leaves WindowStart as it is.
func (ev *evaluation) quest(d *Decision, c Campaign, stored *QuestProgress) *QuestProgress {
	r := c.Rule
	if stored != nil && !stored.Completed.IsZero() {
		d.Outcome, d.Reason = OutcomeAlreadyCompleted, "quest completed at "+stamp(stored.Completed)
		return nil
	}
	q := questEval{ev: ev, d: d, r: r, in: map[string]any{},
		p: QuestProgress{CampaignID: c.ID, UserID: ev.e.UserID, Counts: make([]int, len(r.Steps))}}
	d.Inputs = q.in
	changed := false
	if stored != nil {
		q.in["countsBefore"] = slices.Clone(stored.Counts)
		if len(stored.Counts) == len(r.Steps) {
			copy(q.p.Counts, stored.Counts)
			q.p.WindowStart = stored.WindowStart
		} else {
			q.in["stepsChanged"], changed = true, true
		}
	} else {
		q.in["countsBefore"] = make([]int, len(r.Steps))
	}
	if r.WindowDays > 0 && !q.p.WindowStart.IsZero() &&
		!ev.e.EventTs.Before(q.p.WindowStart.Add(time.Duration(r.WindowDays)*24*time.Hour)) {
		clear(q.p.Counts)
		q.p.WindowStart = time.Time{}
		q.in["windowRestarted"], changed = true, true
	}
	if q.decide() {
		changed = true
	}
	q.in["countsAfter"] = slices.Clone(q.p.Counts)
	if !q.p.WindowStart.IsZero() {
		q.in["windowStart"] = q.p.WindowStart
	}
	if q.conditions != nil {
		q.in["conditions"] = q.conditions
	}
	if !changed {
		return nil
	}
	return &q.p
}

// questEval is one event's evaluation against one quest, on a private copy
// of the progress.
type questEval struct {
	ev *evaluation
	d  *Decision
	r  rules.Rule
	p  QuestProgress
	in map[string]any
	// conditions are the step conditions evaluated, for Inputs.
	conditions []any
	firstErr   error
}

// decide sets the decision's outcome and reports whether it changed q.p.
func (q *questEval) decide() bool {
	action, steps := q.ev.e.ActionCode, q.r.Steps
	if !slices.ContainsFunc(steps, func(s rules.Step) bool { return s.Action == action }) {
		q.d.Outcome, q.d.Reason = OutcomeConditionFalse, "no step of the quest is "+action
		return false
	}
	if allFull(q.p.Counts, steps) {
		q.in["completionRetried"] = true
		return q.complete()
	}
	next := 0 // the first unfinished step; one exists, as not all are full
	for next < len(steps) && q.p.Counts[next] >= steps[next].Count {
		next++
	}
	eligible := func(i int) bool { return q.p.Counts[i] < steps[i].Count && (!q.r.Ordered || i == next) }

	for i, s := range steps {
		if s.Action != action || !eligible(i) || !q.holds(i) {
			continue
		}
		q.p.Counts[i]++
		if q.p.WindowStart.IsZero() {
			q.p.WindowStart = q.ev.e.EventTs
		}
		q.in["countedStep"] = i
		if !allFull(q.p.Counts, steps) {
			q.d.Outcome = OutcomeProgressed
			return true
		}
		q.complete()
		return true
	}

	// Nothing counted; the steps it could not count toward say why.
	for i, s := range steps {
		if s.Action != action || eligible(i) || !q.holds(i) {
			continue
		}
		q.d.Outcome = OutcomeNotCounted
		if q.p.Counts[i] >= s.Count {
			q.d.Reason = fmt.Sprintf("rule.steps[%d] (%s) is done: %d of %d", i, s.Action, q.p.Counts[i], s.Count)
		} else {
			q.d.Reason = fmt.Sprintf("the quest is ordered and rule.steps[%d] (%s) comes first", next, steps[next].Action)
		}
		return false
	}
	if q.firstErr != nil {
		q.d.Outcome, q.d.Reason = OutcomeConditionFailed, q.firstErr.Error()
	} else {
		q.d.Outcome = OutcomeConditionFalse
	}
	return false
}

// complete issues the quest's reward and marks the progress completed; it
// reports whether it did.
func (q *questEval) complete() bool {
	if !q.ev.reward(q.d, q.r.Reward) {
		return false
	}
	q.p.Completed = q.ev.e.EventTs
	return true
}

// holds evaluates step i's condition and records the result in Inputs.
func (q *questEval) holds(i int) bool {
	cond := q.r.Steps[i].Condition
	if cond.IsZero() {
		return true
	}
	ok, err := q.ev.matches(cond)
	q.in["payload"] = q.ev.e.Payload
	res := map[string]any{"step": i, "condition": cond.Source()}
	if err != nil {
		res["error"] = err.Error()
		if q.firstErr == nil {
			q.firstErr = err
		}
	} else {
		res["result"] = ok
	}
	q.conditions = append(q.conditions, res)
	return ok
}

func allFull(counts []int, steps []rules.Step) bool {
	for i, s := range steps {
		if counts[i] < s.Count {
			return false
		}
	}
	return true
}

// CompleteRefused returns p with its completion undone, for the caller to
// save when the limits refused the reward of the decision that completed the
// quest: the counts stay full, so the user's next event of the quest's
// actions retries the completion, as a new decision. p is not modified.
func CompleteRefused(p QuestProgress) QuestProgress {
	p.Counts = slices.Clone(p.Counts)
	p.Completed = time.Time{}
	return p
}
