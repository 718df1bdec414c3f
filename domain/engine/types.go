// Package engine is the incentive engine's decision logic (DESIGN.md §§7-8):
// given one action event and the campaigns that listen to its action, what
// each campaign decides for the event's user. It is pure: no I/O, no clock,
// no id source. The caller (commands/engine) loads the campaigns, the
// users' quest progress and cohort memberships, asks the limits last, and
// stores what was decided.
//
// Every decision has a deterministic id (DecisionID), so a redelivered event
// decides the same ids again and the stores, keyed by them, keep one copy.
package engine

import (
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/incentives-platform/incentives/domain/campaign"
	"github.com/incentives-platform/incentives/domain/rules"
)

// ActionEvent is one user action from tenant-events.
type ActionEvent struct {
	EventID    uuid.UUID
	TenantID   uuid.UUID
	UserID     string
	ActionCode string
	EventTs    time.Time
	// Payload is the event's JSON object, decoded with json.Number for numbers.
	Payload map[string]any
	// RawPayload is the JSON text as received, for the action-event log.
	RawPayload []byte
}

// Campaign is what the engine knows of a campaign at one version: the
// snapshot a decision records as the one that made it.
type Campaign struct {
	ID       uuid.UUID
	TenantID uuid.UUID
	Version  int64
	Status   campaign.Status
	// StartAt and EndAt bound when it rewards: [StartAt, EndAt), zero is open.
	StartAt, EndAt time.Time
	Rule           rules.Rule
	// CohortID restricts it to a cohort's members; uuid.Nil for everyone.
	CohortID uuid.UUID
}

// QuestProgress is one user's progress in one QUEST campaign.
type QuestProgress struct {
	CampaignID uuid.UUID
	UserID     string
	// Counts holds, per step, how many events counted toward it.
	Counts []int
	// WindowStart is the time of the first event counted in the current
	// window; zero when nothing is counted.
	WindowStart time.Time
	// Completed is when the quest was completed (it rewards once); zero if not.
	Completed time.Time
}

// Outcome is what a decision came to.
type Outcome string

// Outcomes. Only OutcomeIssued pays; the others say why not.
const (
	// OutcomeIssued: the reward is issued.
	OutcomeIssued Outcome = "ISSUED"
	// OutcomeProgressed: a quest counted the event but is not complete yet.
	OutcomeProgressed Outcome = "PROGRESSED"
	// OutcomeNotActive: the campaign is not ACTIVE, or the event lies outside [startAt, endAt).
	OutcomeNotActive Outcome = "NOT_ACTIVE"
	// OutcomeNotInCohort: the user is not in the campaign's cohort.
	OutcomeNotInCohort Outcome = "NOT_IN_COHORT"
	// OutcomeConditionFalse: the rule's condition (or every quest step's) did not hold.
	OutcomeConditionFalse Outcome = "CONDITION_FALSE"
	// OutcomeConditionFailed: a condition could not be evaluated (a missing field, a type error).
	OutcomeConditionFailed Outcome = "CONDITION_FAILED"
	// OutcomeNotCounted: a quest event matched a step (action and condition)
	// but counted toward nothing: the step was already full, or, in an
	// ordered quest, it was not the next unfinished step.
	OutcomeNotCounted Outcome = "NOT_COUNTED"
	// OutcomeNoAmount: a percentage reward found no positive amount in the payload.
	OutcomeNoAmount Outcome = "NO_AMOUNT"
	// OutcomeAlreadyCompleted: the user completed this quest before; it rewards once.
	OutcomeAlreadyCompleted Outcome = "ALREADY_COMPLETED"
	// OutcomeLimited: a tenant or user limit refused the reward.
	OutcomeLimited Outcome = "LIMITED"
	// OutcomeTenantSuspended: the tenant is suspended; nothing rewards.
	OutcomeTenantSuspended Outcome = "TENANT_SUSPENDED"
)

// Decision is what one campaign decided for one event of one user.
type Decision struct {
	// ID is deterministic (DecisionID): the same event and campaign always
	// give the same id.
	ID            uuid.UUID
	TenantID      uuid.UUID
	UserID        string
	CampaignID    uuid.UUID
	CampaignVer   int64
	SourceEventID uuid.UUID
	Outcome       Outcome
	// Reason says more, for a person: the condition's error, the limit that refused.
	Reason string
	// Reward is what an issued (or limit-refused) decision pays.
	Reward *Reward
	// Inputs are the values the decision read: the payload fields its
	// conditions and amount used, the quest counts before and after.
	Inputs map[string]any
	// DecidedAt is the event's time: decisions are functions of their
	// inputs, never of the wall clock, so a replay decides the same.
	DecidedAt time.Time
}

// Reward is what an issued decision pays.
type Reward struct {
	Type     rules.RewardType
	Currency string
	Amount   decimal.Decimal
}

// decisionSpace is the UUIDv5 namespace of decision ids; it must never change.
var decisionSpace = uuid.MustParse("b3a5f0d2-8c4e-4b7a-9e61-2d4f8a7c9e13")

// DecisionID is the id of campaign's decision about the event sourceEventID:
// the same inputs always give the same id, so redelivery decides nothing twice.
func DecisionID(campaignID uuid.UUID, userID string, sourceEventID uuid.UUID) uuid.UUID {
	return uuid.NewSHA1(decisionSpace, []byte(campaignID.String()+"/"+userID+"/"+sourceEventID.String()))
}

// IncentiveID is the id of the incentive an issued decision creates: derived
// from the decision id, so it too is the same on every redelivery.
func IncentiveID(decisionID uuid.UUID) uuid.UUID {
	return uuid.NewSHA1(decisionSpace, []byte("incentive/"+decisionID.String()))
}

// Incentive is a reward an issued decision created.
type Incentive struct {
	// ID is IncentiveID(DecisionID).
	ID         uuid.UUID
	DecisionID uuid.UUID
	TenantID   uuid.UUID
	CampaignID uuid.UUID
	// CampaignVersion is the version of the campaign that decided it (the
	// decision's CampaignVer), for the IncentiveIssued event; zero when the
	// incentive was read back from a source that does not carry it
	// (incentive-generated).
	CampaignVersion int64
	UserID          string
	SourceEventID   uuid.UUID
	Reward          Reward
	// IssuedAt is the time of the event that earned it.
	IssuedAt time.Time
}
