package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/tenant"
	"github.com/incentives-platform/incentives/projections"
)

// This file is `incentives replay` (issue #7): it rebuilds read models from
// the event store while the platform keeps serving, and swaps them in.
//
//   - Shadow tables. Each projection's tables are rebuilt as copies (CREATE
//     TABLE … (LIKE … INCLUDING ALL)) in a schema of its own,
//     replay_<projection>, which nothing else reads; the live tables keep
//     serving and the live projections keep writing them.
//   - In memory, in bulk. Events are read in commit order (ReadAllOf, only
//     the projection's aggregates) and folded by the projection's own pure
//     Evolve functions (projections.Rebuild): no query per event. Changed
//     views are written in batches: COPY for rows never written, an upsert
//     from a COPYed temporary table for rows written before.
//   - Resumable. The cursor is saved in replay_state in the transaction of
//     each batch of shadow rows; an interrupted replay reloads its shadow
//     tables and goes on from there.
//   - The swap. Once the replay has caught up, one transaction locks the
//     live tables (ACCESS EXCLUSIVE: the live projection and readers wait a
//     moment), folds the events committed since, drops the live tables and
//     moves the shadow tables into their place, with the live tables' index
//     names. An event committed later reaches the live projection through
//     Kafka as usual and finds the new table: the relay reads the outbox in
//     the same commit-visibility order, so nothing it delivered before the
//     swap is missing from the shadow.

// ReplayTable is one read-model table a replay rebuilds.
type ReplayTable struct {
	Name string
	// Columns, in the order of the rows the model gives, and the key.
	Columns []string
	Key     []string
}

// ReplayModel binds a projection's in-memory rebuild to its tables.
type ReplayModel struct {
	Rebuild projections.Rebuild
	Tables  []ReplayTable
	// Take returns, per table, the rows changed since its last call: rows
	// never written before (inserts) and rows written before (updates).
	Take func() (inserts, updates map[string][][]any, err error)
	// Settle tells the model whether the rows Take last returned were
	// committed; if not, it gives them again at the next Take.
	Settle func(committed bool)
	// Load reads the shadow tables of an interrupted replay back into the
	// rebuild; q reads schema's tables.
	Load func(ctx context.Context, q pgx.Tx, schema string) error
	// BeforeSwap, if set, runs in the swap transaction before the shadow
	// tables replace the live ones (the incentives projection emits a
	// change event for each row that differs).
	BeforeSwap func(ctx context.Context, tx *sql.Tx, schema string) error

	// External is set for a read model outside Postgres (Redis), whose
	// shadow the model writes itself; Tables, Take, Load and BeforeSwap
	// are then unused.
	External *ExternalShadow
}

// ExternalShadow is the shadow of a read model outside Postgres. Its fold
// need not be idempotent (the user-aggregation sums count every event), so
// it never resumes: each run drops what an interrupted one wrote and folds
// from the start, while the Postgres models of the same run refold from
// there harmlessly.
type ExternalShadow struct {
	// Drop deletes the shadow.
	Drop func(ctx context.Context) error
	// Flush writes what changed since the last call to the shadow.
	Flush func(ctx context.Context) error
	// Fence stops the live writers of every part of the read model the
	// shadow will replace (for Redis, the tenants live or folded so far),
	// before the final catch-up; it reports whether it fenced parts not
	// fenced before, after which the catch-up reads again: a part fenced
	// late may have been written live meanwhile.
	Fence func(ctx context.Context) (added bool, err error)
	// Swap puts the shadow in place of the live read model and lifts the
	// fences; Unfence lifts them after a failure.
	Swap    func(ctx context.Context) error
	Unfence func(ctx context.Context) error
}

