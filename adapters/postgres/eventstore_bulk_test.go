package postgres_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/incentives-platform/incentives/adapters/postgres"
	"github.com/incentives-platform/incentives/adapters/postgres/pgtest"
	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/engine"
	"github.com/incentives-platform/incentives/domain/incentive"
	"github.com/incentives-platform/incentives/domain/rules"
	"github.com/incentives-platform/incentives/domain/tenant"
)

func issuedCreates(n int) []postgres.StreamCreate {
	tenants := []uuid.UUID{uuid.New(), uuid.New()}
	out := make([]postgres.StreamCreate, n)
	for i := range out {
		d := engine.Decision{ID: uuid.New(), TenantID: tenants[i%2], UserID: "u", CampaignID: uuid.New(), CampaignVer: int64(i + 1),
			SourceEventID: uuid.New(), Outcome: engine.OutcomeIssued, DecidedAt: time.Date(2026, 3, 14, 10, i, 0, 0, time.UTC),
			Reward: &engine.Reward{Type: rules.RewardCashback, Currency: "INR", Amount: decimal.New(int64(1275+i), -2)}}
		inc := engine.NewIncentive(d)
		out[i] = postgres.StreamCreate{Stream: incentive.Stream(inc.ID), Event: incentive.IssuedEvent(inc),
			Meta: domain.Metadata{TenantID: inc.TenantID, CorrelationID: inc.SourceEventID.String(), CausationID: d.ID.String(), Actor: "system:engine"}}
	}
	// One stream of another aggregate, between the others: topic runs.
	id := uuid.New()
	out[n/2] = postgres.StreamCreate{Stream: tenant.Stream(id), Event: tenant.Created{TenantID: id, Name: "Acme", CreatedAt: time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)},
		Meta: domain.Metadata{TenantID: id, Actor: "platform-admin:ops"}}
	return out
}

type storedEvent struct {
	Position                int64
	EventID, AggregateID    uuid.UUID
	Stream, Aggregate, Type string
	Version                 int64
	SchemaVersion           int
	TenantID                *uuid.UUID
	Payload, Metadata       string
}

func storedEvents(t *testing.T, db *postgres.DB) []storedEvent {
	t.Helper()
	rows, err := db.Pool.Query(context.Background(), `SELECT position, event_id, aggregate_id, stream_id, aggregate, event_type, version,
		schema_version, tenant_id, payload::text, metadata::text FROM event_store ORDER BY position`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []storedEvent
	for rows.Next() {
		var e storedEvent
		if err := rows.Scan(&e.Position, &e.EventID, &e.AggregateID, &e.Stream, &e.Aggregate, &e.Type, &e.Version, &e.SchemaVersion,
			&e.TenantID, &e.Payload, &e.Metadata); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// outboxPayloads returns the outbox rows' envelopes as generic JSON, without
// what two writes cannot share: the recorded-at header, and the row's uuid
// (the forwarder gives each envelope a random one).
func outboxPayloads(t *testing.T, db *postgres.DB) []map[string]any {
	t.Helper()
	rows, err := db.Pool.Query(context.Background(), `SELECT payload::text, metadata::text FROM watermill_outbox ORDER BY transaction_id, "offset"`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []map[string]any
	for rows.Next() {
		var payload, meta string
		if err := rows.Scan(&payload, &meta); err != nil {
			t.Fatal(err)
		}
		var env map[string]any
		if err := json.Unmarshal([]byte(payload), &env); err != nil {
			t.Fatal(err)
		}
		delete(env["metadata"].(map[string]any), "recorded-at")
		env["row.metadata"] = meta
		out = append(out, env)
	}
	return out
}

func inTestTx(t *testing.T, db *postgres.DB, fn func(*sql.Tx) error) {
	t.Helper()
	tx, err := db.SQL.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// The bulk path of new single-event streams writes exactly what appending
// each stream at expected version 0 writes: the same events, positions and
// outbox rows, in the same order.
func TestCreateStreamsWritesWhatAppendWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	creates := issuedCreates(7)

	one, bulk := pgtest.MustOpen(t), pgtest.MustOpen(t)
	oneStore, bulkStore := postgres.NewTestEventStore(t, one), postgres.NewTestEventStore(t, bulk)
	var oneRecs, bulkRecs []domain.RecordedEvent
	inTestTx(t, one, func(tx *sql.Tx) error {
		for _, c := range creates {
			recs, err := oneStore.AppendTx(ctx, tx, c.Meta, domain.StreamAppend{Stream: c.Stream, Events: []domain.Event{c.Event}})
			if err != nil {
				return err
			}
			oneRecs = append(oneRecs, recs...)
		}
		return nil
	})
	inTestTx(t, bulk, func(tx *sql.Tx) error {
		var err error
		bulkRecs, err = bulkStore.CreateStreamsTx(ctx, tx, creates)
		return err
	})

	for i := range oneRecs {
		if oneRecs[i].RecordedAt.IsZero() || bulkRecs[i].RecordedAt.IsZero() {
			t.Errorf("recorded event %d has no RecordedAt", i)
		}
		oneRecs[i].RecordedAt, bulkRecs[i].RecordedAt = time.Time{}, time.Time{}
	}
	if !reflect.DeepEqual(bulkRecs, oneRecs) {
		t.Errorf("bulk returned %+v\nappend returned %+v", bulkRecs, oneRecs)
	}
	if got, want := storedEvents(t, bulk), storedEvents(t, one); !reflect.DeepEqual(got, want) {
		t.Errorf("bulk stored\n%+v\nappend stored\n%+v", got, want)
	}
	got, want := outboxPayloads(t, bulk), outboxPayloads(t, one)
	if len(want) != len(creates) || !reflect.DeepEqual(got, want) {
		t.Errorf("bulk outbox\n%v\nappend outbox\n%v", got, want)
	}
	// The events read back through the store's own reader.
	for _, c := range creates {
		events, v, err := bulkStore.Load(ctx, c.Stream)
		if len(events) != 1 {
			t.Fatalf("Load(%s) = %d events (%v), want 1", c.Stream, len(events), err)
		}
		if got, ok := events[0].(incentive.Issued); ok && got.RewardAmount.Equal(c.Event.(incentive.Issued).RewardAmount) {
			got.RewardAmount = c.Event.(incentive.Issued).RewardAmount // 12.80 reads back as 12.8
			events[0] = got
		}
		if err != nil || v != 1 || !reflect.DeepEqual(events, []domain.Event{c.Event}) {
			t.Errorf("Load(%s) = %+v v%d, %v", c.Stream, events, v, err)
		}
	}

	// A stream that exists already is a version conflict, and nothing of
	// the bulk is written.
	again := append(issuedCreates(2), creates[0])
	tx, err := bulk.SQL.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := bulkStore.CreateStreamsTx(ctx, tx, again); !errors.Is(err, domain.ErrVersionConflict) {
		t.Fatalf("creating an existing stream: %v, want ErrVersionConflict", err)
	}
}
