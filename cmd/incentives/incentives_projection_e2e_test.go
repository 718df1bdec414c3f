package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/incentives-platform/incentives/adapters/auth"
	"github.com/incentives-platform/incentives/adapters/kafka"
	"github.com/incentives-platform/incentives/schemas"
)

// viewRows returns incentive_view as db.incentives writes its rows, by
// incentive id.
func (p *testPlatform) viewRows() map[string]kafka.IncentiveRow {
	p.t.Helper()
	rows, err := p.db.Pool.Query(context.Background(), `
		SELECT incentive_id::text, tenant_id::text, campaign_id::text, campaign_version, decision_id::text, user_id,
		       source_event_id::text, reward_type, reward_currency, reward_amount::text,
		       to_char(issued_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), position, version
		FROM incentive_view`)
	if err != nil {
		p.t.Fatal(err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (kafka.IncentiveRow, error) {
		var v kafka.IncentiveRow
		err := r.Scan(&v.IncentiveID, &v.TenantID, &v.CampaignID, &v.CampaignVersion, &v.DecisionID, &v.UserID,
			&v.SourceEventID, &v.RewardType, &v.RewardCurrency, &v.RewardAmount, &v.IssuedAt, &v.Position, &v.Version)
		return v, err
	})
	if err != nil {
		p.t.Fatal(err)
	}
	out := make(map[string]kafka.IncentiveRow, len(list))
	for _, v := range list {
		out[v.IncentiveID] = v
	}
	return out
}

const (
	engineFacts = `SELECT concat_ws('|', incentive_id, tenant_id, campaign_id, campaign_version, decision_id, user_id,
		source_event_id, type, reward_currency, reward_amount, issued_at) AS f FROM incentive ORDER BY f`
	viewFacts = `SELECT concat_ws('|', incentive_id, tenant_id, campaign_id, campaign_version, decision_id, user_id,
		source_event_id, reward_type, reward_currency, reward_amount, issued_at) AS f FROM incentive_view ORDER BY f`
)

// debeziumSink is an analytics table fed by a Debezium change stream, as a
// sink connector applies it: create, update and snapshot read upsert the
// row under its key, delete (and a tombstone) removes it.
type debeziumSink struct {
	// schema is schemas/json/db.incentives.schema.json: every value must
	// be valid against it.
	schema     *jsonschema.Schema
	rows       map[string]kafka.IncentiveRow
	partitions map[string]int32
	// tsMs is the ts_ms of each row's last change.
	tsMs map[string]int64
}

// changeEventSchema compiles schemas/json/db.incentives.schema.json.
func changeEventSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	raw, err := schemas.JSON.ReadFile("json/db.incentives.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("db.incentives.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("db.incentives.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

func (s *debeziumSink) apply(t *testing.T, r kafka.TailRecord) {
	t.Helper()
	var key kafka.IncentiveKey
	if err := json.Unmarshal(r.Key, &key); err != nil || key.IncentiveID == "" {
		t.Fatalf("record %d/%d: key %q: %v", r.Partition, r.Offset, r.Key, err)
	}
	if p, ok := s.partitions[key.IncentiveID]; ok && p != r.Partition {
		t.Fatalf("incentive %s in partitions %d and %d: the key must place it", key.IncentiveID, p, r.Partition)
	}
	s.partitions[key.IncentiveID] = r.Partition
	if r.Value == nil {
		delete(s.rows, key.IncentiveID)
		return
	}
	if r.Headers["content-type"] != "application/json" {
		t.Fatalf("record %d/%d: content-type %q", r.Partition, r.Offset, r.Headers["content-type"])
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(r.Value))
	if err == nil {
		err = s.schema.Validate(doc)
	}
	if err != nil {
		t.Fatalf("record %d/%d is not a valid db.incentives change event: %s: %v", r.Partition, r.Offset, r.Value, err)
	}
	var ev kafka.IncentiveChangeEvent
	if err := json.Unmarshal(r.Value, &ev); err != nil {
		t.Fatalf("record %d/%d: %s: %v", r.Partition, r.Offset, r.Value, err)
	}
	switch ev.Op {
	case kafka.OpCreate, kafka.OpUpdate, kafka.OpRead:
		if ev.After == nil || ev.After.IncentiveID != key.IncentiveID {
			t.Fatalf("record %d/%d: op %s with after %+v under key %s", r.Partition, r.Offset, ev.Op, ev.After, key.IncentiveID)
		}
		s.rows[key.IncentiveID], s.tsMs[key.IncentiveID] = *ev.After, ev.TsMs
	case kafka.OpDelete:
		delete(s.rows, key.IncentiveID)
	default:
		t.Fatalf("record %d/%d: op %q", r.Partition, r.Offset, ev.Op)
	}
	if ev.Source.Table != "incentive_view" || ev.Source.Connector != "incentives" || ev.TsMs == 0 || ev.Source.TsMs != ev.TsMs {
		t.Fatalf("record %d/%d: source %+v, ts_ms %d", r.Partition, r.Offset, ev.Source, ev.TsMs)
	}
}

// The engine issues incentives; the incentives projection builds
// incentive_view equal to the engine's own incentive table, and a sink that
// applies db.incentives from its start, the way a Debezium sink would, ends
// up equal to incentive_view row by row. `incentives tail db.incentives`
// prints the change events as JSON.
func TestIncentivesProjectionAndChangeStreamEndToEnd(t *testing.T) {
	t.Parallel()
	p := startPlatform(t, testConfig(t))
	tenantID := p.newTenant("Acme")
	admin := p.token(auth.RoleTenantAdmin, uuid.MustParse(tenantID))
	p.activeCampaign(admin, `{"name":"Cashback","type":"SIMPLE","rule":{"action":"PURCHASE","condition":"event.payload.amount >= 100",
		"reward":{"type":"CASHBACK","currency":"INR","percent":"5","percentOf":"amount","maxAmount":"100"}}}`)
	p.activeCampaign(admin, `{"name":"Points","type":"SIMPLE","rule":{"action":"PURCHASE","reward":{"type":"POINTS","currency":"POINTS","amount":"10"}}}`)
	p.waitForEngineCatalog(admin, tenantID, "PURCHASE", 2)

	var actions []action
	for u := range 5 {
		for i := range 2 {
			actions = append(actions, newAction(tenantID, fmt.Sprintf("u%d", u), "PURCHASE", fmt.Sprintf(`{"amount": %d.5}`, 60+u*50+i*7)))
		}
	}
	produceActions(t, p.app.Brokers(), actions...)
	eventually(t, "every action decided", func() bool { return p.loggedEvents() == len(actions) })
	want := p.texts(engineFacts)
	// Every action earns the points; those of 100 or more also the cashback.
	if len(want) != 18 {
		t.Fatalf("the engine issued %d incentives, want 18:\n%s", len(want), strings.Join(want, "\n"))
	}
	eventually(t, "incentive_view equal to the incentive table", func() bool {
		return reflect.DeepEqual(p.texts(viewFacts), want)
	})
	view := p.viewRows()

	schema := changeEventSchema(t)
	var sink debeziumSink
	eventually(t, "the db.incentives sink equal to incentive_view", func() bool {
		sink = debeziumSink{schema: schema, rows: map[string]kafka.IncentiveRow{}, partitions: map[string]int32{}, tsMs: map[string]int64{}}
		err := kafka.Tail(context.Background(), p.app.Brokers(), kafka.IncentivesChangeTopic, false, func(r kafka.TailRecord) error {
			sink.apply(t, r)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return reflect.DeepEqual(sink.rows, view)
	})

	code, out, errOut := runCLI(t, map[string]string{"KAFKA_BROKERS": strings.Join(p.app.Brokers(), ",")}, "tail", kafka.IncentivesChangeTopic)
	if code != 0 {
		t.Fatalf("tail: exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < len(view) {
		t.Fatalf("tail printed %d lines, want at least %d", len(lines), len(view))
	}
	for _, l := range lines {
		var line tailLine
		var ev kafka.IncentiveChangeEvent
		var key kafka.IncentiveKey
		if err := json.Unmarshal([]byte(l), &line); err != nil {
			t.Fatalf("tail line %q: %v", l, err)
		}
		if err := json.Unmarshal(line.Value, &ev); err != nil || line.Raw != "" || line.Schema != "" || line.Error != "" || ev.After == nil {
			t.Fatalf("tail line %q: value not printed as the JSON envelope (%v)", l, err)
		}
		if err := json.Unmarshal([]byte(line.Key), &key); err != nil || view[key.IncentiveID] != *ev.After {
			t.Fatalf("tail line %q: key %q, after %+v, want the row %+v", l, line.Key, ev.After, view[key.IncentiveID])
		}
	}
	// A change is dated by its event's record time, not by the clock of
	// the projection that wrote it, so every copy carries the same ts_ms.
	for id, r := range view {
		var recordedAt time.Time
		if err := p.db.Pool.QueryRow(context.Background(), `SELECT recorded_at FROM event_store WHERE position = $1`, r.Position).Scan(&recordedAt); err != nil {
			t.Fatal(err)
		}
		if sink.tsMs[id] != recordedAt.UnixMilli() {
			t.Fatalf("incentive %s: ts_ms %d, want its event's recorded_at %d", id, sink.tsMs[id], recordedAt.UnixMilli())
		}
	}
}