// ReplayOptions configures EventStore.Replay.
type ReplayOptions struct {
	// From and Since, at most one set, start the replay at the first event
	// in commit order at or after position From, or recorded at or after
	// Since; by default it starts at the beginning. The shadow tables start
	// empty either way: a read model then holds what the events from there
	// build.
	From  int64
	Since time.Time
	// Restart drops an interrupted replay's shadow tables instead of
	// resuming it.
	Restart bool
	// BatchSize is the events read per query. Default 5,000.
	BatchSize int
	// FlushEvery is the events folded between writes of the shadow tables
	// (and resume points). Default 100,000.
	FlushEvery int
	// Progress is told after each batch read. Optional.
	Progress func(ReplayProgress)
}

// ReplayProgress is where a replay stands.
type ReplayProgress struct {
	// Phase is "replaying", "indexing" (building the shadow tables'
	// secondary indexes and statistics), "swapping" or "done".
	Phase string
	// Read is the events of the replayed aggregates folded so far in this
	// run; Total, how many there were to fold when it started (resumed runs
	// count from their resume point).
	Read, Total int64
	// Resumed is true when the run went on from an interrupted one.
	Resumed bool
}

// KnownTenants returns which of the tenant ids the event store has a
// stream of, looked up by stream id (an index), never a scan: it runs while
// a replay's swap holds the live tables.
func (db *DB) KnownTenants(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]bool, error) {
	out := map[uuid.UUID]bool{}
	if len(ids) == 0 {
		return out, nil
	}
	streams := make([]string, len(ids))
	for i, id := range ids {
		streams[i] = tenant.Stream(id).String()
	}
	rows, err := db.Pool.Query(ctx, `SELECT aggregate_id FROM event_store WHERE stream_id = ANY($1) AND version = 1`, streams)
	if err != nil {
		return nil, fmt.Errorf("tenants: %w", err)
	}
	known, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, fmt.Errorf("tenants: %w", err)
	}
	for _, id := range known {
		out[id] = true
	}
	return out, nil
}

// ErrReplayInterrupted is returned when an interrupted replay exists and
// the caller asked for a new start point without Restart.
var ErrReplayInterrupted = errors.New("an interrupted replay exists")

var schemaName = regexp.MustCompile(`[^a-z0-9_]`)

// replaySchema returns the shadow schema of a projection.
func replaySchema(projection string) string {
	return "replay_" + schemaName.ReplaceAllString(strings.ToLower(projection), "_")
}

