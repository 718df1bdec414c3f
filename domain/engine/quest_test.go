package engine_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/incentives-platform/incentives/domain/campaign"
	"github.com/incentives-platform/incentives/domain/engine"
	"github.com/incentives-platform/incentives/domain/rules"
)

const points500 = `"reward":{"type":"POINTS","currency":"POINTS","amount":"500"}`

// step is one event of a quest test and what it must decide.
type step struct {
	action  string
	offset  time.Duration // from t0
	payload string
	want    engine.Outcome
	reason  string // part of Reason
}

func TestEvaluateQuest(t *testing.T) {
	tests := []struct {
		name  string
		rule  string
		start *engine.QuestProgress // stored progress before the first event
		steps []step
		// The progress after the last event that changed it.
		wantCounts    []int
		wantWindow    time.Duration // WindowStart - t0; -1 for zero
		wantCompleted time.Duration // Completed - t0; -1 for zero
	}{
		{
			name: "the design example, unordered, then rewards once",
			rule: `{"steps":[{"action":"LOGIN","count":3},{"action":"PURCHASE","condition":"event.payload.amount > 0"}],"ordered":false,"windowDays":7,` + points500 + `}`,
			steps: []step{
				{action: "LOGIN", offset: 0, want: engine.OutcomeProgressed},
				{action: "PURCHASE", offset: 1 * time.Hour, payload: `{"amount": 10}`, want: engine.OutcomeProgressed},
				{action: "LOGIN", offset: 2 * time.Hour, want: engine.OutcomeProgressed},
				{action: "PURCHASE", offset: 3 * time.Hour, payload: `{"amount": 10}`, want: engine.OutcomeNotCounted, reason: "rule.steps[1] (PURCHASE) is done: 1 of 1"},
				{action: "LOGIN", offset: 4 * time.Hour, want: engine.OutcomeIssued},
				{action: "LOGIN", offset: 5 * time.Hour, want: engine.OutcomeAlreadyCompleted, reason: "quest completed at 2026-11-25T14:00:00Z"},
				{action: "PURCHASE", offset: 9 * day, payload: `{"amount": 10}`, want: engine.OutcomeAlreadyCompleted},
			},
			wantCounts: []int{3, 1}, wantWindow: 0, wantCompleted: 4 * time.Hour,
		},
		{
			name: "a step of count 3",
			rule: `{"steps":[{"action":"LOGIN","count":3}],` + points500 + `}`,
			steps: []step{
				{action: "LOGIN", offset: 0, want: engine.OutcomeProgressed},
				{action: "LOGIN", offset: time.Minute, want: engine.OutcomeProgressed},
				{action: "LOGIN", offset: 2 * time.Minute, want: engine.OutcomeIssued},
			},
			wantCounts: []int{3}, wantWindow: 0, wantCompleted: 2 * time.Minute,
		},
		{
			name: "unordered counts toward the first step whose condition holds",
			rule: `{"steps":[{"action":"PURCHASE","condition":"event.payload.amount >= 100"},{"action":"PURCHASE","count":2}],` + points500 + `}`,
			steps: []step{
				{action: "PURCHASE", offset: 0, payload: `{"amount": 50}`, want: engine.OutcomeProgressed},  // step 0 false: step 1
				{action: "PURCHASE", offset: 1, payload: `{"amount": 150}`, want: engine.OutcomeProgressed}, // step 0
				{action: "PURCHASE", offset: 2, payload: `{"amount": 150}`, want: engine.OutcomeIssued},     // step 0 full: step 1
				{action: "PURCHASE", offset: 3, payload: `{"amount": 150}`, want: engine.OutcomeAlreadyCompleted},
			},
			wantCounts: []int{1, 2}, wantWindow: 0, wantCompleted: 2,
		},
		{
			name: "unordered: a full step does not count again",
			rule: `{"steps":[{"action":"LOGIN"},{"action":"PURCHASE"}],` + points500 + `}`,
			steps: []step{
				{action: "LOGIN", offset: 0, want: engine.OutcomeProgressed},
				{action: "LOGIN", offset: 1, want: engine.OutcomeNotCounted, reason: "rule.steps[0] (LOGIN) is done: 1 of 1"},
			},
			wantCounts: []int{1, 0}, wantWindow: 0, wantCompleted: -1,
		},
		{
			name: "ordered: out of order does not count",
			rule: `{"steps":[{"action":"LOGIN"},{"action":"PURCHASE"}],"ordered":true,` + points500 + `}`,
			steps: []step{
				{action: "PURCHASE", offset: 0, want: engine.OutcomeNotCounted, reason: "ordered and rule.steps[0] (LOGIN) comes first"},
				{action: "LOGIN", offset: 1, want: engine.OutcomeProgressed},
				{action: "PURCHASE", offset: 2, want: engine.OutcomeIssued},
			},
			wantCounts: []int{1, 1}, wantWindow: 1, wantCompleted: 2,
		},
		{
			name: "ordered: an action in two steps counts toward the next unfinished one only",
			rule: `{"steps":[{"action":"LOGIN","count":2},{"action":"PURCHASE"},{"action":"LOGIN"}],"ordered":true,` + points500 + `}`,
			steps: []step{
				{action: "LOGIN", offset: 0, want: engine.OutcomeProgressed},
				{action: "LOGIN", offset: 1, want: engine.OutcomeProgressed},
				{action: "LOGIN", offset: 2, want: engine.OutcomeNotCounted, reason: "rule.steps[0] (LOGIN) is done"},
				{action: "PURCHASE", offset: 3, want: engine.OutcomeProgressed},
				{action: "LOGIN", offset: 4, want: engine.OutcomeIssued},
			},
			wantCounts: []int{2, 1, 1}, wantWindow: 0, wantCompleted: 4,
		},
		{
			name: "ordered: the next step's condition false",
			rule: `{"steps":[{"action":"PURCHASE","condition":"event.payload.amount >= 100"},{"action":"LOGIN"}],"ordered":true,` + points500 + `}`,
			steps: []step{
				{action: "PURCHASE", offset: 0, payload: `{"amount": 50}`, want: engine.OutcomeConditionFalse},
				{action: "LOGIN", offset: 1, want: engine.OutcomeNotCounted, reason: "rule.steps[0] (PURCHASE) comes first"},
				{action: "PURCHASE", offset: 2, payload: `{"amount": 150}`, want: engine.OutcomeProgressed},
				{action: "LOGIN", offset: 3, want: engine.OutcomeIssued},
			},
			wantCounts: []int{1, 1}, wantWindow: 2, wantCompleted: 3,
		},
		{
			name: "ordered: a later step of the action whose condition holds",
			rule: `{"steps":[{"action":"PURCHASE","condition":"event.payload.amount >= 100"},{"action":"PURCHASE"}],"ordered":true,` + points500 + `}`,
			steps: []step{
				{action: "PURCHASE", offset: 0, payload: `{"amount": 50}`, want: engine.OutcomeNotCounted, reason: "rule.steps[0] (PURCHASE) comes first"},
				{action: "PURCHASE", offset: 1, payload: `{"amount": 150}`, want: engine.OutcomeProgressed},
				{action: "PURCHASE", offset: 2, payload: `{"amount": 50}`, want: engine.OutcomeIssued},
			},
			wantCounts: []int{1, 1}, wantWindow: 1, wantCompleted: 2,
		},
		{
			name: "a step's condition that cannot be evaluated",
			rule: `{"steps":[{"action":"PURCHASE","condition":"event.payload.amount >= 100"},{"action":"LOGIN"}],` + points500 + `}`,
			steps: []step{
				{action: "PURCHASE", offset: 0, payload: `{"channel": "app"}`, want: engine.OutcomeConditionFailed, reason: "no such key: amount"},
				{action: "PURCHASE", offset: 1, want: engine.OutcomeConditionFailed, reason: "no such key: amount"},
			},
			wantCounts: nil,
		},
		{
			name: "an action the quest does not have",
			rule: `{"steps":[{"action":"LOGIN"}],` + points500 + `}`,
			steps: []step{
				{action: "PURCHASE", offset: 0, want: engine.OutcomeConditionFalse, reason: "no step of the quest is PURCHASE"},
			},
			wantCounts: nil,
		},
		{
			name: "the window restarts with the first event after it",
			rule: `{"steps":[{"action":"LOGIN","count":2},{"action":"PURCHASE"}],"windowDays":7,` + points500 + `}`,
			steps: []step{
				{action: "LOGIN", offset: 0, want: engine.OutcomeProgressed},
				{action: "LOGIN", offset: 6 * day, want: engine.OutcomeProgressed},
				{action: "PURCHASE", offset: 7 * day, want: engine.OutcomeProgressed}, // restart: [0,1]
				{action: "LOGIN", offset: 8 * day, want: engine.OutcomeProgressed},
				{action: "LOGIN", offset: 14*day - time.Millisecond, want: engine.OutcomeIssued},
			},
			wantCounts: []int{2, 1}, wantWindow: 7 * day, wantCompleted: 14*day - time.Millisecond,
		},
		{
			name: "the last millisecond of the window still counts",
			rule: `{"steps":[{"action":"LOGIN"},{"action":"PURCHASE"}],"windowDays":1,` + points500 + `}`,
			steps: []step{
				{action: "LOGIN", offset: 0, want: engine.OutcomeProgressed},
				{action: "PURCHASE", offset: day - time.Millisecond, want: engine.OutcomeIssued},
			},
			wantCounts: []int{1, 1}, wantWindow: 0, wantCompleted: day - time.Millisecond,
		},
		{
			name: "an expired window is cleared even by an event that counts nothing",
			rule: `{"steps":[{"action":"LOGIN"},{"action":"PURCHASE","condition":"event.payload.amount >= 100"}],"windowDays":1,` + points500 + `}`,
			steps: []step{
				{action: "LOGIN", offset: 0, want: engine.OutcomeProgressed},
				{action: "PURCHASE", offset: 2 * day, payload: `{"amount": 5}`, want: engine.OutcomeConditionFalse},
			},
			wantCounts: []int{0, 0}, wantWindow: -1, wantCompleted: -1,
		},
		{
			name: "without windowDays progress never expires",
			rule: `{"steps":[{"action":"LOGIN"},{"action":"PURCHASE"}],` + points500 + `}`,
			steps: []step{
				{action: "LOGIN", offset: 0, want: engine.OutcomeProgressed},
				{action: "PURCHASE", offset: 400 * day, want: engine.OutcomeIssued},
			},
			wantCounts: []int{1, 1}, wantWindow: 0, wantCompleted: 400 * day,
		},
		{
			name:  "a completed quest never rewards again, even after its window",
			rule:  `{"steps":[{"action":"LOGIN"}],"windowDays":1,` + points500 + `}`,
			start: &engine.QuestProgress{Counts: []int{1}, WindowStart: t0, Completed: t0},
			steps: []step{
				{action: "LOGIN", offset: 30 * day, want: engine.OutcomeAlreadyCompleted},
			},
			wantCounts: []int{1}, wantWindow: 0, wantCompleted: 0,
		},
		{
			name:  "a completion the limits refused is retried by the next event",
			rule:  `{"steps":[{"action":"LOGIN","count":3},{"action":"PURCHASE","condition":"event.payload.amount >= 100"}],"windowDays":7,` + points500 + `}`,
			start: &engine.QuestProgress{Counts: []int{3, 1}, WindowStart: t0}, // CompleteRefused
			steps: []step{
				{action: "PURCHASE", offset: day, payload: `{"amount": 1}`, want: engine.OutcomeIssued},
			},
			wantCounts: []int{3, 1}, wantWindow: 0, wantCompleted: day,
		},
		{
			name:  "a refused completion is lost once the window passes",
			rule:  `{"steps":[{"action":"LOGIN"},{"action":"PURCHASE"}],"windowDays":1,` + points500 + `}`,
			start: &engine.QuestProgress{Counts: []int{1, 1}, WindowStart: t0},
			steps: []step{
				{action: "LOGIN", offset: day, want: engine.OutcomeProgressed},
			},
			wantCounts: []int{1, 0}, wantWindow: day, wantCompleted: -1,
		},
		{
			name:  "progress of other steps (the rule was edited) starts over",
			rule:  `{"steps":[{"action":"LOGIN"},{"action":"PURCHASE"}],` + points500 + `}`,
			start: &engine.QuestProgress{Counts: []int{5}, WindowStart: t0.Add(-day)},
			steps: []step{
				{action: "PURCHASE", offset: 0, want: engine.OutcomeProgressed},
			},
			wantCounts: []int{0, 1}, wantWindow: 0, wantCompleted: -1,
		},
		{
			name: "a late event counts in the current window",
			rule: `{"steps":[{"action":"LOGIN"},{"action":"PURCHASE"}],"windowDays":1,` + points500 + `}`,
			steps: []step{
				{action: "LOGIN", offset: 0, want: engine.OutcomeProgressed},
				{action: "PURCHASE", offset: -2 * day, want: engine.OutcomeIssued},
			},
			wantCounts: []int{1, 1}, wantWindow: 0, wantCompleted: -2 * day,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCampaign(t, rules.Quest, tt.rule)
			progress := tt.start
			if progress != nil {
				progress.CampaignID, progress.UserID = campaignID, "u1"
			}
			for i, s := range tt.steps {
				e := newEvent(t, s.action, s.offset, s.payload)
				d, next := engine.Evaluate(e, c, false, progress)
				if d.Outcome != s.want || !strings.Contains(d.Reason, s.reason) {
					t.Fatalf("event %d (%s at +%s %s) = %s (%s), want %s (%s)", i, s.action, s.offset, s.payload, d.Outcome, d.Reason, s.want, s.reason)
				}
				switch {
				case d.Outcome == engine.OutcomeIssued:
					want := engine.Reward{Type: rules.RewardPoints, Currency: "POINTS", Amount: decimal.NewFromInt(500)}
					if d.Reward == nil || !reflect.DeepEqual(*d.Reward, want) {
						t.Errorf("event %d: reward %+v, want %+v", i, d.Reward, want)
					}
					if next == nil || !next.Completed.Equal(e.EventTs) {
						t.Errorf("event %d: an issued quest's progress %+v, want it completed at %s", i, next, e.EventTs)
					}
				case d.Reward != nil:
					t.Errorf("event %d: %s with reward %+v", i, d.Outcome, d.Reward)
				}
				if (d.Outcome == engine.OutcomeProgressed) != (next != nil && d.Inputs["countedStep"] != nil && next.Completed.IsZero()) {
					t.Errorf("event %d: %s with progress %+v and inputs %v", i, d.Outcome, next, d.Inputs)
				}
				if next != nil {
					if next.CampaignID != campaignID || next.UserID != "u1" {
						t.Errorf("event %d: progress of %s/%s", i, next.CampaignID, next.UserID)
					}
					progress = next
				}
			}
			if tt.wantCounts == nil {
				if progress != tt.start {
					t.Errorf("progress = %+v, want none", progress)
				}
				return
			}
			if progress == nil {
				t.Fatalf("no progress, want counts %v", tt.wantCounts)
			}
			if !slices.Equal(progress.Counts, tt.wantCounts) {
				t.Errorf("counts = %v, want %v", progress.Counts, tt.wantCounts)
			}
			if got := offsetOf(progress.WindowStart); got != tt.wantWindow {
				t.Errorf("window start at %s, want %s", got, tt.wantWindow)
			}
			if got := offsetOf(progress.Completed); got != tt.wantCompleted {
				t.Errorf("completed at %s, want %s", got, tt.wantCompleted)
			}
		})
	}
}

