package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/incentives-platform/incentives/domain"
)

// OutboxTopic is the watermill-sql topic of the outbox (table watermill_outbox).
const OutboxTopic = "outbox"

// EventCodec is how the store writes events into its payload column and reads
// them back. It must be safe for concurrent use.
type EventCodec interface {
	EncodeJSON(domain.Event) (schemaVersion int, payload []byte, err error)
	DecodeJSON(eventType string, payload []byte) (domain.Event, error)
}

// OutboxMapper turns a recorded event into the message the relay will publish
// and names its destination topic. It must be safe for concurrent use.
type OutboxMapper interface {
	OutboxMessage(domain.RecordedEvent) (topic string, msg *message.Message, err error)
}

// EventStoreConfig configures an EventStore.
type EventStoreConfig struct {
	// Codec encodes event payloads. Required.
	Codec EventCodec
	// Outbox maps events to outbox messages. Required.
	Outbox OutboxMapper
}

// Validate reports every missing field.
func (c EventStoreConfig) Validate() error {
	var errs []error
	if c.Codec == nil {
		errs = append(errs, errors.New("event store: Codec is required"))
	}
	if c.Outbox == nil {
		errs = append(errs, errors.New("event store: Outbox is required"))
	}
	return errors.Join(errs...)
}

// EventStore is the append-only event store with its transactional outbox.
// It is safe for concurrent use.
type EventStore struct {
	db  *DB
	cfg EventStoreConfig
}

// NewEventStore returns an event store over db.
func NewEventStore(db *DB, cfg EventStoreConfig) (*EventStore, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &EventStore{db: db, cfg: cfg}, nil
}

// Load returns the events of stream, oldest first, and the stream's version
// (0, with no events, for a stream that does not exist).
func (s *EventStore) Load(ctx context.Context, stream domain.StreamID) ([]domain.Event, int64, error) {
	rows, err := s.db.Pool.Query(ctx,
		`SELECT version, event_type, payload FROM event_store WHERE stream_id = $1 ORDER BY version`, stream.String())
	if err != nil {
		return nil, 0, fmt.Errorf("load stream %s: %w", stream, err)
	}
	defer rows.Close()
	var (
		events  []domain.Event
		version int64
		typ     string
		payload []byte
	)
	for rows.Next() {
		if err := rows.Scan(&version, &typ, &payload); err != nil {
			return nil, 0, fmt.Errorf("load stream %s: %w", stream, err)
		}
		e, err := s.cfg.Codec.DecodeJSON(typ, payload)
		if err != nil {
			return nil, 0, fmt.Errorf("load stream %s version %d: %w", stream, version, err)
		}
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("load stream %s: %w", stream, err)
	}
	return events, version, nil
}

// Append records the events of every given stream in one transaction, with
// their outbox messages, and returns them as recorded. If any stream is not at
// its ExpectedVersion it writes nothing and returns an error wrapping
// domain.ErrVersionConflict.
//
// ExpectedVersion must be a version the caller has observed (by Load) before
// calling: then a stream's next version is always written by a transaction
// that began after the previous version committed, so ordering the outbox and
// catch-up reads by transaction id also keeps every stream in version order.
func (s *EventStore) Append(ctx context.Context, meta domain.Metadata, appends ...domain.StreamAppend) ([]domain.RecordedEvent, error) {
	tx, err := s.db.SQL.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("append: begin: %w", err)
	}
	recorded, err := s.appendTx(ctx, tx, meta, appends)
	if err != nil {
		return nil, errors.Join(err, ignoreTxDone(tx.Rollback()))
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("append: commit: %w", err)
	}
	return recorded, nil
}

func ignoreTxDone(err error) error {
	if errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return err
}

