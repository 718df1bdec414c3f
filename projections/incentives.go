package projections

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/incentive"
	"github.com/incentives-platform/incentives/domain/rules"
)

// IncentiveView is a row of the incentive read model: one reward the engine
// issued, as its incentive.issued.v1 event recorded it.
type IncentiveView struct {
	IncentiveID     uuid.UUID
	TenantID        uuid.UUID
	CampaignID      uuid.UUID
	CampaignVersion int64
	DecisionID      uuid.UUID
	UserID          string
	SourceEventID   uuid.UUID
	RewardType      rules.RewardType
	RewardCurrency  string
	RewardAmount    decimal.Decimal
	// IssuedAt is the time of the action that earned the reward.
	IssuedAt time.Time
	// Position is the event-store position of the event the view reflects.
	Position int64
	// Version is the stream version the view reflects (1: an incentive's
	// stream holds one event).
	Version int64
	// RecordedAt is when the event store recorded that event. Stores do not
	// keep it: it dates the change they publish (the change event's ts_ms),
	// so a redelivery or a replay dates it the same. A view loaded from a
	// store has it zero.
	RecordedAt time.Time
}

// IncentivesStore is the port of the incentives projection: like
// CampaignsStore, it loads the current view under a lock, lets evolve
// compute the next and writes it with the checkpoint in one transaction. A
// view evolve returns unchanged (the same pointer) is not written.
type IncentivesStore interface {
	UpdateIncentive(ctx context.Context, cp Checkpoint, id uuid.UUID, evolve func(*IncentiveView) *IncentiveView) error
}

// IncentivesName is the stable name of the incentives projection.
const IncentivesName = "incentives"

// Incentives projects incentive events into the incentive read model.
type Incentives struct {
	store IncentivesStore
}

// NewIncentives returns the projection; it panics on a nil store.
func NewIncentives(store IncentivesStore) *Incentives {
	if store == nil {
		panic("projections: NewIncentives needs a store")
	}
	return &Incentives{store: store}
}

// Name implements Projector.
func (*Incentives) Name() string { return IncentivesName }

// Aggregates implements Projector.
func (*Incentives) Aggregates() []string { return []string{incentive.Aggregate} }

// Handle implements Projector.
func (p *Incentives) Handle(ctx context.Context, d Delivery) error {
	return p.store.UpdateIncentive(ctx, d.Checkpoint, d.Event.Stream.ID, func(cur *IncentiveView) *IncentiveView {
		return EvolveIncentive(cur, d.Event)
	})
}

// EvolveIncentive returns the incentive view after rec; an event the view
// already reflects (at or below its version) returns cur unchanged, and so
// does an event type the view does not know.
func EvolveIncentive(cur *IncentiveView, rec domain.RecordedEvent) *IncentiveView {
	if cur != nil && rec.Version <= cur.Version {
		return cur
	}
	e, ok := rec.Event.(incentive.Issued)
	if !ok {
		return cur
	}
	return &IncentiveView{
		IncentiveID:     e.IncentiveID,
		TenantID:        e.TenantID,
		CampaignID:      e.CampaignID,
		CampaignVersion: e.CampaignVersion,
		DecisionID:      e.DecisionID,
		UserID:          e.UserID,
		SourceEventID:   e.SourceEventID,
		RewardType:      e.RewardType,
		RewardCurrency:  e.RewardCurrency,
		RewardAmount:    e.RewardAmount,
		IssuedAt:        e.IssuedAt.UTC(),
		Position:        rec.Position,
		Version:         rec.Version,
		RecordedAt:      rec.RecordedAt.UTC(),
	}
}
