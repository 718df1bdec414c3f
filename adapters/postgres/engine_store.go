package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	enginecmd "github.com/incentives-platform/incentives/commands/engine"
	"github.com/incentives-platform/incentives/domain/engine"
)

var _ enginecmd.BatchStore = (*EngineStore)(nil)

// engineActor names the engine in the metadata of the events it records.
const engineActor = "system:engine"

// EngineStore is where the incentive engine writes a batch: the action-event
// log, quest progress, decisions, incentives and their IncentiveIssued events
// with outbox rows, all in one transaction (commands/engine.BatchStore). It
// is safe for concurrent use; each BatchTx is not.
//
// # One transaction, two drivers
//
// The event store appends through database/sql (watermill-sql's outbox
// publisher takes a *sql.Tx), while the action-event log and the decisions
// want pgx's COPY. A batch therefore pins one connection with sql.DB.Conn,
// begins the *sql.Tx on it, and reaches the *pgx.Conn under that same
// connection through Conn.Raw for its native statements. Both drivers speak
// on the one server session, so everything is in the one transaction:
// Postgres knows transactions by session, not by client object. Raw holds
// the connection's lock while it runs, so the two never interleave on the
// wire, and database/sql's own rollback on a cancelled context waits for it.
type EngineStore struct {
	db     *DB
	events *EventStore
	// months holds the first instants (UTC) of the months whose event
	// partitions this process has made sure of: ensure_event_partitions is
	// called once per month seen, not once per batch.
	monthsMu sync.Mutex
	months   map[time.Time]bool
}

// NewEngineStore returns the engine's batch store over db, recording
// IncentiveIssued events in events. It panics on a nil dependency.
func NewEngineStore(db *DB, events *EventStore) *EngineStore {
	if db == nil || events == nil {
		panic("postgres: NewEngineStore needs a database and an event store")
	}
	return &EngineStore{db: db, events: events, months: map[time.Time]bool{}}
}

// Begin implements commands/engine.BatchStore.
func (s *EngineStore) Begin(ctx context.Context) (enginecmd.BatchTx, error) {
	conn, err := s.db.SQL.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("engine batch: connection: %w", err)
	}
	// READ COMMITTED, whatever the server's default: a batch that waited in
	// LogEvents for another batch holding the same events must then read
	// that batch's progress and decisions (ReadProgress, DecisionsRecorded).
	tx, err := conn.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("engine batch: begin: %w", err), conn.Close())
	}
	return &engineTx{s: s, conn: conn, tx: tx}, nil
}

// engineTx is one batch's transaction; see EngineStore for how its two
// handles share one session.
type engineTx struct {
	s    *EngineStore
	conn *sql.Conn
	tx   *sql.Tx
	done bool
}

// pg runs fn on the pgx connection under the transaction's session.
func (t *engineTx) pg(fn func(*pgx.Conn) error) error {
	if t.done {
		return sql.ErrTxDone
	}
	return rawPgx(t.conn, fn)
}

// Commit implements commands/engine.BatchTx.
func (t *engineTx) Commit(context.Context) error {
	if t.done {
		return sql.ErrTxDone
	}
	t.done = true
	err := t.tx.Commit()
	if cerr := t.conn.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("engine batch: commit: %w", err)
	}
	return nil
}

// Rollback implements commands/engine.BatchTx. After Commit it does nothing.
func (t *engineTx) Rollback(context.Context) error {
	if t.done {
		return nil
	}
	t.done = true
	err := ignoreTxDone(t.tx.Rollback())
	return errors.Join(err, t.conn.Close())
}

// eventColumns are the columns LogEvents writes, in the order of eventRow.
var eventColumns = []string{"event_id", "tenant_id", "user_id", "action_code", "event_ts", "payload"}

func eventRow(e *engine.ActionEvent) []any {
	return []any{e.EventID, e.TenantID, e.UserID, e.ActionCode, e.EventTs, rawPayload(e.RawPayload)}
}

