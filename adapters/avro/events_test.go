package avro_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/linkedin/goavro/v2"
	"github.com/shopspring/decimal"

	"github.com/incentives-platform/incentives/adapters/avro"
	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/campaign"
	"github.com/incentives-platform/incentives/domain/cohort"
	"github.com/incentives-platform/incentives/domain/incentive"
	"github.com/incentives-platform/incentives/domain/limits"
	"github.com/incentives-platform/incentives/domain/rules"
	"github.com/incentives-platform/incentives/domain/tenant"
)

var update = flag.Bool("update", false, "rewrite testdata/*.bin golden files")

func mustCodec(t *testing.T) (*avro.Registry, *avro.EventCodec) {
	t.Helper()
	reg, codec, err := avro.LoadPlatform()
	if err != nil {
		t.Fatal(err)
	}
	return reg, codec
}

func ptr(n int64) *int64 { return &n }

// sampleEvents holds one event of every mapped type, with every optional field
// both set and unset somewhere.
func sampleEvents() []domain.Event {
	id := uuid.MustParse("8d7e2b4c-1a3f-4e5d-9c8b-7a6f5e4d3c2b")
	at := time.Date(2026, 11, 25, 10, 30, 15, 123e6, time.UTC)
	return []domain.Event{
		tenant.Created{TenantID: id, Name: "Acme Bank — Pune", CreatedAt: at},
		tenant.Suspended{TenantID: id, Reason: "unpaid invoice", SuspendedAt: at},
		tenant.Reactivated{TenantID: id, ReactivatedAt: at},
		limits.Defined{TenantID: id,
			Tenant:    limits.Caps{PerDay: ptr(100000), PerWindow: ptr(500000), WindowDays: 7},
			User:      limits.Caps{PerDay: ptr(0), Total: ptr(1000)},
			DefinedAt: at},
		limits.TenantSet{TenantID: id, Caps: limits.Caps{PerDay: ptr(250000), Total: ptr(0)}, SetAt: at},
		limits.UserSet{TenantID: id, Caps: limits.Caps{PerWindow: ptr(20), WindowDays: 366}, SetAt: at},
		campaign.Created{CampaignID: id, TenantID: id, Definition: campaignDefinition(rules.Simple, `{"action":"PURCHASE","condition":"event.payload.amount >= 100",
			"reward":{"type":"CASHBACK","currency":"INR","percent":"5","percentOf":"amount","maxAmount":"100"}}`, at, id), CreatedAt: at},
		campaign.Updated{CampaignID: id, Definition: campaignDefinition(rules.Quest, `{"steps":[{"action":"LOGIN","count":3},{"action":"PURCHASE"}],
			"ordered":true,"windowDays":7,"reward":{"type":"POINTS","currency":"POINTS","amount":"500"}}`, time.Time{}, uuid.Nil), UpdatedAt: at},
		campaign.Activated{CampaignID: id, ActivatedAt: at},
		campaign.Paused{CampaignID: id, PausedAt: at},
		campaign.Ended{CampaignID: id, Reason: campaign.EndAtReached, EndedAt: at},
		cohort.Created{CohortID: id, TenantID: id, Name: "VIPs", Kind: cohort.Static,
			Members: cohort.Members{Generation: id, Count: 1_000_000}, CreatedAt: at},
		cohort.Recomputed{CohortID: id, JobID: id, Members: cohort.Members{Generation: id, Count: 42}, ComputedAt: at},
		incentive.Issued{IncentiveID: id, DecisionID: uuid.MustParse("d343e96a-796f-5966-b5b2-d2c8210a6f5e"), TenantID: id,
			CampaignID: id, CampaignVersion: 3, UserID: "user-42", SourceEventID: id, RewardType: rules.RewardCashback,
			RewardCurrency: "INR", RewardAmount: decimal.RequireFromString("12.75"), IssuedAt: at},
	}
}

// campaignDefinition is a definition with the given rule, starting at start
// (zero: unset) and restricted to cohort (uuid.Nil: everyone).
func campaignDefinition(kind rules.Kind, rule string, start time.Time, cohort uuid.UUID) campaign.Definition {
	r, err := rules.Parse(kind, []byte(rule))
	if err != nil {
		panic(err)
	}
	d := campaign.Definition{Name: "Festive", Type: kind, StartAt: start, Rule: r, CohortID: cohort}
	if !start.IsZero() {
		d.EndAt = start.Add(720 * time.Hour)
	}
	return d
}

// sameEvent compares events, campaign rules by their documents: a compiled
// condition is a program that no two compilations share.
func sameEvent(a, b domain.Event) bool {
	return reflect.DeepEqual(comparable(a), comparable(b))
}

func comparable(e domain.Event) any {
	withoutProgram := func(d campaign.Definition) []any {
		doc := string(d.Rule.Document())
		d.Rule = rules.Rule{}
		return []any{d, doc}
	}
	switch e := e.(type) {
	case campaign.Created:
		return []any{e.CampaignID, e.TenantID, e.CreatedAt, withoutProgram(e.Definition)}
	case campaign.Updated:
		return []any{e.CampaignID, e.UpdatedAt, withoutProgram(e.Definition)}
	}
	return e
}