// Replay rebuilds the models' read models from the event store and swaps
// them in. It returns once the new tables serve; on error (or a cancelled
// ctx) the live tables are untouched and the replay can be resumed.
func (s *EventStore) Replay(ctx context.Context, models []*ReplayModel, opt ReplayOptions) error {
	if len(models) == 0 {
		return errors.New("replay: no projection")
	}
	if opt.From != 0 && !opt.Since.IsZero() {
		return errors.New("replay: From and Since are exclusive")
	}
	if opt.BatchSize <= 0 {
		opt.BatchSize = 5000
	}
	if opt.FlushEvery <= 0 {
		opt.FlushEvery = 100_000
	}
	progress := opt.Progress
	if progress == nil {
		progress = func(ReplayProgress) {}
	}
	var aggregates []string
	for _, m := range models {
		for _, a := range m.Rebuild.Aggregates() {
			if !slices.Contains(aggregates, a) {
				aggregates = append(aggregates, a)
			}
		}
	}
	cursor, resumed, err := s.prepareShadows(ctx, models, opt)
	if err != nil {
		return err
	}
	total, err := s.countAfter(ctx, cursor, aggregates)
	if err != nil {
		return err
	}
	p := ReplayProgress{Phase: "replaying", Total: total, Resumed: resumed}
	progress(p)
	pending := 0
	pages, stop := s.readPages(ctx, cursor, opt.BatchSize, aggregates, 2)
	defer stop()
	for pg := range pages {
		if pg.err != nil {
			return fmt.Errorf("replay: %w", pg.err)
		}
		if err := applyAll(models, pg.events); err != nil {
			return err
		}
		cursor, pending, p.Read = pg.next, pending+len(pg.events), p.Read+int64(len(pg.events))
		if pending >= opt.FlushEvery || !pg.more {
			if err := s.flushShadows(ctx, models, cursor, int64(pending)); err != nil {
				return err
			}
			pending = 0
		}
		progress(p)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p.Phase = "indexing"
	progress(p)
	if err := s.finishShadows(ctx, models); err != nil {
		return err
	}
	p.Phase = "swapping"
	progress(p)
	if err := s.swapShadows(ctx, models, cursor, aggregates, opt.BatchSize); err != nil {
		return err
	}
	p.Phase = "done"
	progress(p)
	return nil
}

// page is a page of decoded events, in commit order.
type page struct {
	events []domain.RecordedEvent
	next   Cursor
	more   bool
	err    error
}

// readPages reads the store from after in pages, in order, while the
// caller folds the previous ones: one goroutine queries, workers decode
// (the decoding is most of a reader's CPU), and pages come out in commit
// order. The channel closes after the last page, or after one with an
// error; stop ends the reading early.
func (s *EventStore) readPages(ctx context.Context, after Cursor, limit int, aggregates []string, workers int) (<-chan page, func()) {
	ctx, cancel := context.WithCancel(ctx)
	type job struct {
		raw  []rawEvent
		next Cursor
		more bool
		done chan page
	}
	out := make(chan page, workers)
	order := make(chan chan page, workers+1)
	jobs := make(chan job, workers)
	go func() {
		defer close(order)
		defer close(jobs)
		for cur := after; ; {
			raw, next, more, err := s.readRaw(ctx, cur, limit, aggregates)
			done := make(chan page, 1)
			select {
			case order <- done:
			case <-ctx.Done():
				return
			}
			if err != nil {
				done <- page{err: err}
				return
			}
			select {
			case jobs <- job{raw, next, more, done}:
			case <-ctx.Done():
				return
			}
			if !more {
				return
			}
			cur = next
		}
	}()
	for range workers {
		go func() {
			for j := range jobs {
				events, err := s.decode(j.raw, false)
				j.done <- page{events: events, next: j.next, more: j.more, err: err}
			}
		}()
	}
	go func() {
		defer close(out)
		for done := range order {
			var p page
			select {
			case p = <-done:
			case <-ctx.Done():
				return
			}
			select {
			case out <- p:
			case <-ctx.Done():
				return
			}
			if p.err != nil {
				return
			}
		}
	}()
	return out, cancel
}

// applyAll folds events into every model; a Rebuild ignores the events of
// aggregates it does not fold.
func applyAll(models []*ReplayModel, events []domain.RecordedEvent) error {
	for _, ev := range events {
		for _, m := range models {
			if err := m.Rebuild.Apply(ev); err != nil {
				return fmt.Errorf("replay %s: position %d: %w", m.Rebuild.Name(), ev.Position, err)
			}
		}
	}
	return nil
}

// prepareShadows resumes each model's interrupted replay or starts a new
// one, and returns the cursor to read from: the earliest of the models'
// (folding an event twice changes nothing, Evolve skips what a view holds).
func (s *EventStore) prepareShadows(ctx context.Context, models []*ReplayModel, opt ReplayOptions) (Cursor, bool, error) {
	start, err := s.startCursor(ctx, opt)
	if err != nil {
		return Cursor{}, false, err
	}
	var (
		cursor  Cursor
		resumed bool
		first   = true
	)
	err = s.db.inTx(ctx, func(tx pgx.Tx) error {
		for _, m := range models {
			name, schema := m.Rebuild.Name(), replaySchema(m.Rebuild.Name())
			if m.External != nil {
				if err := dropShadow(ctx, tx, name, schema); err != nil {
					return err
				}
				if err := m.External.Drop(ctx); err != nil {
					return fmt.Errorf("replay %s: drop shadow: %w", name, err)
				}
				if err := createShadow(ctx, tx, m, name, schema, start); err != nil {
					return err
				}
				if first || compareCursors(start, cursor) < 0 {
					cursor, first = start, false
				}
				continue
			}
			var c Cursor
			var txID int64
			err := tx.QueryRow(ctx, `SELECT transaction_id, position FROM replay_state WHERE projection = $1`, name).Scan(&txID, &c.Position)
			c.TransactionID = uint64(txID)
			switch {
			case err == nil && opt.Restart:
				if err := dropShadow(ctx, tx, name, schema); err != nil {
					return err
				}
				err = pgx.ErrNoRows
			case err == nil && (opt.From != 0 || !opt.Since.IsZero()):
				return fmt.Errorf("replay %s: %w (stopped at %s); resume it without --from/--since, or start over with --restart",
					name, ErrReplayInterrupted, c)
			case err == nil:
				if err := m.Load(ctx, tx, schema); err != nil {
					return fmt.Errorf("replay %s: reload shadow tables: %w", name, err)
				}
				resumed = true
			}
			if errors.Is(err, pgx.ErrNoRows) {
				if err := createShadow(ctx, tx, m, name, schema, start); err != nil {
					return err
				}
				c = start
			} else if err != nil {
				return fmt.Errorf("replay %s: state: %w", name, err)
			}
			if first || compareCursors(c, cursor) < 0 {
				cursor, first = c, false
			}
		}
		return nil
	})
	return cursor, resumed, err
}

func compareCursors(a, b Cursor) int {
	if a.TransactionID != b.TransactionID {
		if a.TransactionID < b.TransactionID {
			return -1
		}
		return 1
	}
	switch {
	case a.Position < b.Position:
		return -1
	case a.Position > b.Position:
		return 1
	}
	return 0
}

// startCursor is the cursor just before the first event the options name.
//
// Only events below the snapshot's xmin are certain: a transaction older
// than xmin may still be running and commit events that match. So the
// first match is looked for among those, and with none the start is xmin
// itself: everything from there on is replayed, a few events of older
// recording included, rather than one of a late commit missed.
func (s *EventStore) startCursor(ctx context.Context, opt ReplayOptions) (Cursor, error) {
	var where string
	var arg any
	switch {
	case opt.From != 0:
		where, arg = `position >= $1`, opt.From
	case !opt.Since.IsZero():
		where, arg = `recorded_at >= $1`, opt.Since
	default:
		return Cursor{}, nil
	}
	var (
		xmin string
		txID *string
		pos  *int64
	)
	err := s.db.Pool.QueryRow(ctx, `
		WITH h AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin)
		SELECT h.xmin::text, f.transaction_id::text, f.position
		FROM h LEFT JOIN LATERAL (
			SELECT transaction_id, position FROM event_store
			WHERE `+where+` AND transaction_id < h.xmin
			ORDER BY transaction_id, position LIMIT 1) f ON true`, arg).Scan(&xmin, &txID, &pos)
	if err != nil {
		return Cursor{}, fmt.Errorf("replay: start: %w", err)
	}
	if txID == nil {
		return ParseCursor(xmin + ":0")
	}
	return ParseCursor(*txID + ":" + fmt.Sprint(*pos-1))
}

func (s *EventStore) countAfter(ctx context.Context, c Cursor, aggregates []string) (int64, error) {
	var n int64
	err := s.db.Pool.QueryRow(ctx, `SELECT count(*) FROM event_store
		WHERE (transaction_id, position) > ($1::text::xid8, $2) AND aggregate = ANY($3)`,
		fmt.Sprint(c.TransactionID), c.Position, aggregates).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("replay: count events: %w", err)
	}
	return n, nil
}