// LogEvents implements commands/engine.BatchTx.
//
// The log's key is (event_id, event_ts) (it is partitioned by event_ts); a
// redelivery carries both unchanged. Most batches hold only new events, so
// the batch is first COPYed straight into the log, under a savepoint. If an
// event is there already the COPY fails on the key, the savepoint undoes it,
// and the batch goes the slow way: COPY into a temporary table, then INSERT
// ... ON CONFLICT DO NOTHING RETURNING, which says which events are new.
// (The slow way alone costs twice the fast one: a temporary table's
// catalog rows, a second pass over the rows, and ON CONFLICT's speculative
// insertion.) Rows go in event_id order, so two batches sharing events wait
// for each other in one order and never deadlock: the later waits for the
// earlier to commit, then skips its events (or logs them, if it rolled back).
// An event id repeated within the batch counts once, at its first place.
func (t *engineTx) LogEvents(ctx context.Context, events []engine.ActionEvent) ([]engine.ActionEvent, error) {
	if len(events) == 0 {
		return nil, nil
	}
	if err := t.s.ensurePartitions(ctx, events); err != nil {
		return nil, err
	}
	// The log's key is (event_id, event_ts), as a partitioned table's must
	// be; an id logged before with another eventTs (a producer that re-sent
	// an event with a new timestamp) is still the same event, and is skipped
	// here rather than decided twice.
	logged, err := t.loggedIDs(ctx, events)
	if err != nil {
		return nil, fmt.Errorf("log %d action events: %w", len(events), err)
	}
	seen := make(map[uuid.UUID]bool, len(events))
	uniq := make([]int, 0, len(events)) // indexes of first occurrences, in input order
	for i, e := range events {
		if !seen[e.EventID] && !logged[e.EventID] {
			seen[e.EventID] = true
			uniq = append(uniq, i)
		}
	}
	if len(uniq) == 0 {
		return nil, nil
	}
	sorted := slices.Clone(uniq)
	slices.SortFunc(sorted, func(a, b int) int {
		return slices.Compare(events[a].EventID[:], events[b].EventID[:])
	})
	rows := pgx.CopyFromSlice(len(sorted), func(i int) ([]any, error) { return eventRow(&events[sorted[i]]), nil })

	var fresh map[uuid.UUID]bool // nil: every event is new
	err = t.pg(func(c *pgx.Conn) error {
		if _, err := c.Exec(ctx, `SAVEPOINT engine_log_events`); err != nil {
			return err
		}
		_, err := c.CopyFrom(ctx, pgx.Identifier{"event"}, eventColumns, rows)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "23505" {
			if err != nil {
				return err
			}
			_, err = c.Exec(ctx, `RELEASE SAVEPOINT engine_log_events`)
			return err
		}
		// Some events are logged already: this is a redelivery.
		if _, err := c.Exec(ctx, `ROLLBACK TO SAVEPOINT engine_log_events`); err != nil {
			return err
		}
		fresh = make(map[uuid.UUID]bool, len(sorted))
		return logNewEvents(ctx, c, events, sorted, fresh)
	})
	if err != nil {
		return nil, fmt.Errorf("log %d action events: %w", len(events), err)
	}
	out := make([]engine.ActionEvent, 0, len(uniq))
	for _, i := range uniq {
		if fresh == nil || fresh[events[i].EventID] {
			out = append(out, events[i])
		}
	}
	return out, nil
}

