package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/incentives-platform/incentives/adapters/kafka"
	"github.com/incentives-platform/incentives/adapters/postgres"
	"github.com/incentives-platform/incentives/adapters/postgres/pgtest"
	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/incentive"
	"github.com/incentives-platform/incentives/domain/rules"
	"github.com/incentives-platform/incentives/projections"
)

// outboxChange is a db.incentives message as the outbox holds it.
type outboxChange struct {
	id    string
	key   string
	value kafka.IncentiveChangeEvent
	ctype string
}

// outboxChanges returns the outbox's db.incentives messages, in outbox order.
func outboxChanges(t *testing.T, db *postgres.DB) []outboxChange {
	t.Helper()
	rows, err := db.Pool.Query(context.Background(), `
		SELECT payload::text FROM watermill_outbox
		WHERE payload->>'destination_topic' = $1 ORDER BY transaction_id, "offset"`, kafka.IncentivesChangeTopic)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []outboxChange
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			t.Fatal(err)
		}
		var env struct {
			UUID     string            `json:"uuid"`
			Payload  []byte            `json:"payload"`
			Metadata map[string]string `json:"metadata"`
		}
		if err := json.Unmarshal([]byte(raw), &env); err != nil {
			t.Fatal(err)
		}
		c := outboxChange{id: env.UUID, key: env.Metadata["_kafka_key"], ctype: env.Metadata[kafka.HeaderContentType]}
		if err := json.Unmarshal(env.Payload, &c.value); err != nil {
			t.Fatalf("change event %s: %v", env.Payload, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func countRows(t *testing.T, db *postgres.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.Pool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func issuedDelivery(id uuid.UUID, version, offset int64, amount string, recordedAt time.Time) projections.Delivery {
	issued := incentive.Issued{
		IncentiveID: id, DecisionID: uuid.New(), TenantID: uuid.New(), CampaignID: uuid.New(), CampaignVersion: 2,
		UserID: "u1", SourceEventID: uuid.New(), RewardType: rules.RewardCashback, RewardCurrency: "INR",
		RewardAmount: decimal.RequireFromString(amount), IssuedAt: time.Date(2026, 11, 25, 8, 0, 0, 123e6, time.UTC),
	}
	return projections.Delivery{
		Event: domain.RecordedEvent{Position: 100 + offset, Stream: incentive.Stream(id), Version: version, Event: issued,
			RecordedAt: recordedAt},
		Checkpoint: projections.Checkpoint{Projection: projections.IncentivesName, Topic: "ic.domain.incentive", Partition: 1,
			Offset: offset, Position: 100 + offset},
	}
}

// A delivery writes the row, its change event and the checkpoint; the same
// delivery again writes no second row and no second message, and still
// moves the checkpoint.
func TestIncentiveViewsWriteRowChangeEventAndCheckpointOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.MustOpen(t)
	p := projections.NewIncentives(postgres.NewIncentiveViews(db, kafka.IncentiveChanges{Database: db.DatabaseName()}))
	id := uuid.New()
	recordedAt := time.Date(2026, 11, 25, 8, 0, 1, 456e6, time.UTC)
	d := issuedDelivery(id, 1, 7, "12.5", recordedAt)
	for range 2 {
		if err := p.Handle(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if n := countRows(t, db, `SELECT count(*) FROM incentive_view WHERE incentive_id = $1`, id); n != 1 {
		t.Fatalf("%d rows, want 1", n)
	}
	var amount, issuedAt string
	var position, version int64
	if err := db.Pool.QueryRow(ctx, `SELECT reward_amount::text, to_char(issued_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
		position, version FROM incentive_view WHERE incentive_id = $1`, id).Scan(&amount, &issuedAt, &position, &version); err != nil {
		t.Fatal(err)
	}
	changes := outboxChanges(t, db)
	if len(changes) != 1 {
		t.Fatalf("%d db.incentives messages in the outbox, want 1", len(changes))
	}
	c := changes[0]
	e := d.Event.Event.(incentive.Issued)
	want := kafka.IncentiveRow{
		IncentiveID: id.String(), TenantID: e.TenantID.String(), CampaignID: e.CampaignID.String(), CampaignVersion: 2,
		DecisionID: e.DecisionID.String(), UserID: "u1", SourceEventID: e.SourceEventID.String(), RewardType: "CASHBACK",
		RewardCurrency: "INR", RewardAmount: amount, IssuedAt: issuedAt, Position: position, Version: version,
	}
	v := c.value
	if v.Before != nil || v.After == nil || *v.After != want || v.Op != kafka.OpCreate || v.TsMs != recordedAt.UnixMilli() {
		t.Fatalf("change event %+v (after %+v), want op c, after %+v, ts_ms %d", v, v.After, want, recordedAt.UnixMilli())
	}
	if want.RewardAmount != "12.5000" || want.IssuedAt != "2026-11-25T08:00:00.123Z" || want.Position != 107 || want.Version != 1 {
		t.Fatalf("the table holds %+v", want)
	}
	wantSource := kafka.ChangeSource{Version: "incentives-1", Connector: "incentives", Name: "db", TsMs: recordedAt.UnixMilli(),
		Snapshot: "false", DB: db.DatabaseName(), Schema: "public", Table: "incentive_view", Position: 107, StreamVersion: 1}
	if v.Source != wantSource {
		t.Fatalf("source %+v, want %+v", v.Source, wantSource)
	}
	if c.key != `{"incentive_id":"`+id.String()+`"}` || c.ctype != "application/json" || c.id == "" {
		t.Fatalf("message id %q key %q content-type %q", c.id, c.key, c.ctype)
	}
	cps, err := db.Checkpoints(ctx, projections.IncentivesName)
	if err != nil || len(cps) != 1 || cps[0] != d.Checkpoint {
		t.Fatalf("checkpoints %+v, %v; want %+v", cps, err, d.Checkpoint)
	}

	// A later version of the stream updates the row: op "u" with the row before.
	later := issuedDelivery(id, 2, 8, "3", recordedAt.Add(time.Second))
	if err := p.Handle(ctx, later); err != nil {
		t.Fatal(err)
	}
	if err := p.Handle(ctx, d); err != nil { // an older redelivery after it changes nothing
		t.Fatal(err)
	}
	changes = outboxChanges(t, db)
	if len(changes) != 2 {
		t.Fatalf("%d db.incentives messages after an update and a stale redelivery, want 2", len(changes))
	}
	u := changes[1].value
	if u.Op != kafka.OpUpdate || u.Before == nil || *u.Before != want || u.After == nil || u.After.RewardAmount != "3.0000" ||
		u.After.Version != 2 || u.Source.StreamVersion != 2 || changes[1].id == c.id {
		t.Fatalf("update %+v (before %+v, after %+v)", u, u.Before, u.After)
	}
	if cps, _ := db.Checkpoints(ctx, projections.IncentivesName); len(cps) != 1 || cps[0] != d.Checkpoint {
		t.Fatalf("checkpoints %+v, want the last delivery's %+v", cps, d.Checkpoint)
	}
}

// An amount the column cannot hold is unprojectable (the runner sends it to
// the DLQ), and the transaction leaves nothing behind: no row, no change
// event, no checkpoint.
func TestIncentiveViewsUnprojectableEventWritesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.MustOpen(t)
	p := projections.NewIncentives(postgres.NewIncentiveViews(db, kafka.IncentiveChanges{}))
	err := p.Handle(ctx, issuedDelivery(uuid.New(), 1, 1, "1e17", time.Now()))
	if !errors.Is(err, projections.ErrUnprojectable) {
		t.Fatalf("Handle = %v, want ErrUnprojectable", err)
	}
	if n := countRows(t, db, `SELECT count(*) FROM incentive_view`); n != 0 {
		t.Fatalf("%d rows", n)
	}
	if n := countRows(t, db, `SELECT count(*) FROM watermill_outbox`); n != 0 {
		t.Fatalf("%d outbox rows", n)
	}
	if n := countRows(t, db, `SELECT count(*) FROM projection_checkpoint`); n != 0 {
		t.Fatalf("%d checkpoints", n)
	}
}

// Two deliveries of one new incentive at once (a rebalance hands the
// partition over mid-delivery) create one row and one change event.
func TestIncentiveViewsConcurrentDeliveriesCreateOneRow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.MustOpen(t)
	p := projections.NewIncentives(postgres.NewIncentiveViews(db, kafka.IncentiveChanges{}))
	for range 20 {
		d := issuedDelivery(uuid.New(), 1, 1, "1", time.Now())
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Go(func() { errs[i] = p.Handle(ctx, d) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
	}
	if n := countRows(t, db, `SELECT count(*) FROM incentive_view`); n != 20 {
		t.Fatalf("%d rows, want 20", n)
	}
	if n := len(outboxChanges(t, db)); n != 20 {
		t.Fatalf("%d change events, want 20", n)
	}
}
