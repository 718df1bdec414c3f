package ws

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/domain/engine"
)

// FrameType is the type of every frame the server sends.
const FrameType = "INCENTIVE_NOTIFICATION"

// Frame is the JSON text frame sent for each incentive (the seed's §1.5,
// with DESIGN.md §11's conventions: the amount is a decimal string, times
// are RFC 3339 UTC). Clients keep the incentiveId of the last frame they got
// and pass it as since when they reconnect.
type Frame struct {
	Type        string      `json:"type"`
	IncentiveID string      `json:"incentiveId"`
	CampaignID  string      `json:"campaignId"`
	Reward      FrameReward `json:"reward"`
	IssuedAt    string      `json:"issuedAt"`
}

// FrameReward is a frame's reward.
type FrameReward struct {
	Type     string `json:"type"`
	Currency string `json:"currency"`
	Amount   string `json:"amount"`
}

// NewFrame returns inc's frame.
func NewFrame(inc engine.Incentive) Frame {
	return Frame{
		Type:        FrameType,
		IncentiveID: inc.ID.String(),
		CampaignID:  inc.CampaignID.String(),
		Reward:      FrameReward{Type: string(inc.Reward.Type), Currency: inc.Reward.Currency, Amount: inc.Reward.Amount.String()},
		IssuedAt:    inc.IssuedAt.UTC().Format(time.RFC3339Nano),
	}
}

// frame is an encoded Frame, shared read-only by every connection it is
// queued on.
type frame struct {
	id   uuid.UUID
	data []byte
}

func encodeFrame(inc engine.Incentive) *frame {
	data, err := json.Marshal(NewFrame(inc))
	if err != nil {
		// Strings only: Marshal cannot fail.
		panic("ws: encode frame: " + err.Error())
	}
	return &frame{id: inc.ID, data: data}
}