func TestEveryMappedTypeRoundTrips(t *testing.T) {
	_, codec := mustCodec(t)
	samples := map[string]domain.Event{}
	for _, e := range sampleEvents() {
		samples[e.EventType()] = e
	}
	for _, typ := range codec.Types() {
		e, ok := samples[typ]
		if !ok {
			t.Errorf("no sample event of %s: add one to sampleEvents", typ)
			continue
		}
		bin, err := codec.EncodeBinary(e)
		if err != nil {
			t.Fatalf("EncodeBinary(%s): %v", typ, err)
		}
		got, err := codec.DecodeBinary(bin)
		if err != nil || !sameEvent(got, e) {
			t.Errorf("binary round trip of %s = %#v, %v; want %#v", typ, got, err, e)
		}
		version, js, err := codec.EncodeJSON(e)
		if err != nil || version != 1 {
			t.Fatalf("EncodeJSON(%s) = %d, %v", typ, version, err)
		}
		got, err = codec.DecodeJSON(typ, js)
		if err != nil || !sameEvent(got, e) {
			t.Errorf("json round trip of %s = %#v, %v; want %#v", typ, got, err, e)
		}
	}
}

// The golden files pin the wire format: a change that alters the bytes of an
// existing event breaks every consumer that stored or replays them.
func TestGoldenSingleObjectFiles(t *testing.T) {
	reg, codec := mustCodec(t)
	for _, e := range sampleEvents() {
		path := filepath.Join("testdata", e.EventType()+".bin")
		bin, err := codec.EncodeBinary(e)
		if err != nil {
			t.Fatal(err)
		}
		if *update {
			if err := os.WriteFile(path, bin, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		golden, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./adapters/avro -update to create it)", err)
		}
		if !bytes.Equal(bin, golden) {
			t.Errorf("%s: encoding changed:\n got %x\nwant %x", e.EventType(), bin, golden)
		}
		s, _ := reg.Schema(e.EventType())
		if fp := binary.LittleEndian.Uint64(golden[2:10]); golden[0] != 0xC3 || golden[1] != 0x01 || fp != s.Fingerprint {
			t.Errorf("%s: header % x, want C3 01 and fingerprint %#016x", e.EventType(), golden[:10], s.Fingerprint)
		}
		got, err := codec.DecodeBinary(golden)
		if err != nil || !sameEvent(got, e) {
			t.Errorf("decode golden %s = %#v, %v", e.EventType(), got, err)
		}
	}
}

// A producer using goavro's own SingleFromNative writes goavro's
// fingerprint; such values are still read.
func TestAcceptsGoavroFingerprint(t *testing.T) {
	reg, codec := mustCodec(t)
	s, _ := reg.Schema(tenant.CreatedType)
	gc, err := goavro.NewCodec(string(s.Source))
	if err != nil {
		t.Fatal(err)
	}
	if gc.Rabin == s.Fingerprint {
		t.Fatal("schema with a logical type should have a goavro fingerprint that differs from the spec's")
	}
	want := sampleEvents()[0]
	bin, err := gc.SingleFromNative(nil, map[string]any{"tenantId": want.(tenant.Created).TenantID.String(), "name": "Acme Bank — Pune", "createdAt": want.(tenant.Created).CreatedAt})
	if err != nil {
		t.Fatal(err)
	}
	got, err := codec.DecodeBinary(bin)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("DecodeBinary(goavro single object) = %#v, %v", got, err)
	}
}

func TestUndecodableValues(t *testing.T) {
	_, codec := mustCodec(t)
	good, err := codec.EncodeBinary(sampleEvents()[0])
	if err != nil {
		t.Fatal(err)
	}
	unknownFP := append([]byte{0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8}, good[10:]...)
	tests := map[string][]byte{
		"empty":               nil,
		"json":                []byte(`{"tenantId":"x"}`),
		"marker only":         {0xC3, 0x01},
		"unknown fingerprint": unknownFP,
		"truncated body":      good[:len(good)-3],
		"trailing bytes":      append(append([]byte{}, good...), 0),
	}
	for name, data := range tests {
		if _, err := codec.DecodeBinary(data); !errors.Is(err, avro.ErrUndecodable) {
			t.Errorf("%s: DecodeBinary error = %v, want ErrUndecodable", name, err)
		}
	}
	if _, err := codec.DecodeJSON(tenant.CreatedType, []byte(`{"tenantId":"not-a-uuid","name":"x","createdAt":1}`)); !errors.Is(err, avro.ErrUndecodable) {
		t.Errorf("DecodeJSON(bad uuid) error = %v, want ErrUndecodable", err)
	}
	if _, err := codec.DecodeJSON("no.such.v1", []byte(`{}`)); !errors.Is(err, avro.ErrUndecodable) {
		t.Errorf("DecodeJSON(unknown type) error = %v, want ErrUndecodable", err)
	}
}

func TestNewEventCodecRefusesTypesWithoutSchema(t *testing.T) {
	reg, _ := mustCodec(t)
	_, err := avro.NewEventCodec(reg, avro.EventMapping{Type: "tenant.renamed.v9"})
	if err == nil {
		t.Fatal("NewEventCodec accepted an event type without a schema file")
	}
}

func TestSchemaVersion(t *testing.T) {
	for in, want := range map[string]int{"tenant.created.v1": 1, "campaign.activated.v12": 12, "action-event": 1, "x.vv": 1} {
		if got := avro.SchemaVersion(in); got != want {
			t.Errorf("SchemaVersion(%q) = %d, want %d", in, got, want)
		}
	}
}