func createShadow(ctx context.Context, tx pgx.Tx, m *ReplayModel, name, schema string, start Cursor) error {
	if _, err := tx.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE; CREATE SCHEMA `+pgx.Identifier{schema}.Sanitize()); err != nil {
		return fmt.Errorf("replay %s: create schema: %w", name, err)
	}
	for _, t := range m.Tables {
		if _, err := tx.Exec(ctx, `CREATE TABLE `+pgx.Identifier{schema, t.Name}.Sanitize()+` (LIKE `+
			pgx.Identifier{"public", t.Name}.Sanitize()+` INCLUDING ALL)`); err != nil {
			return fmt.Errorf("replay %s: create shadow of %s: %w", name, t.Name, err)
		}
		// Secondary indexes are built once, at the end (buildIndexes): one
		// build costs less than keeping them up to date row by row. Unique
		// ones stay, for the upserts.
		if _, err := tx.Exec(ctx, `DO $$ DECLARE i record; BEGIN
			FOR i IN SELECT c.relname FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
				WHERE x.indrelid = '`+pgx.Identifier{schema, t.Name}.Sanitize()+`'::regclass AND NOT x.indisunique LOOP
				EXECUTE format('DROP INDEX %I.%I', '`+schema+`', i.relname);
			END LOOP; END $$`); err != nil {
			return fmt.Errorf("replay %s: shadow of %s: %w", name, t.Name, err)
		}
	}
	_, err := tx.Exec(ctx, `INSERT INTO replay_state (projection, schema_name, transaction_id, position) VALUES ($1, $2, $3, $4)`,
		name, schema, int64(start.TransactionID), start.Position)
	if err != nil {
		return fmt.Errorf("replay %s: state: %w", name, err)
	}
	return nil
}

func dropShadow(ctx context.Context, tx pgx.Tx, name, schema string) error {
	if _, err := tx.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
		return fmt.Errorf("replay %s: drop shadow: %w", name, err)
	}
	_, err := tx.Exec(ctx, `DELETE FROM replay_state WHERE projection = $1`, name)
	return err
}

// flushShadows writes every model's changed views and the new cursor in
// one transaction: the resume point never runs ahead of the rows.
func (s *EventStore) flushShadows(ctx context.Context, models []*ReplayModel, cursor Cursor, folded int64) error {
	for _, m := range models {
		if m.External != nil {
			if err := m.External.Flush(ctx); err != nil {
				return fmt.Errorf("replay %s: %w", m.Rebuild.Name(), err)
			}
		}
	}
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		for _, m := range models {
			if m.External != nil {
				continue // it restarts on every run: no resume point
			}
			if err := writeShadow(ctx, tx, m); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `UPDATE replay_state SET transaction_id = $2, position = $3, events = events + $4, updated_at = now()
				WHERE projection = $1`, m.Rebuild.Name(), int64(cursor.TransactionID), cursor.Position, folded)
			if err != nil {
				return fmt.Errorf("replay %s: state: %w", m.Rebuild.Name(), err)
			}
		}
		return nil
	})
	settle(models, err == nil)
	return err
}

func settle(models []*ReplayModel, committed bool) {
	for _, m := range models {
		if m.Settle != nil {
			m.Settle(committed)
		}
	}
}

// writeShadow writes a model's changed rows: new ones by COPY, the others
// by an upsert from a COPYed temporary table.
func writeShadow(ctx context.Context, tx copyExecer, m *ReplayModel) error {
	if m.External != nil {
		return nil // it writes its own shadow (Flush)
	}
	inserts, updates, err := m.Take()
	if err != nil {
		return fmt.Errorf("replay %s: %w", m.Rebuild.Name(), err)
	}
	schema := replaySchema(m.Rebuild.Name())
	for _, t := range m.Tables {
		target := pgx.Identifier{schema, t.Name}
		if rows := inserts[t.Name]; len(rows) > 0 {
			if _, err := tx.CopyFrom(ctx, target, t.Columns, pgx.CopyFromRows(rows)); err != nil {
				return fmt.Errorf("replay %s: copy %d rows into %s: %w", m.Rebuild.Name(), len(rows), t.Name, err)
			}
		}
		rows := updates[t.Name]
		if len(rows) == 0 {
			continue
		}
		tmp := pgx.Identifier{"replay_update_" + t.Name}
		if _, err := tx.Exec(ctx, `CREATE TEMPORARY TABLE IF NOT EXISTS `+tmp.Sanitize()+` (LIKE `+target.Sanitize()+`) ON COMMIT DROP`); err != nil {
			return fmt.Errorf("replay %s: %w", m.Rebuild.Name(), err)
		}
		if _, err := tx.CopyFrom(ctx, tmp, t.Columns, pgx.CopyFromRows(rows)); err != nil {
			return fmt.Errorf("replay %s: copy %d updates of %s: %w", m.Rebuild.Name(), len(rows), t.Name, err)
		}
		cols := quoteAll(t.Columns)
		var set []string
		for _, c := range t.Columns {
			if !slices.Contains(t.Key, c) {
				set = append(set, pgx.Identifier{c}.Sanitize()+" = excluded."+pgx.Identifier{c}.Sanitize())
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO `+target.Sanitize()+` (`+cols+`) SELECT `+cols+` FROM `+tmp.Sanitize()+
			` ON CONFLICT (`+quoteAll(t.Key)+`) DO UPDATE SET `+strings.Join(set, ", ")+`; TRUNCATE `+tmp.Sanitize())
		if err != nil {
			return fmt.Errorf("replay %s: update %d rows of %s: %w", m.Rebuild.Name(), len(rows), t.Name, err)
		}
	}
	return nil
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = pgx.Identifier{n}.Sanitize()
	}
	return strings.Join(q, ", ")
}