func (s *EventStore) appendTx(ctx context.Context, tx *sql.Tx, meta domain.Metadata, appends []domain.StreamAppend) ([]domain.RecordedEvent, error) {
	var tenantID any
	if meta.TenantID != uuid.Nil {
		tenantID = meta.TenantID
	}
	metaJSON, err := json.Marshal(encodeMetadata(meta))
	if err != nil {
		return nil, err
	}
	var recorded []domain.RecordedEvent
	for _, a := range appends {
		recs, err := s.insertStream(ctx, tx, a, meta, tenantID, string(metaJSON))
		if err != nil {
			return nil, err
		}
		recorded = append(recorded, recs...)
	}
	if len(recorded) == 0 {
		return nil, nil
	}
	if err := s.publishToOutbox(tx, recorded); err != nil {
		return nil, err
	}
	return recorded, nil
}

// insertStream writes one stream's events in a single statement that inserts
// nothing unless the stream's head is still the expected version: a stale
// version inserts nothing, a racing writer of the same version meets the
// unique constraint, and a version the stream never reached inserts nothing.
func (s *EventStore) insertStream(ctx context.Context, tx *sql.Tx, a domain.StreamAppend, meta domain.Metadata, tenantID any, metaJSON string) ([]domain.RecordedEvent, error) {
	if len(a.Events) == 0 {
		return nil, nil
	}
	const cols = 10
	recs := make([]domain.RecordedEvent, len(a.Events))
	args := make([]any, 0, 2+len(a.Events)*cols)
	args = append(args, a.Stream.String(), a.ExpectedVersion)
	var q strings.Builder
	q.WriteString(`INSERT INTO event_store (event_id, stream_id, aggregate, aggregate_id, version, event_type, schema_version, tenant_id, payload, metadata)
		SELECT v.* FROM (VALUES `)
	for i, e := range a.Events {
		schemaVersion, payload, err := s.cfg.Codec.EncodeJSON(e)
		if err != nil {
			return nil, fmt.Errorf("append to %s: %w", a.Stream, err)
		}
		version := a.ExpectedVersion + int64(i) + 1
		recs[i] = domain.RecordedEvent{EventID: domain.EventID(a.Stream, version), Stream: a.Stream, Version: version, Event: e, Metadata: meta}
		if i > 0 {
			q.WriteByte(',')
		}
		n := len(args)
		fmt.Fprintf(&q, "($%d::uuid,$%d::text,$%d::text,$%d::uuid,$%d::bigint,$%d::text,$%d::int,$%d::uuid,$%d::jsonb,$%d::jsonb)",
			n+1, n+2, n+3, n+4, n+5, n+6, n+7, n+8, n+9, n+10)
		args = append(args, recs[i].EventID, a.Stream.String(), a.Stream.Aggregate, a.Stream.ID, version,
			e.EventType(), schemaVersion, tenantID, string(payload), metaJSON)
	}
	q.WriteString(`) AS v WHERE (SELECT coalesce(max(version), 0) FROM event_store WHERE stream_id = $1) = $2
		RETURNING position, recorded_at`)
	rows, err := tx.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, conflictOrErr(err)
	}
	defer rows.Close()
	n := 0
	for ; rows.Next(); n++ {
		if err := rows.Scan(&recs[n].Position, &recs[n].RecordedAt); err != nil {
			return nil, err
		}
		recs[n].RecordedAt = recs[n].RecordedAt.UTC()
	}
	if err := rows.Err(); err != nil {
		return nil, conflictOrErr(err)
	}
	if n != len(recs) {
		return nil, fmt.Errorf("stream %s is not at version %d: %w", a.Stream, a.ExpectedVersion, domain.ErrVersionConflict)
	}
	return recs, nil
}

// conflictOrErr maps the (stream, version) unique violation, which a writer
// racing past the head check meets, to domain.ErrVersionConflict.
func conflictOrErr(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "event_store_stream_version_key" {
		return fmt.Errorf("append: %s: %w", pgErr.Detail, domain.ErrVersionConflict)
	}
	return fmt.Errorf("append: %w", err)
}

// maxOutboxInsert bounds the messages of one outbox INSERT: watermill-sql
// binds three parameters per message, and Postgres takes at most 65535.
const maxOutboxInsert = 10_000

