package rules

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/incentives-platform/incentives/domain"
)

// RewardType is what a reward pays in.
type RewardType string

// Reward types.
const (
	RewardCashback RewardType = "CASHBACK"
	RewardPoints   RewardType = "POINTS"
	RewardCoupon   RewardType = "COUPON"
)

// Limits of reward amounts: what numeric(20,4) holds, with room.
const (
	maxAmountDigits   = 12
	maxFractionDigits = 4
)

var (
	maxAmount    = decimal.New(1, maxAmountDigits)
	hundred      = decimal.NewFromInt(100)
	currencyCode = regexp.MustCompile(`^[A-Z]{3,8}$`)
	fieldPath    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}(\.[A-Za-z_][A-Za-z0-9_]{0,63}){0,7}$`)
)

// Reward is what one rewarded decision pays: a fixed Amount, or Percent of a
// numeric payload field (PercentOf, a dotted path into the payload) capped at
// MaxAmount when that is set.
type Reward struct {
	Type     RewardType
	Currency string
	// Amount is the fixed amount; zero for a percentage reward.
	Amount decimal.Decimal
	// Percent of the payload field PercentOf; zero for a fixed reward.
	Percent   decimal.Decimal
	PercentOf string
	// MaxAmount caps a percentage reward; zero means no cap.
	MaxAmount decimal.Decimal
}

// IsPercentage reports whether the amount depends on the event's payload.
func (r Reward) IsPercentage() bool { return r.PercentOf != "" }

// Scale is how many decimal places the reward is paid in: points are whole.
func (r Reward) Scale() int32 {
	if r.Type == RewardPoints {
		return 0
	}
	return 2
}

// AmountFor returns what the reward pays for an event with payload. A
// percentage is rounded down to Scale and capped; a payload without a usable
// number at PercentOf pays nothing (ok is false).
func (r Reward) AmountFor(payload map[string]any) (amount decimal.Decimal, ok bool) {
	if !r.IsPercentage() {
		return r.Amount, true
	}
	base, ok := numberAt(payload, r.PercentOf)
	if !ok || !base.IsPositive() {
		return decimal.Zero, false
	}
	// Shift, not Div: exact, where Div rounds half up at 16 places before
	// the truncation could see the digits it rounded.
	amount = base.Mul(r.Percent).Shift(-2).Truncate(r.Scale())
	if cap := r.MaxAmount.Truncate(r.Scale()); !r.MaxAmount.IsZero() && amount.GreaterThan(cap) {
		amount = cap
	}
	if amount.GreaterThan(maxAmount) {
		// No reward is that large; the payload is wrong, and the amount
		// would not fit the incentive's numeric(20,4) either.
		return decimal.Zero, false
	}
	return amount, amount.IsPositive()
}

// numberAt reads a decimal at a dotted path of a JSON object: a JSON number
// (float64 or json.Number) or a decimal string.
func numberAt(m map[string]any, path string) (decimal.Decimal, bool) {
	var v any = m
	for _, key := range strings.Split(path, ".") {
		obj, ok := v.(map[string]any)
		if !ok {
			return decimal.Zero, false
		}
		v = obj[key]
	}
	switch n := v.(type) {
	case float64:
		return decimal.NewFromFloat(n), true
	case interface{ String() string }: // json.Number
		d, err := decimal.NewFromString(n.String())
		return d, err == nil
	case string:
		d, err := decimal.NewFromString(n)
		return d, err == nil
	case int64:
		return decimal.NewFromInt(n), true
	}
	return decimal.Zero, false
}

// parseAmount reads a positive decimal string with at most four fraction digits.
func parseAmount(v *domain.Validator, field string, raw any, max decimal.Decimal) decimal.Decimal {
	s, ok := raw.(string)
	if !ok {
		v.Add(field, `must be a decimal string such as "12.50"`)
		return decimal.Zero
	}
	d, err := decimal.NewFromString(s)
	switch {
	case err != nil || strings.ContainsAny(s, "eE"):
		v.Add(field, fmt.Sprintf(`%q is not a decimal number such as "12.50"`, s))
	case !d.IsPositive():
		v.Add(field, "must be greater than zero")
	case d.GreaterThan(max):
		v.Add(field, "must be at most "+max.String())
	case -d.Exponent() > maxFractionDigits:
		v.Add(field, fmt.Sprintf("must have at most %d decimal places", maxFractionDigits))
	default:
		return d
	}
	return decimal.Zero
}

// checkScale refuses an amount finer than the reward pays in: 10.5 POINTS or
// 0.001 INR would be rounded away when paid.
func checkScale(v *domain.Validator, field string, r Reward, amount decimal.Decimal) {
	if r.Type == "" || amount.IsZero() {
		return
	}
	if scale := r.Scale(); -amount.Exponent() > scale && !amount.Equal(amount.Truncate(scale)) {
		if scale == 0 {
			v.Add(field, "must be a whole number: "+string(r.Type)+" rewards are paid in whole units")
		} else {
			v.Add(field, fmt.Sprintf("must have at most %d decimal places: it is paid in %s", scale, r.Currency))
		}
	}
}

func parseReward(v *domain.Validator, path string, raw any, allowPercentage bool) Reward {
	obj, ok := object(v, path, raw)
	if !ok {
		return Reward{}
	}
	known(v, path, obj, "type", "currency", "amount", "percent", "percentOf", "maxAmount")
	var r Reward
	switch t := RewardType(str(obj["type"])); t {
	case RewardCashback, RewardPoints, RewardCoupon:
		r.Type = t
	default:
		v.Add(path+".type", "must be CASHBACK, POINTS or COUPON")
	}
	r.Currency = str(obj["currency"])
	switch {
	case obj["currency"] == nil:
		v.Add(path+".currency", "is required (an ISO 4217 code such as INR, or POINTS)")
	case !currencyCode.MatchString(r.Currency):
		v.Add(path+".currency", "must be 3 to 8 capital letters, such as INR or POINTS")
	}
	_, hasAmount := obj["amount"]
	_, hasPercent := obj["percent"]
	switch {
	case hasAmount && (hasPercent || obj["percentOf"] != nil):
		v.Add(path, "give either amount or percent with percentOf, not both")
	case hasAmount:
		r.Amount = parseAmount(v, path+".amount", obj["amount"], maxAmount)
		checkScale(v, path+".amount", r, r.Amount)
		if obj["maxAmount"] != nil {
			v.Add(path+".maxAmount", "only caps percentage rewards")
		}
	case hasPercent:
		if !allowPercentage {
			v.Add(path+".percent", "percentage rewards are for SIMPLE campaigns, whose reward follows one event")
			return r
		}
		r.Percent = parseAmount(v, path+".percent", obj["percent"], hundred)
		r.PercentOf = str(obj["percentOf"])
		if !fieldPath.MatchString(r.PercentOf) {
			v.Add(path+".percentOf", "must name a payload field, such as amount or order.total")
		}
		if obj["maxAmount"] != nil {
			r.MaxAmount = parseAmount(v, path+".maxAmount", obj["maxAmount"], maxAmount)
			checkScale(v, path+".maxAmount", r, r.MaxAmount)
		}
	default:
		v.Add(path, "needs amount, or percent with percentOf")
	}
	return r
}