// offsetOf is t - t0, or -1 for the zero time.
func offsetOf(t time.Time) time.Duration {
	if t.IsZero() {
		return -1
	}
	return t.Sub(t0)
}

// A quest decision records the counts before and after, the step counted and
// the conditions evaluated.
func TestEvaluateQuestRecordsInputs(t *testing.T) {
	c := newCampaign(t, rules.Quest, `{"steps":[{"action":"PURCHASE","condition":"event.payload.amount >= 100"},{"action":"PURCHASE","count":2}],"windowDays":3,`+points500+`}`)
	stored := &engine.QuestProgress{CampaignID: campaignID, UserID: "u1", Counts: []int{0, 1}, WindowStart: t0}
	e := newEvent(t, "PURCHASE", day, `{"amount": 50}`)
	d, next := engine.Evaluate(e, c, false, stored)
	want := map[string]any{
		"countsBefore": []int{0, 1},
		"countsAfter":  []int{0, 2},
		"countedStep":  1,
		"windowStart":  t0,
		"payload":      e.Payload,
		"conditions":   []any{map[string]any{"step": 0, "condition": "event.payload.amount >= 100", "result": false}},
	}
	if d.Outcome != engine.OutcomeProgressed || !reflect.DeepEqual(d.Inputs, want) {
		t.Errorf("decision %s, Inputs = %#v\nwant %#v", d.Outcome, d.Inputs, want)
	}
	if next == nil || !slices.Equal(next.Counts, []int{0, 2}) {
		t.Errorf("progress %+v", next)
	}

	e = newEvent(t, "PURCHASE", 5*day, `{}`)
	d, _ = engine.Evaluate(e, c, false, stored)
	if d.Outcome != engine.OutcomeProgressed || d.Inputs["windowRestarted"] != true || d.Inputs["windowStart"] != e.EventTs {
		t.Errorf("after the window: %s, Inputs = %v", d.Outcome, d.Inputs)
	}
	cond := d.Inputs["conditions"].([]any)[0].(map[string]any)
	if !strings.Contains(cond["error"].(string), "no such key: amount") {
		t.Errorf("a failed step condition is recorded as %v", cond)
	}
}