// publishToOutbox writes the events' messages through watermill-sql into the
// same transaction, wrapped in forwarder envelopes that name each message's
// Kafka topic. Each run of consecutive messages bound for one topic is one
// Publish, so one INSERT: the rows are the same, in the same order, as one
// Publish per message would write, in far fewer round trips.
func (s *EventStore) publishToOutbox(tx *sql.Tx, recorded []domain.RecordedEvent) error {
	outbox, err := outboxPublisher(tx)
	if err != nil {
		return err
	}
	var (
		runTopic string
		run      []*message.Message
	)
	flush := func() error {
		if len(run) == 0 {
			return nil
		}
		if err := outbox.Publish(runTopic, run...); err != nil {
			return fmt.Errorf("outbox: %w", err)
		}
		run = run[:0]
		return nil
	}
	for _, rec := range recorded {
		topic, msg, err := s.cfg.Outbox.OutboxMessage(rec)
		if err != nil {
			return fmt.Errorf("outbox message of %s v%d: %w", rec.Stream, rec.Version, err)
		}
		if topic != runTopic || len(run) == maxOutboxInsert {
			if err := flush(); err != nil {
				return err
			}
			runTopic = topic
		}
		run = append(run, msg)
	}
	return flush()
}

// streamCreate is one new stream of a bulk append: one event, at version 1,
// with metadata of its own (the streams of one batch belong to many tenants).
type streamCreate struct {
	Meta   domain.Metadata
	Stream domain.StreamID
	Event  domain.Event
}

// createStreamsTx records many new single-event streams in tx, with their
// outbox messages, in one INSERT and one outbox INSERT per topic run: what
// appendTx would write for each as a StreamAppend at ExpectedVersion 0, but
// without a statement per stream (the engine issues thousands per batch).
// A stream that exists already meets the (stream_id, version) constraint:
// the error wraps domain.ErrVersionConflict and tx is no longer usable.
// Positions follow the order of creates, as appendTx's would.
func (s *EventStore) createStreamsTx(ctx context.Context, tx *sql.Tx, creates []streamCreate) ([]domain.RecordedEvent, error) {
	if len(creates) == 0 {
		return nil, nil
	}
	n := len(creates)
	var (
		eventIDs, aggIDs     = make([]uuid.UUID, n), make([]uuid.UUID, n)
		streams, aggs, types = make([]string, n), make([]string, n), make([]string, n)
		schemaVersions       = make([]int32, n)
		tenants              = make([]pgtype.UUID, n)
		payloads, metas      = make([]string, n), make([]string, n)
		recs                 = make([]domain.RecordedEvent, n)
		index                = make(map[uuid.UUID]int, n)
		metaJSON             = map[domain.Metadata]string{}
	)
	for i, c := range creates {
		schemaVersion, payload, err := s.cfg.Codec.EncodeJSON(c.Event)
		if err != nil {
			return nil, fmt.Errorf("append to %s: %w", c.Stream, err)
		}
		md, ok := metaJSON[c.Meta]
		if !ok {
			b, err := json.Marshal(encodeMetadata(c.Meta))
			if err != nil {
				return nil, err
			}
			md = string(b)
			metaJSON[c.Meta] = md
		}
		recs[i] = domain.RecordedEvent{EventID: domain.EventID(c.Stream, 1), Stream: c.Stream, Version: 1, Event: c.Event, Metadata: c.Meta}
		if _, dup := index[recs[i].EventID]; dup {
			return nil, fmt.Errorf("stream %s created twice in one append: %w", c.Stream, domain.ErrVersionConflict)
		}
		index[recs[i].EventID] = i
		eventIDs[i], streams[i], aggs[i], aggIDs[i] = recs[i].EventID, c.Stream.String(), c.Stream.Aggregate, c.Stream.ID
		types[i], schemaVersions[i], payloads[i], metas[i] = c.Event.EventType(), int32(schemaVersion), string(payload), md
		tenants[i] = pgtype.UUID{Bytes: c.Meta.TenantID, Valid: c.Meta.TenantID != uuid.Nil}
	}
	rows, err := tx.QueryContext(ctx, `
		INSERT INTO event_store (event_id, stream_id, aggregate, aggregate_id, version, event_type, schema_version, tenant_id, payload, metadata)
		SELECT e.event_id, e.stream_id, e.aggregate, e.aggregate_id, 1, e.event_type, e.schema_version, e.tenant_id, e.payload::jsonb, e.metadata::jsonb
		FROM unnest($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::text[], $6::int[], $7::uuid[], $8::text[], $9::text[])
		     WITH ORDINALITY AS e(event_id, stream_id, aggregate, aggregate_id, event_type, schema_version, tenant_id, payload, metadata, ord)
		ORDER BY e.ord
		RETURNING event_id, position, recorded_at`,
		eventIDs, streams, aggs, aggIDs, types, schemaVersions, tenants, payloads, metas)
	if err != nil {
		return nil, conflictOrErr(err)
	}
	defer rows.Close()
	got := 0
	for rows.Next() {
		var (
			id  uuid.UUID
			pos int64
			at  time.Time
		)
		if err := rows.Scan(&id, &pos, &at); err != nil {
			return nil, err
		}
		i, ok := index[id]
		if !ok {
			return nil, fmt.Errorf("append: the store returned event %s, which was not appended", id)
		}
		recs[i].Position, recs[i].RecordedAt = pos, at.UTC()
		got++
	}
	if err := rows.Err(); err != nil {
		return nil, conflictOrErr(err)
	}
	if got != n {
		return nil, fmt.Errorf("append: %d of %d new streams recorded", got, n)
	}
	if err := s.publishToOutbox(tx, recs); err != nil {
		return nil, err
	}
	return recs, nil
}

