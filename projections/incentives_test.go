package projections_test

import (
	"reflect"
	"testing"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/campaign"
	"github.com/incentives-platform/incentives/domain/incentive"
	"github.com/incentives-platform/incentives/domain/rules"
	"github.com/incentives-platform/incentives/projections"
)

func TestEvolveIncentive(t *testing.T) {
	issued := incentive.Issued{
		IncentiveID: id, DecisionID: uuid.New(), TenantID: uuid.New(), CampaignID: uuid.New(), CampaignVersion: 3,
		UserID: "u1", SourceEventID: uuid.New(), RewardType: rules.RewardCashback, RewardCurrency: "INR",
		RewardAmount: decimal.RequireFromString("12.5"), IssuedAt: t0,
	}
	rec := domain.RecordedEvent{Position: 42, Stream: incentive.Stream(id), Version: 1, Event: issued, RecordedAt: t1}
	want := projections.IncentiveView{
		IncentiveID: id, TenantID: issued.TenantID, CampaignID: issued.CampaignID, CampaignVersion: 3,
		DecisionID: issued.DecisionID, UserID: "u1", SourceEventID: issued.SourceEventID, RewardType: rules.RewardCashback,
		RewardCurrency: "INR", RewardAmount: issued.RewardAmount, IssuedAt: t0, Position: 42, Version: 1, RecordedAt: t1,
	}
	v := projections.EvolveIncentive(nil, rec)
	if v == nil || !reflect.DeepEqual(*v, want) {
		t.Fatalf("EvolveIncentive(nil, issued) = %+v, want %+v", v, want)
	}
	if got := projections.EvolveIncentive(v, rec); got != v {
		t.Fatal("a redelivered event must return the same view, so the store writes and publishes nothing")
	}
	stale := rec
	stale.Version, stale.Position = 0, 7
	if got := projections.EvolveIncentive(v, stale); got != v {
		t.Fatal("an event below the view's version changed it")
	}
	other := domain.RecordedEvent{Stream: incentive.Stream(id), Version: 2, Event: campaign.Paused{CampaignID: id}}
	if got := projections.EvolveIncentive(v, other); got != v {
		t.Fatal("an event the view does not know changed it")
	}
	if got := projections.EvolveIncentive(nil, other); got != nil {
		t.Fatalf("an unknown first event made a view: %+v", got)
	}
}
