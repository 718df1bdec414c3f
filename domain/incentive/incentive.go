// Package incentive holds the record of a reward the engine paid: the
// IncentiveIssued event, one per incentive, in its own stream
// incentive-<incentiveId>. The decision to pay is domain/engine's and
// happens before the event is written; this package only gives the fact its
// stable, published shape (schemas/avro/incentive.issued.v1.avsc), for the
// incentive projection and analytics.
//
// An incentive's stream holds that one event. Appended at expected version 0,
// a second append of the same incentive (a redelivered action event decides
// the same incentive id) is a version conflict, never a second event.
package incentive

import (
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/engine"
	"github.com/incentives-platform/incentives/domain/rules"
)

// Aggregate is the stable name of the incentive stream type and of its topic.
const Aggregate = "incentive"

// IssuedType is the IncentiveIssued event's type name: never rename it; add
// a version.
const IssuedType = "incentive.issued.v1"

// Stream returns the event stream of incentive id.
func Stream(id uuid.UUID) domain.StreamID { return domain.StreamID{Aggregate: Aggregate, ID: id} }

// Issued: a user earned a reward. It names the decision that paid it and
// the action event (or quest completion) that earned it.
type Issued struct {
	// IncentiveID is engine.IncentiveID(DecisionID).
	IncentiveID uuid.UUID
	DecisionID  uuid.UUID
	TenantID    uuid.UUID
	CampaignID  uuid.UUID
	// CampaignVersion is the version of the campaign that decided it.
	CampaignVersion int64
	UserID          string
	SourceEventID   uuid.UUID
	RewardType      rules.RewardType
	RewardCurrency  string
	RewardAmount    decimal.Decimal
	// IssuedAt is the time of the event that earned it, not of the write.
	IssuedAt time.Time
}

func (Issued) EventType() string { return IssuedType }

// IssuedEvent returns the IncentiveIssued event of an incentive the engine
// issued (engine.NewIncentive), to append to Stream(inc.ID).
func IssuedEvent(inc engine.Incentive) domain.Event {
	return Issued{
		IncentiveID:     inc.ID,
		DecisionID:      inc.DecisionID,
		TenantID:        inc.TenantID,
		CampaignID:      inc.CampaignID,
		CampaignVersion: inc.CampaignVersion,
		UserID:          inc.UserID,
		SourceEventID:   inc.SourceEventID,
		RewardType:      inc.Reward.Type,
		RewardCurrency:  inc.Reward.Currency,
		RewardAmount:    inc.Reward.Amount,
		IssuedAt:        inc.IssuedAt.UTC(),
	}
}