func encodeMetadata(meta domain.Metadata) metadataJSON {
	md := metadataJSON{CorrelationID: meta.CorrelationID, CausationID: meta.CausationID, Actor: meta.Actor}
	if meta.TenantID != uuid.Nil {
		md.TenantID = meta.TenantID.String()
	}
	return md
}

type metadataJSON struct {
	TenantID      string `json:"tenantId,omitempty"`
	CorrelationID string `json:"correlationId,omitempty"`
	CausationID   string `json:"causationId,omitempty"`
	Actor         string `json:"actor,omitempty"`
}

// Cursor is a catch-up reader's place in the store: the commit-visibility
// order (transaction id, then position) of the last event read. The zero
// Cursor is before the first event.
type Cursor struct {
	TransactionID uint64
	Position      int64
}

// String returns "<transaction id>:<position>", which ParseCursor reads.
func (c Cursor) String() string {
	return strconv.FormatUint(c.TransactionID, 10) + ":" + strconv.FormatInt(c.Position, 10)
}

// ParseCursor reads a Cursor written by Cursor.String.
func ParseCursor(s string) (Cursor, error) {
	tx, pos, ok := strings.Cut(s, ":")
	t, err1 := strconv.ParseUint(tx, 10, 64)
	p, err2 := strconv.ParseInt(pos, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return Cursor{}, fmt.Errorf("cursor %q: want <transaction id>:<position>", s)
	}
	return Cursor{TransactionID: t, Position: p}, nil
}

// ReadAll returns up to limit events after cursor, in commit-visibility order,
// and the cursor of the last one (cursor itself when there is none).
//
// Positions are assigned at insert, not at commit: a transaction holding
// position 7 may commit after one holding position 8. A reader that trusted
// positions alone would read 8, move its cursor past 7, and never see 7.
// ReadAll orders by transaction id and reads only transactions older than
// every transaction still running (the snapshot's xmin), so whatever it has
// not returned yet can still only appear after its cursor.
func (s *EventStore) ReadAll(ctx context.Context, after Cursor, limit int) ([]domain.RecordedEvent, Cursor, error) {
	events, cursor, _, err := s.ReadAllOf(ctx, after, limit, nil)
	return events, cursor, err
}

// ReadAllOf is ReadAll of the events of the given aggregates only (all of
// them when nil): a replay reads and decodes only what it folds. The cursor
// moves past the events it skips, up to the last one it examined, so a
// reader of a rare aggregate does not read the same stretch twice. more
// reports a full page examined: there may be more to read.
func (s *EventStore) ReadAllOf(ctx context.Context, after Cursor, limit int, aggregates []string) (_ []domain.RecordedEvent, _ Cursor, more bool, _ error) {
	raw, next, more, err := s.readRaw(ctx, after, limit, aggregates)
	if err != nil {
		return nil, after, false, err
	}
	events, err := s.decode(raw, true)
	if err != nil {
		return nil, after, false, err
	}
	return events, next, more, nil
}