// finishShadows builds the shadow tables' secondary indexes like the live
// tables' and gathers their statistics, before the swap and outside its
// locks, so the swapped-in tables serve queries as the old ones did.
func (s *EventStore) finishShadows(ctx context.Context, models []*ReplayModel) error {
	for _, m := range models {
		schema := replaySchema(m.Rebuild.Name())
		for _, t := range m.Tables {
			shadow := pgx.Identifier{schema, t.Name}.Sanitize()
			rows, err := s.db.Pool.Query(ctx, `SELECT pg_get_indexdef(x.indexrelid) FROM pg_index x
				WHERE x.indrelid = $1::regclass AND NOT x.indisunique AND x.indisvalid`, pgx.Identifier{"public", t.Name}.Sanitize())
			if err != nil {
				return fmt.Errorf("replay %s: indexes of %s: %w", m.Rebuild.Name(), t.Name, err)
			}
			defs, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return fmt.Errorf("replay %s: indexes of %s: %w", m.Rebuild.Name(), t.Name, err)
			}
			have, err := s.shadowIndexDefs(ctx, schema, t.Name)
			if err != nil {
				return err
			}
			for _, def := range defs {
				// "CREATE INDEX name ON public.t USING …" → "CREATE INDEX ON shadow USING …"
				head, rest, ok := strings.Cut(def, " ON ")
				if !ok {
					return fmt.Errorf("replay %s: index definition %q", m.Rebuild.Name(), def)
				}
				_, using, _ := strings.Cut(rest, " ")
				kind := strings.SplitN(head, " INDEX ", 2)[0]
				if have[kind+" "+using] {
					continue // built by an earlier, interrupted run
				}
				if _, err := s.db.Pool.Exec(ctx, kind+" INDEX ON "+shadow+" "+using); err != nil {
					return fmt.Errorf("replay %s: build index of %s: %w", m.Rebuild.Name(), t.Name, err)
				}
			}
			if _, err := s.db.Pool.Exec(ctx, `ANALYZE `+shadow); err != nil {
				return fmt.Errorf("replay %s: analyze %s: %w", m.Rebuild.Name(), t.Name, err)
			}
		}
	}
	return nil
}