// loggedIDs returns which of the events' ids the log already holds, under
// any eventTs.
func (t *engineTx) loggedIDs(ctx context.Context, events []engine.ActionEvent) (map[uuid.UUID]bool, error) {
	ids := make([]uuid.UUID, len(events))
	for i, e := range events {
		ids[i] = e.EventID
	}
	logged := map[uuid.UUID]bool{}
	err := t.pg(func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT event_id FROM event WHERE event_id = ANY($1)`, ids)
		if err != nil {
			return err
		}
		found, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		for _, id := range found {
			logged[id] = true
		}
		return err
	})
	return logged, err
}

// logNewEvents logs the events at indexes order that the log does not hold
// yet, and marks them in fresh.
func logNewEvents(ctx context.Context, c *pgx.Conn, events []engine.ActionEvent, order []int, fresh map[uuid.UUID]bool) error {
	if _, err := c.Exec(ctx, `CREATE TEMP TABLE IF NOT EXISTS engine_event_in (
		event_id uuid, tenant_id uuid, user_id text, action_code text, event_ts timestamptz, payload jsonb) ON COMMIT DROP`); err != nil {
		return err
	}
	if _, err := c.CopyFrom(ctx, pgx.Identifier{"engine_event_in"}, eventColumns,
		pgx.CopyFromSlice(len(order), func(i int) ([]any, error) { return eventRow(&events[order[i]]), nil })); err != nil {
		return err
	}
	rows, err := c.Query(ctx, `
		INSERT INTO event (event_id, tenant_id, user_id, action_code, event_ts, payload)
		SELECT event_id, tenant_id, user_id, action_code, event_ts, payload FROM engine_event_in
		ORDER BY event_id, event_ts
		ON CONFLICT DO NOTHING
		RETURNING event_id`)
	if err != nil {
		return err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	for _, id := range ids {
		fresh[id] = true
	}
	return err
}

// rawPayload is what the log stores of an event's payload: the JSON as
// received, or an empty object.
func rawPayload(raw []byte) []byte {
	if len(raw) == 0 {
		return []byte("{}")
	}
	return raw
}

// ensurePartitions makes sure the monthly partitions of the events' months
// exist before the batch inserts into them, so the default partition stays
// empty (a default partition holding rows of a month makes creating that
// month's partition fail). It runs on its own connection, outside the
// batch: creating a partition locks the whole log, and that lock must not
// be held until the batch commits. The month before and after are made
// too, as the partitions' bounds are midnights in the server's time zone,
// not necessarily UTC. Batches wait for each other here only while a month
// is new to the process.
func (s *EngineStore) ensurePartitions(ctx context.Context, events []engine.ActionEvent) error {
	var months []time.Time
	for _, e := range events {
		ts := e.EventTs.UTC()
		m := time.Date(ts.Year(), ts.Month(), 1, 0, 0, 0, 0, time.UTC)
		if !slices.Contains(months, m) {
			months = append(months, m)
		}
	}
	s.monthsMu.Lock()
	defer s.monthsMu.Unlock()
	for _, m := range months {
		if s.months[m] {
			continue
		}
		if err := s.ensureMonth(ctx, m); err != nil {
			return err
		}
		s.months[m] = true
	}
	return nil
}

func (s *EngineStore) ensureMonth(ctx context.Context, month time.Time) error {
	for _, m := range []time.Time{month.AddDate(0, -1, 0), month, month.AddDate(0, 1, 0)} {
		if err := s.ensurePartition(ctx, m); err != nil {
			return fmt.Errorf("event partition of %s: %w", m.Format("2006-01"), err)
		}
	}
	return nil
}

func (s *EngineStore) ensurePartition(ctx context.Context, month time.Time) error {
	var err error
	for range 3 {
		_, err = s.db.Pool.Exec(ctx, `SELECT ensure_event_partitions($1::date, 1)`, month.Format(time.DateOnly))
		var pgErr *pgconn.PgError
		switch {
		case err == nil:
			return nil
		case !errors.As(err, &pgErr):
			return err
		case pgErr.Code == "42P07" || pgErr.Code == "23505":
			// Another process created the partition between the function's
			// IF NOT EXISTS check and its CREATE: the next try sees it.
			continue
		case pgErr.Code == "23514":
			// The default partition already holds rows of the month, so its
			// partition cannot be made: its events keep going to the default
			// partition, which is still correct, only slower to scan.
			return nil
		default:
			return err
		}
	}
	return err
}
