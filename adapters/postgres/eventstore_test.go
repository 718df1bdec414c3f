package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/adapters/eventstoretest"
	"github.com/incentives-platform/incentives/adapters/postgres"
	"github.com/incentives-platform/incentives/adapters/postgres/pgtest"
	"github.com/incentives-platform/incentives/commands"
	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/limits"
	"github.com/incentives-platform/incentives/domain/tenant"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	eventstoretest.Run(t, func(t *testing.T) commands.EventStore {
		return postgres.NewTestEventStore(t, pgtest.MustOpen(t))
	})
}

type envelope struct {
	DestinationTopic string            `json:"destination_topic"`
	UUID             string            `json:"uuid"`
	Metadata         map[string]string `json:"metadata"`
}

func outboxRows(t *testing.T, db *postgres.DB) []envelope {
	t.Helper()
	rows, err := db.Pool.Query(context.Background(), `SELECT payload::text FROM watermill_outbox ORDER BY transaction_id, "offset"`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []envelope
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			t.Fatal(err)
		}
		var e envelope
		if err := json.Unmarshal([]byte(raw), &e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func TestAppendWritesOutboxInTheSameTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.MustOpen(t)
	store := postgres.NewTestEventStore(t, db)
	id := uuid.New()
	now := time.Now().UTC().Truncate(time.Millisecond)
	meta := domain.Metadata{TenantID: id, CorrelationID: "req-42", Actor: "platform-admin:ops"}

	recs, err := store.Append(ctx, meta,
		domain.StreamAppend{Stream: tenant.Stream(id), Events: []domain.Event{tenant.Created{TenantID: id, Name: "Acme", CreatedAt: now}}},
		domain.StreamAppend{Stream: limits.Stream(id), Events: []domain.Event{limits.Defined{TenantID: id, DefinedAt: now}}},
	)
	if err != nil {
		t.Fatal(err)
	}
	got := outboxRows(t, db)
	if len(got) != 2 {
		t.Fatalf("outbox has %d rows, want 2", len(got))
	}
	for i, want := range []struct{ topic, eventType string }{{"ic.domain.tenant", tenant.CreatedType}, {"ic.domain.limits", limits.DefinedType}} {
		e := got[i]
		if e.DestinationTopic != want.topic || e.UUID != recs[i].EventID.String() || e.Metadata["event-type"] != want.eventType ||
			e.Metadata["tenant-id"] != id.String() || e.Metadata["correlation-id"] != "req-42" || e.Metadata["_kafka_key"] != id.String() ||
			e.Metadata["position"] != fmt.Sprint(recs[i].Position) {
			t.Errorf("outbox row %d = %+v", i, e)
		}
	}

	// A refused append leaves neither events nor outbox rows.
	_, err = store.Append(ctx, meta,
		domain.StreamAppend{Stream: tenant.Stream(uuid.New()), Events: []domain.Event{tenant.Created{TenantID: id, Name: "B", CreatedAt: now}}},
		domain.StreamAppend{Stream: tenant.Stream(id), Events: []domain.Event{tenant.Created{TenantID: id, Name: "dup", CreatedAt: now}}},
	)
	if !errors.Is(err, domain.ErrVersionConflict) {
		t.Fatalf("error = %v, want ErrVersionConflict", err)
	}
	var events int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM event_store`).Scan(&events); err != nil {
		t.Fatal(err)
	}
	if n := len(outboxRows(t, db)); events != 2 || n != 2 {
		t.Fatalf("after a refused append: %d events and %d outbox rows, want 2 and 2", events, n)
	}
}

func TestEventMetadataIsStored(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.MustOpen(t)
	store := postgres.NewTestEventStore(t, db)
	id := uuid.New()
	meta := domain.Metadata{TenantID: id, CorrelationID: "c-1", CausationID: "e-9", Actor: "tenant-admin:alice"}
	if _, err := store.Append(ctx, meta, domain.StreamAppend{Stream: tenant.Stream(id),
		Events: []domain.Event{tenant.Created{TenantID: id, Name: "Acme", CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}}}); err != nil {
		t.Fatal(err)
	}
	recs := readAllEventually(t, store, postgres.Cursor{}, 1)
	if recs[0].Metadata != meta {
		t.Fatalf("metadata read back = %+v, want %+v", recs[0].Metadata, meta)
	}
	var typ string
	var schemaVersion int
	if err := db.Pool.QueryRow(ctx, `SELECT event_type, schema_version FROM event_store`).Scan(&typ, &schemaVersion); err != nil ||
		typ != tenant.CreatedType || schemaVersion != 1 {
		t.Fatalf("stored type %q version %d (%v)", typ, schemaVersion, err)
	}
}

// The outbox tables come from a migration, not from watermill at run time;
// they must stay what watermill-sql's schema adapters would create.
func TestOutboxTablesMatchWatermill(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.MustOpen(t)
	if _, err := db.Pool.Exec(ctx, `CREATE SCHEMA wm`); err != nil {
		t.Fatal(err)
	}
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SET search_path TO wm`); err != nil {
		t.Fatal(err)
	}
	queries := append(wsql.DefaultPostgreSQLSchema{}.SchemaInitializingQueries(postgres.OutboxTopic),
		wsql.DefaultPostgreSQLOffsetsAdapter{}.SchemaInitializingQueries(postgres.OutboxTopic)...)
	for _, q := range queries {
		if _, err := conn.Exec(ctx, q.Query, q.Args...); err != nil {
			t.Fatal(err)
		}
	}
	describe := func(schema string) string {
		var columns, indexes string
		err := db.Pool.QueryRow(ctx, `
			SELECT string_agg(table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || coalesce(column_default, ''), E'\n' ORDER BY table_name, ordinal_position)
			FROM information_schema.columns WHERE table_schema = $1 AND table_name LIKE 'watermill%'`, schema).Scan(&columns)
		if err != nil {
			t.Fatal(err)
		}
		err = db.Pool.QueryRow(ctx, `SELECT string_agg(indexdef, E'\n' ORDER BY indexname) FROM pg_indexes WHERE schemaname = $1 AND tablename LIKE 'watermill%'`, schema).Scan(&indexes)
		if err != nil {
			t.Fatal(err)
		}
		return strings.NewReplacer(schema+".", "", "'"+schema+".", "'").Replace(columns + "\n" + indexes)
	}
	if ours, theirs := describe("public"), describe("wm"); ours != theirs {
		t.Fatalf("migrated outbox tables differ from watermill's:\nours:\n%s\nwatermill:\n%s", ours, theirs)
	}
}

func TestMigrateTwiceIsANoOp(t *testing.T) {
	t.Parallel()
	db := pgtest.MustOpen(t)
	applied, err := postgres.Migrate(context.Background(), db, discardLogger())
	if err != nil || len(applied) != 0 {
		t.Fatalf("second Migrate applied %v, %v; want nothing", applied, err)
	}
}

// readAllEventually reads from after until want events are visible. Visibility
// can lag: a transaction still running anywhere on the server (another
// test's CREATE DATABASE, say) holds back the snapshot's xmin.
func readAllEventually(t *testing.T, store *postgres.EventStore, after postgres.Cursor, want int) []domain.RecordedEvent {
	t.Helper()
	var out []domain.RecordedEvent
	deadline := time.Now().Add(15 * time.Second)
	for len(out) < want {
		recs, next, err := store.ReadAll(context.Background(), after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		out, after = append(out, recs...), next
		if time.Now().After(deadline) {
			t.Fatalf("ReadAll returned %d events in 15s, want %d", len(out), want)
		}
		if len(recs) == 0 {
			time.Sleep(10 * time.Millisecond)
		}
	}
	return out
}
