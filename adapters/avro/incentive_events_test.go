package avro_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/incentives-platform/incentives/adapters/avro"
	"github.com/incentives-platform/incentives/domain/incentive"
)

// The amount is a decimal string on the wire; one that is not a number is
// undecodable, never a zero reward.
func TestIncentiveIssuedAmountIsADecimalString(t *testing.T) {
	_, codec := mustCodec(t)
	var sample incentive.Issued
	for _, e := range sampleEvents() {
		if i, ok := e.(incentive.Issued); ok {
			sample = i
		}
	}
	_, js, err := codec.EncodeJSON(sample)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), `"rewardAmount":"12.75"`) {
		t.Fatalf("EncodeJSON = %s, want the amount as the string \"12.75\"", js)
	}
	bad := strings.Replace(string(js), `"12.75"`, `"12,75"`, 1)
	if _, err := codec.DecodeJSON(incentive.IssuedType, []byte(bad)); !errors.Is(err, avro.ErrUndecodable) || !strings.Contains(err.Error(), "rewardAmount") {
		t.Fatalf("DecodeJSON(amount 12,75) error = %v, want ErrUndecodable naming rewardAmount", err)
	}
}