// Evaluate never changes its arguments: the caller's progress is the locked
// row's, and the payload is shared by every campaign the event meets.
func TestEvaluateDoesNotMutateItsInputs(t *testing.T) {
	c := newCampaign(t, rules.Quest, `{"steps":[{"action":"LOGIN","count":2},{"action":"PURCHASE","condition":"event.payload.amount >= 100"}],"windowDays":7,`+points500+`}`)
	for _, tc := range []struct {
		name   string
		stored engine.QuestProgress
		offset time.Duration
		action string
	}{
		{"counts", engine.QuestProgress{Counts: []int{1, 0}, WindowStart: t0}, time.Hour, "LOGIN"},
		{"completes", engine.QuestProgress{Counts: []int{2, 0}, WindowStart: t0}, time.Hour, "PURCHASE"},
		{"window restart", engine.QuestProgress{Counts: []int{2, 0}, WindowStart: t0}, 8 * day, "LOGIN"},
		{"retried completion", engine.QuestProgress{Counts: []int{2, 1}, WindowStart: t0}, time.Hour, "LOGIN"},
		{"steps changed", engine.QuestProgress{Counts: []int{1}, WindowStart: t0}, time.Hour, "LOGIN"},
	} {
		stored := tc.stored
		stored.CampaignID, stored.UserID = campaignID, "u1"
		snapshot := stored
		snapshot.Counts = slices.Clone(stored.Counts)
		e := newEvent(t, tc.action, tc.offset, `{"amount": 150, "tags": ["a"]}`)
		payload := decodePayload(t, `{"amount": 150, "tags": ["a"]}`)
		_, next := engine.Evaluate(e, c, false, &stored)
		if !reflect.DeepEqual(stored, snapshot) {
			t.Errorf("%s: progress changed to %+v, was %+v", tc.name, stored, snapshot)
		}
		if !reflect.DeepEqual(e.Payload, payload) {
			t.Errorf("%s: payload changed to %v", tc.name, e.Payload)
		}
		if next == nil || next == &stored {
			t.Fatalf("%s: progress %p, want a new one", tc.name, next)
		}
		next.Counts[0] = 99
		if stored.Counts[0] == 99 {
			t.Errorf("%s: the new progress shares its counts with the argument", tc.name)
		}
	}
}