// shadowIndexDefs returns the index definitions of a shadow table, without
// names, as indexNames keys them.
func (s *EventStore) shadowIndexDefs(ctx context.Context, schema, table string) (map[string]bool, error) {
	rows, err := s.db.Pool.Query(ctx, `SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = $2`, schema, table)
	if err != nil {
		return nil, err
	}
	defs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, def := range defs {
		if head, rest, ok := strings.Cut(def, " ON "); ok {
			_, using, _ := strings.Cut(rest, " ")
			out[strings.SplitN(head, " INDEX ", 2)[0]+" "+using] = true
		}
	}
	return out, nil
}

// copyExecer is what writing shadow rows needs: a pgx.Tx, or the pgx
// connection under a database/sql transaction.
type copyExecer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, rows pgx.CopyFromSource) (int64, error)
}

// swapShadows catches the shadows up and swaps them in, in one
// transaction holding the live tables. It is a database/sql transaction
// (a model's BeforeSwap may write the outbox, whose publisher wants one)
// whose pgx connection COPYs the last rows.
//
// Taking the locks can deadlock with a reader holding one of the tables and
// waiting for another (the engine's catalog reads several in one
// snapshot); Postgres then aborts one side, and if it is the swap, the swap
// is tried again after a pause, up to a few times.
func (s *EventStore) swapShadows(ctx context.Context, models []*ReplayModel, cursor Cursor, aggregates []string, batch int) (err error) {
	swapped := false
	defer func() {
		if err == nil || swapped {
			// An external swap that fails half-way leaves the parts it did
			// not finish fenced; their fences lapse on their own.
			return
		}
		for _, m := range models {
			if m.External != nil {
				err = errors.Join(err, m.External.Unfence(context.WithoutCancel(ctx)))
			}
		}
	}()
	for attempt := 1; ; attempt++ {
		next, err := s.trySwap(ctx, models, cursor, aggregates, batch)
		settle(models, err == nil)
		var pgErr *pgconn.PgError
		if err == nil {
			// The Postgres tables are swapped: finish Redis's even if the
			// caller gives up now.
			swapped = true
			return s.swapExternal(context.WithoutCancel(ctx), models)
		}
		if attempt == 5 || !errors.As(err, &pgErr) || (pgErr.Code != "40P01" && pgErr.Code != "55P03") {
			return err
		}
		cursor = next
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt*attempt) * 100 * time.Millisecond):
		}
	}
}

