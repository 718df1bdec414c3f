package avro

import (
	"fmt"

	"github.com/shopspring/decimal"

	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/incentive"
	"github.com/incentives-platform/incentives/domain/rules"
)

// The reward amount travels as a decimal string, so no consumer in any
// language reads a float.

func incentiveIssuedToNative(e domain.Event) (map[string]any, error) {
	i, ok := e.(incentive.Issued)
	if !ok {
		return nil, wrongType(incentive.IssuedType, e)
	}
	return map[string]any{
		"incentiveId": i.IncentiveID.String(), "decisionId": i.DecisionID.String(),
		"tenantId": i.TenantID.String(), "campaignId": i.CampaignID.String(), "campaignVersion": i.CampaignVersion,
		"userId": i.UserID, "sourceEventId": i.SourceEventID.String(),
		"rewardType": string(i.RewardType), "rewardCurrency": i.RewardCurrency, "rewardAmount": i.RewardAmount.String(),
		"issuedAt": i.IssuedAt,
	}, nil
}

func incentiveIssuedFromNative(m map[string]any) (domain.Event, error) {
	r := &record{m: m}
	e := incentive.Issued{
		IncentiveID: r.uuid("incentiveId"), DecisionID: r.uuid("decisionId"),
		TenantID: r.uuid("tenantId"), CampaignID: r.uuid("campaignId"), CampaignVersion: readLong(r, "campaignVersion"),
		UserID: r.string("userId"), SourceEventID: r.uuid("sourceEventId"),
		RewardType: rules.RewardType(r.string("rewardType")), RewardCurrency: r.string("rewardCurrency"),
		RewardAmount: r.decimalField("rewardAmount"),
		IssuedAt:     r.time("issuedAt"),
	}
	return e, r.err
}

// decimalField reads a decimal number written as a string.
func (r *record) decimalField(field string) decimal.Decimal {
	s := r.string(field)
	d, err := decimal.NewFromString(s)
	if err != nil && r.err == nil {
		r.err = fmt.Errorf("%w: field %s: %q is not a decimal number", ErrUndecodable, field, s)
	}
	return d
}
