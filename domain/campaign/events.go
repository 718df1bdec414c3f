package campaign

import (
	"time"

	"github.com/google/uuid"
)

// Event type names (schemas/avro/<name>.avsc): never rename one; add a version.
const (
	CreatedType   = "campaign.created.v1"
	UpdatedType   = "campaign.updated.v1"
	ActivatedType = "campaign.activated.v1"
	PausedType    = "campaign.paused.v1"
	EndedType     = "campaign.ended.v1"
)

// Created: a tenant defined a campaign, in DRAFT.
type Created struct {
	CampaignID uuid.UUID
	TenantID   uuid.UUID
	Definition Definition
	CreatedAt  time.Time
}

// Updated: the campaign's definition was replaced.
type Updated struct {
	CampaignID uuid.UUID
	Definition Definition
	UpdatedAt  time.Time
}

// Activated: the campaign rewards from now on (within its dates).
type Activated struct {
	CampaignID  uuid.UUID
	ActivatedAt time.Time
}

// Paused: the campaign stops rewarding until activated again.
type Paused struct {
	CampaignID uuid.UUID
	PausedAt   time.Time
}

// Ended: the campaign will never reward again.
type Ended struct {
	CampaignID uuid.UUID
	Reason     EndReason
	EndedAt    time.Time
}

// EndReason says why a campaign ended.
type EndReason string

// End reasons.
const (
	// EndAtReached: the campaign's endAt passed.
	EndAtReached EndReason = "END_AT_REACHED"
)

func (Created) EventType() string   { return CreatedType }
func (Updated) EventType() string   { return UpdatedType }
func (Activated) EventType() string { return ActivatedType }
func (Paused) EventType() string    { return PausedType }
func (Ended) EventType() string     { return EndedType }