// rawEvent is a row of the event store, its payload and metadata not yet
// decoded.
type rawEvent struct {
	rec           domain.RecordedEvent
	typ           string
	payload, meta []byte
}

// readRaw is ReadAllOf's query: the rows of the page, undecoded.
func (s *EventStore) readRaw(ctx context.Context, after Cursor, limit int, aggregates []string) (_ []rawEvent, _ Cursor, more bool, _ error) {
	rows, err := s.db.Pool.Query(ctx, `
		WITH page AS (
			SELECT transaction_id, position, event_id, aggregate, aggregate_id, version, event_type, payload, metadata, recorded_at
			FROM event_store
			WHERE (transaction_id, position) > ($1::text::xid8, $2)
			  AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
			ORDER BY transaction_id, position
			LIMIT $3)
		SELECT transaction_id::text, position, event_id, aggregate, aggregate_id, version, event_type,
		       CASE WHEN $4::text[] IS NULL OR aggregate = ANY($4) THEN payload END, metadata, recorded_at
		FROM page ORDER BY transaction_id, position`, strconv.FormatUint(after.TransactionID, 10), after.Position, limit, aggregates)
	if err != nil {
		return nil, after, false, fmt.Errorf("read all: %w", err)
	}
	defer rows.Close()
	var (
		out      []rawEvent
		examined int
	)
	for rows.Next() {
		examined++
		var (
			txID       string
			r          rawEvent
			recordedAt time.Time
		)
		if err := rows.Scan(&txID, &r.rec.Position, &r.rec.EventID, &r.rec.Stream.Aggregate, &r.rec.Stream.ID, &r.rec.Version,
			&r.typ, &r.payload, &r.meta, &recordedAt); err != nil {
			return nil, after, false, fmt.Errorf("read all: %w", err)
		}
		r.rec.RecordedAt = recordedAt.UTC()
		tx, err := strconv.ParseUint(txID, 10, 64)
		if err != nil {
			return nil, after, false, fmt.Errorf("read all: transaction id %q: %w", txID, err)
		}
		after = Cursor{TransactionID: tx, Position: r.rec.Position}
		if r.payload == nil {
			continue // an aggregate the caller did not ask for
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, after, false, fmt.Errorf("read all: %w", err)
	}
	return out, after, examined == limit, nil
}

// decode decodes raw rows; without metadata, Metadata stays zero (a replay
// folds events, not their metadata, which costs a JSON decode each).
func (s *EventStore) decode(raw []rawEvent, metadata bool) ([]domain.RecordedEvent, error) {
	out := make([]domain.RecordedEvent, len(raw))
	for i := range raw {
		r := &raw[i]
		rec := r.rec
		var err error
		if rec.Event, err = s.cfg.Codec.DecodeJSON(r.typ, r.payload); err != nil {
			return nil, fmt.Errorf("read all: position %d: %w", rec.Position, err)
		}
		if metadata {
			if rec.Metadata, err = decodeMetadata(r.meta); err != nil {
				return nil, fmt.Errorf("read all: position %d: %w", rec.Position, err)
			}
		}
		out[i] = rec
	}
	return out, nil
}

func decodeMetadata(raw []byte) (domain.Metadata, error) {
	var m metadataJSON
	if err := json.Unmarshal(raw, &m); err != nil {
		return domain.Metadata{}, fmt.Errorf("metadata: %w", err)
	}
	md := domain.Metadata{CorrelationID: m.CorrelationID, CausationID: m.CausationID, Actor: m.Actor}
	if m.TenantID != "" {
		id, err := uuid.Parse(m.TenantID)
		if err != nil {
			return domain.Metadata{}, fmt.Errorf("metadata tenantId: %w", err)
		}
		md.TenantID = id
	}
	return md, nil
}