// The caller clears a completion the limits refused; the counts stay full.
func TestCompleteRefused(t *testing.T) {
	c := newCampaign(t, rules.Quest, `{"steps":[{"action":"LOGIN"}],`+points500+`}`)
	d, completed := engine.Evaluate(newEvent(t, "LOGIN", 0, ""), c, false, nil)
	if d.Outcome != engine.OutcomeIssued || completed == nil {
		t.Fatalf("first login = %s, %+v", d.Outcome, completed)
	}
	refused := engine.CompleteRefused(*completed)
	if !refused.Completed.IsZero() || !slices.Equal(refused.Counts, []int{1}) || !refused.WindowStart.Equal(t0) {
		t.Errorf("CompleteRefused = %+v", refused)
	}
	if completed.Completed.IsZero() {
		t.Error("CompleteRefused changed its argument")
	}
	refused.Counts[0] = 7
	if completed.Counts[0] != 1 {
		t.Error("CompleteRefused shares the counts")
	}
	refused.Counts[0] = 1
	retry, after := engine.Evaluate(newEvent(t, "LOGIN", time.Minute, ""), c, false, &refused)
	if retry.Outcome != engine.OutcomeIssued || retry.ID == d.ID || after == nil || !after.Completed.Equal(t0.Add(time.Minute)) {
		t.Errorf("retry = %s (id %s, first %s), progress %+v", retry.Outcome, retry.ID, d.ID, after)
	}
}

// Outside its dates or cohort, a quest neither counts nor changes progress.
func TestQuestOutsideItsCampaign(t *testing.T) {
	stored := &engine.QuestProgress{CampaignID: campaignID, UserID: "u1", Counts: []int{0, 0}}
	for name, change := range map[string]func(*engine.Campaign){
		"paused":    func(c *engine.Campaign) { c.Status = campaign.StatusPaused },
		"ended":     func(c *engine.Campaign) { c.EndAt = t0 },
		"no cohort": func(c *engine.Campaign) { c.CohortID = uuid.New() },
	} {
		c := newCampaign(t, rules.Quest, `{"steps":[{"action":"LOGIN"},{"action":"PURCHASE"}],`+points500+`}`)
		change(&c)
		d, next := engine.Evaluate(newEvent(t, "LOGIN", 0, ""), c, false, stored)
		if d.Outcome != engine.OutcomeNotActive && d.Outcome != engine.OutcomeNotInCohort || next != nil {
			t.Errorf("%s: %s, progress %+v", name, d.Outcome, next)
		}
	}
}