// swapExternal writes the external shadows' last changes and swaps them in:
// their final catch-up was folded in the swap transaction, under their
// fences.
func (s *EventStore) swapExternal(ctx context.Context, models []*ReplayModel) error {
	for _, m := range models {
		if m.External == nil {
			continue
		}
		if err := m.External.Flush(ctx); err != nil {
			return fmt.Errorf("replay %s: %w", m.Rebuild.Name(), err)
		}
		if err := m.External.Swap(ctx); err != nil {
			return fmt.Errorf("replay %s: swap: %w", m.Rebuild.Name(), err)
		}
	}
	return nil
}

// trySwap is one attempt at the swap. It returns how far it read, so a
// retry does not fold the same events again (folding them again would
// change nothing, but costs the reading).
func (s *EventStore) trySwap(ctx context.Context, models []*ReplayModel, cursor Cursor, aggregates []string, batch int) (Cursor, error) {
	conn, err := s.db.SQL.Conn(ctx)
	if err != nil {
		return cursor, fmt.Errorf("replay swap: %w", err)
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return cursor, fmt.Errorf("replay swap: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var live []string
	for _, m := range models {
		for _, t := range m.Tables {
			live = append(live, pgx.Identifier{"public", t.Name}.Sanitize())
		}
	}
	if len(live) > 0 {
		if _, err := tx.ExecContext(ctx, `SET LOCAL lock_timeout = '5s'`); err != nil {
			return cursor, fmt.Errorf("replay swap: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `LOCK TABLE `+strings.Join(live, ", ")+` IN ACCESS EXCLUSIVE MODE`); err != nil {
			return cursor, fmt.Errorf("replay swap: lock the live tables: %w", err)
		}
	}
	// What committed since the last read; read with the pool, which the
	// locks do not hold up (the event store is not locked). An external
	// model fences its live writers first, and again for any part the
	// catch-up adds, after which it reads again.
	if _, err := fenceExternal(ctx, models); err != nil {
		return cursor, err
	}
	for fenced := true; fenced; {
		for {
			events, next, more, err := s.ReadAllOf(ctx, cursor, batch, aggregates)
			if err != nil {
				return cursor, fmt.Errorf("replay swap: %w", err)
			}
			if err := applyAll(models, events); err != nil {
				return cursor, err
			}
			cursor = next
			if !more {
				break
			}
		}
		// A part the catch-up folded for the first time was not fenced
		// while it read: fence it and read again.
		if fenced, err = fenceExternal(ctx, models); err != nil {
			return cursor, err
		}
	}
	err = rawPgx(conn, func(c *pgx.Conn) error {
		for _, m := range models {
			if err := writeShadow(ctx, c, m); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return cursor, err
	}
	for _, m := range models {
		schema := replaySchema(m.Rebuild.Name())
		if m.BeforeSwap != nil {
			if err := m.BeforeSwap(ctx, tx, schema); err != nil {
				return cursor, fmt.Errorf("replay %s: %w", m.Rebuild.Name(), err)
			}
		}
		for _, t := range m.Tables {
			if err := moveTable(ctx, tx, schema, t.Name); err != nil {
				return cursor, fmt.Errorf("replay %s: swap %s: %w", m.Rebuild.Name(), t.Name, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `DROP SCHEMA `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
			return cursor, fmt.Errorf("replay %s: %w", m.Rebuild.Name(), err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM replay_state WHERE projection = $1`, m.Rebuild.Name()); err != nil {
			return cursor, fmt.Errorf("replay %s: %w", m.Rebuild.Name(), err)
		}
	}
	if err := tx.Commit(); err != nil {
		return cursor, fmt.Errorf("replay swap: commit: %w", err)
	}
	return cursor, nil
}

// fenceExternal fences the external models' live writers, reporting
// whether any part was fenced for the first time.
func fenceExternal(ctx context.Context, models []*ReplayModel) (bool, error) {
	var added bool
	for _, m := range models {
		if m.External == nil {
			continue
		}
		a, err := m.External.Fence(ctx)
		if err != nil {
			return false, fmt.Errorf("replay %s: fence: %w", m.Rebuild.Name(), err)
		}
		added = added || a
	}
	return added, nil
}

// moveTable replaces public.table by schema.table, giving the new table's
// indexes the live one's names (migrations refer to indexes by name).
func moveTable(ctx context.Context, tx *sql.Tx, schema, table string) error {
	names, err := indexNames(ctx, tx, "public", table)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DROP TABLE `+pgx.Identifier{"public", table}.Sanitize()); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `ALTER TABLE `+pgx.Identifier{schema, table}.Sanitize()+` SET SCHEMA public`); err != nil {
		return err
	}
	moved, err := indexNames(ctx, tx, "public", table)
	if err != nil {
		return err
	}
	for def, name := range moved {
		old, ok := names[def]
		if !ok || old == name {
			continue
		}
		if _, err := tx.ExecContext(ctx, `ALTER INDEX `+pgx.Identifier{"public", name}.Sanitize()+` RENAME TO `+pgx.Identifier{old}.Sanitize()); err != nil {
			return err
		}
	}
	return nil
}

// indexNames maps each index of a table, by its definition without its
// name and schema, to its name.
func indexNames(ctx context.Context, tx *sql.Tx, schema, table string) (map[string]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = $2`, schema, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var name, def string
		if err := rows.Scan(&name, &def); err != nil {
			return nil, err
		}
		// "CREATE UNIQUE INDEX name ON schema.table USING …": keep what follows ON.
		if _, after, ok := strings.Cut(def, " ON "); ok {
			_, rest, _ := strings.Cut(after, " ")
			out[strings.SplitN(def, " INDEX ", 2)[0]+" "+rest] = name
		}
	}
	return out, rows.Err()
}

// rawPgx runs fn on the pgx connection under conn: the same session, so
// inside the transaction begun on conn.
func rawPgx(conn *sql.Conn, fn func(*pgx.Conn) error) error {
	return conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("the driver connection is a %T, not pgx's", dc)
		}
		return fn(c.Conn())
	})
}
