package kafka_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/incentives-platform/incentives/adapters/kafka"
	"github.com/incentives-platform/incentives/domain/rules"
	"github.com/incentives-platform/incentives/projections"
)

// The envelope is Debezium's, byte for byte as its JsonConverter writes it
// with schemas.enable=false: field order, nulls, the amount at the column's
// scale, timestamps in UTC to the millisecond.
func TestIncentiveChangeMessageIsADebeziumEnvelope(t *testing.T) {
	u := func(s string) uuid.UUID { return uuid.MustParse(s) }
	view := &projections.IncentiveView{
		IncentiveID: u("49989d7a-b454-532f-9c44-af12e4d32b59"), TenantID: u("d291052e-b512-4b16-85e8-256ded1f6c24"),
		CampaignID: u("70963753-1156-4e1c-99ba-b03425b2c5c0"), CampaignVersion: 2, DecisionID: u("5fb932e7-a42b-508a-bf90-74e5dd911748"),
		UserID: "u1", SourceEventID: u("8ca7399f-abad-4590-b300-951b35ce6a86"), RewardType: rules.RewardCashback, RewardCurrency: "INR",
		RewardAmount: decimal.RequireFromString("5.52"), IssuedAt: time.Date(2026, 11, 26, 15, 29, 11, 0, time.FixedZone("IST", 19800)),
		Position: 9, Version: 1, RecordedAt: time.Date(2026, 11, 26, 9, 59, 11, 508e6, time.UTC),
	}
	const row = `{"incentive_id":"49989d7a-b454-532f-9c44-af12e4d32b59","tenant_id":"d291052e-b512-4b16-85e8-256ded1f6c24",` +
		`"campaign_id":"70963753-1156-4e1c-99ba-b03425b2c5c0","campaign_version":2,"decision_id":"5fb932e7-a42b-508a-bf90-74e5dd911748",` +
		`"user_id":"u1","source_event_id":"8ca7399f-abad-4590-b300-951b35ce6a86","reward_type":"CASHBACK","reward_currency":"INR",` +
		`"reward_amount":"5.5200","issued_at":"2026-11-26T09:59:11.000Z","position":9,"version":1}`
	const source = `"source":{"version":"incentives-1","connector":"incentives","name":"db","ts_ms":1795687151508,"snapshot":"false",` +
		`"db":"incentives","schema":"public","table":"incentive_view","position":9,"stream_version":1}`

	topic, msg, err := kafka.IncentiveChanges{}.IncentiveChangeMessage(nil, view)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"before":null,"after":` + row + `,` + source + `,"op":"c","ts_ms":1795687151508}`
	if topic != "db.incentives" || string(msg.Payload) != want {
		t.Fatalf("create: topic %q value\n%s\nwant\n%s", topic, msg.Payload, want)
	}
	if key := msg.Metadata.Get("_kafka_key"); key != `{"incentive_id":"49989d7a-b454-532f-9c44-af12e4d32b59"}` {
		t.Fatalf("key %q", key)
	}
	if ct := msg.Metadata.Get(kafka.HeaderContentType); ct != "application/json" {
		t.Fatalf("content-type %q", ct)
	}
	_, again, _ := kafka.IncentiveChanges{}.IncentiveChangeMessage(nil, view)
	if again.UUID != msg.UUID {
		t.Fatalf("message ids %s and %s: every copy of a change must carry the same id", msg.UUID, again.UUID)
	}

	next := *view
	next.Version, next.Position, next.RewardAmount = 2, 12, decimal.NewFromInt(7)
	_, upd, err := kafka.IncentiveChanges{Database: "prod"}.IncentiveChangeMessage(view, &next)
	if err != nil {
		t.Fatal(err)
	}
	var ev kafka.IncentiveChangeEvent
	if err := json.Unmarshal(upd.Payload, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Op != kafka.OpUpdate || ev.Before == nil || *ev.Before != kafka.IncentiveRowOf(view) || ev.After.RewardAmount != "7.0000" ||
		ev.Source.DB != "prod" || ev.Source.StreamVersion != 2 || ev.Source.Position != 12 || upd.UUID == msg.UUID {
		t.Fatalf("update %+v (before %+v, after %+v)", ev, ev.Before, ev.After)
	}

	// A delete: the row before, after null, dated by the caller.
	_, del, err := (kafka.IncentiveChanges{Database: "prod"}).IncentiveChangeMessage(view, nil)
	if err != nil {
		t.Fatal(err)
	}
	var dev kafka.IncentiveChangeEvent
	if err := json.Unmarshal(del.Payload, &dev); err != nil {
		t.Fatal(err)
	}
	if dev.Op != kafka.OpDelete || dev.After != nil || dev.Before == nil || *dev.Before != kafka.IncentiveRowOf(view) ||
		dev.TsMs != view.RecordedAt.UnixMilli() || del.Metadata.Get("_kafka_key") != msg.Metadata.Get("_kafka_key") ||
		!strings.Contains(string(del.Payload), `"after":null`) {
		t.Fatalf("delete %s (key %q)", del.Payload, del.Metadata.Get("_kafka_key"))
	}
	// A replay's swap publishes under its own origin: never the id of the
	// live projection's change of the same row and version.
	_, replayed, err := (kafka.IncentiveChanges{Origin: "replay/1"}).IncentiveChangeMessage(nil, view)
	if err != nil {
		t.Fatal(err)
	}
	if replayed.UUID == msg.UUID || string(replayed.Payload) != string(msg.Payload) {
		t.Fatalf("a replayed change: id %s (the live one's %s), payload equal %v", replayed.UUID, msg.UUID, string(replayed.Payload) == string(msg.Payload))
	}
	if _, _, err := (kafka.IncentiveChanges{}).IncentiveChangeMessage(nil, nil); err == nil {
		t.Fatal("a change without a row before or after it must be refused")
	}
	undated := *view
	undated.RecordedAt = time.Time{}
	if _, _, err := (kafka.IncentiveChanges{}).IncentiveChangeMessage(nil, &undated); err == nil {
		t.Fatal("a change without its event's record time must be refused, not dated 1970")
	}
}
