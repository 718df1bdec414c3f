package incentive_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/incentives-platform/incentives/domain/engine"
	"github.com/incentives-platform/incentives/domain/incentive"
	"github.com/incentives-platform/incentives/domain/rules"
)

func TestIssuedEventCarriesTheIncentive(t *testing.T) {
	decision := uuid.MustParse("d343e96a-796f-5966-b5b2-d2c8210a6f5e")
	inc := engine.Incentive{
		ID: engine.IncentiveID(decision), DecisionID: decision,
		TenantID: uuid.New(), CampaignID: uuid.New(), CampaignVersion: 7, UserID: "u1", SourceEventID: uuid.New(),
		Reward:   engine.Reward{Type: rules.RewardCashback, Currency: "INR", Amount: decimal.RequireFromString("12.75")},
		IssuedAt: time.Date(2026, 11, 25, 15, 30, 0, 0, time.FixedZone("IST", 19800)),
	}
	got := incentive.IssuedEvent(inc)
	want := incentive.Issued{
		IncentiveID: inc.ID, DecisionID: decision, TenantID: inc.TenantID, CampaignID: inc.CampaignID, CampaignVersion: 7,
		UserID: "u1", SourceEventID: inc.SourceEventID, RewardType: rules.RewardCashback, RewardCurrency: "INR",
		RewardAmount: inc.Reward.Amount, IssuedAt: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("IssuedEvent = %+v\nwant %+v", got, want)
	}
	if got.EventType() != "incentive.issued.v1" {
		t.Errorf("EventType = %s: renaming it renames stored history", got.EventType())
	}
	if s := incentive.Stream(inc.ID).String(); s != "incentive-"+inc.ID.String() {
		t.Errorf("Stream = %s", s)
	}
}
