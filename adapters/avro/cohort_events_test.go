package avro_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/domain/cohort"
)

// A DYNAMIC cohort is created without members: its generation is null on
// the wire and reads back as uuid.Nil.
func TestDynamicCohortCreatedRoundTrips(t *testing.T) {
	_, codec := mustCodec(t)
	want := cohort.Created{CohortID: uuid.New(), TenantID: uuid.New(), Name: "Buyers", Kind: cohort.Dynamic,
		Rule: "user.counts['PURCHASE'] >= 3", CreatedAt: time.Date(2026, 11, 25, 10, 30, 15, 123e6, time.UTC)}
	bin, err := codec.EncodeBinary(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := codec.DecodeBinary(bin)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("binary round trip = %#v, %v; want %#v", got, err, want)
	}
	_, js, err := codec.EncodeJSON(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err = codec.DecodeJSON(cohort.CreatedType, js)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("json round trip of %s = %#v, %v; want %#v", js, got, err, want)
	}
}
