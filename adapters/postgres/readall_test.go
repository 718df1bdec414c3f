package postgres_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/adapters/postgres"
	"github.com/incentives-platform/incentives/adapters/postgres/pgtest"
	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/tenant"
)

// Two transactions overlap: A takes the lower position but commits after B.
// A reader trusting positions sees B's event first, moves past A's position
// and never sees A. ReadAll must return nothing of B until A has committed,
// then both, A first.
func TestReadAllNeverSkipsATransactionThatCommitsLate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.MustOpen(t)
	store := postgres.NewTestEventStore(t, db)
	now := time.Now().UTC().Truncate(time.Millisecond)
	appendIn := func(name string) (*domain.RecordedEvent, func() error) { return appendOpen(t, db, store, name, now) }

	a, commitA := appendIn("A")
	b, commitB := appendIn("B")
	if a.Position >= b.Position {
		t.Fatalf("positions %d, %d: want A below B", a.Position, b.Position)
	}
	if err := commitB(); err != nil {
		t.Fatal(err)
	}

	// The hazard: by position, B is visible and A is not.
	var naive []int64
	rows, err := db.Pool.Query(ctx, `SELECT position FROM event_store ORDER BY position`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var p int64
		_ = rows.Scan(&p)
		naive = append(naive, p)
	}
	rows.Close()
	if len(naive) != 1 || naive[0] != b.Position {
		t.Fatalf("a position reader sees %v; the test expects only B's %d", naive, b.Position)
	}

	recs, cursor, err := store.ReadAll(ctx, postgres.Cursor{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 0 || cursor != (postgres.Cursor{}) {
		t.Fatalf("while A is open ReadAll returned %d events (cursor %v); want none", len(recs), cursor)
	}

	if err := commitA(); err != nil {
		t.Fatal(err)
	}
	var got []domain.RecordedEvent
	deadline := time.Now().Add(15 * time.Second)
	for len(got) < 2 && time.Now().Before(deadline) {
		recs, cursor, err = store.ReadAll(ctx, cursor, 100)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, recs...)
		time.Sleep(5 * time.Millisecond)
	}
	if len(got) != 2 || got[0].Position != a.Position || got[1].Position != b.Position {
		t.Fatalf("after both commits ReadAll returned %v; want A (%d) then B (%d)", positions(got), a.Position, b.Position)
	}
	if more, _, _ := store.ReadAll(ctx, cursor, 100); len(more) != 0 {
		t.Fatalf("ReadAll after the last cursor returned %v", positions(more))
	}
}

func TestCursorRoundTrip(t *testing.T) {
	c := postgres.Cursor{TransactionID: 1<<40 + 7, Position: 123}
	got, err := postgres.ParseCursor(c.String())
	if err != nil || got != c {
		t.Fatalf("ParseCursor(%q) = %v, %v", c.String(), got, err)
	}
	for _, bad := range []string{"", "1", "x:1", "1:y", "-1:2"} {
		if _, err := postgres.ParseCursor(bad); err == nil {
			t.Errorf("ParseCursor(%q) accepted", bad)
		}
	}
}

func positions(recs []domain.RecordedEvent) []int64 {
	out := make([]int64, len(recs))
	for i, r := range recs {
		out[i] = r.Position
	}
	return out
}

// A replay started --since a time while an older transaction is still open
// must not start past it: that transaction's events, once committed, are
// read from the start cursor, with the later one's.
func TestReplayStartNeverSkipsATransactionStillOpen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.MustOpen(t)
	store := postgres.NewTestEventStore(t, db)
	since := time.Now().UTC().Add(-time.Second)
	appendIn := func(name string) (*domain.RecordedEvent, func() error) { return appendOpen(t, db, store, name, since) }
	a, commitA := appendIn("A")
	b, commitB := appendIn("B")
	if err := commitB(); err != nil {
		t.Fatal(err)
	}
	for _, opt := range []postgres.ReplayOptions{{Since: since}, {From: a.Position}, {Since: time.Now().Add(time.Hour)}} {
		start, err := store.StartCursor(ctx, opt)
		if err != nil {
			t.Fatal(err)
		}
		var bTx uint64
		if err := db.Pool.QueryRow(ctx, `SELECT transaction_id::text::bigint FROM event_store WHERE position = $1`, b.Position).Scan(&bTx); err != nil {
			t.Fatal(err)
		}
		if start.TransactionID >= bTx {
			t.Errorf("%+v: start %v is past the open transaction (B's is %d)", opt, start, bTx)
		}
	}
	start, err := store.StartCursor(ctx, postgres.ReplayOptions{Since: since})
	if err != nil {
		t.Fatal(err)
	}
	if err := commitA(); err != nil {
		t.Fatal(err)
	}
	// Another test's transaction may hold the snapshot's xmin back a moment.
	var got []int64
	for deadline := time.Now().Add(15 * time.Second); len(got) < 2 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		recs, _, err := store.ReadAll(ctx, start, 100)
		if err != nil {
			t.Fatal(err)
		}
		got = got[:0]
		for _, r := range recs {
			got = append(got, r.Position)
		}
	}
	if len(got) != 2 || !slices.Contains(got, a.Position) || !slices.Contains(got, b.Position) {
		t.Fatalf("from the start cursor, read %v; want A's %d and B's %d", got, a.Position, b.Position)
	}
}

// appendOpen appends a tenant's creation in a transaction it leaves open,
// and returns the recorded event and the commit.
func appendOpen(t *testing.T, db *postgres.DB, store *postgres.EventStore, name string, at time.Time) (*domain.RecordedEvent, func() error) {
	t.Helper()
	ctx := context.Background()
	tx, err := db.SQL.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback() })
	id := uuid.New()
	recs, err := store.AppendTx(ctx, tx, domain.Metadata{TenantID: id}, domain.StreamAppend{
		Stream: tenant.Stream(id), Events: []domain.Event{tenant.Created{TenantID: id, Name: name, CreatedAt: at}}})
	if err != nil {
		t.Fatal(err)
	}
	return &recs[0], tx.Commit
}
