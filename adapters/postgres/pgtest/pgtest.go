// Package pgtest gives tests and benchmarks their own migrated PostgreSQL
// database, so they run in parallel and leave nothing behind.
//
// A test process migrates one template database once and clones it per test
// (CREATE DATABASE ... TEMPLATE), which is faster than migrating each time.
// Databases are named itest_<pid>_...; a later run drops those of processes
// that no longer exist, so a killed run leaves nothing for long.
package pgtest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/incentives-platform/incentives/adapters/postgres"
)

// AdminURL is the server connection used to create and drop test databases:
// $TEST_DATABASE_URL, or the local server's postgres database.
func AdminURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

var (
	templateOnce sync.Once
	templateName string
	templateErr  error
	counter      atomic.Int64
)

// NewDatabase creates a fresh migrated database and returns its URL and a
// function that drops it.
func NewDatabase(ctx context.Context) (dbURL string, drop func() error, err error) {
	templateOnce.Do(func() { templateName, templateErr = makeTemplate(ctx) })
	if templateErr != nil {
		return "", nil, templateErr
	}
	name := fmt.Sprintf("itest_%d_%d_%d", os.Getpid(), time.Now().UnixNano()%1e6, counter.Add(1))
	if err := admin(ctx, "CREATE DATABASE "+name+" TEMPLATE "+templateName); err != nil {
		return "", nil, err
	}
	return withDatabase(AdminURL(), name), func() error {
		return admin(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	}, nil
}

// MustDatabase returns the URL of a fresh migrated database that is dropped
// when tb ends.
func MustDatabase(tb testing.TB) string {
	tb.Helper()
	dbURL, drop, err := NewDatabase(context.Background())
	if err != nil {
		tb.Fatalf("test database: %v", err)
	}
	tb.Cleanup(func() {
		if err := drop(); err != nil {
			tb.Errorf("drop test database: %v", err)
		}
	})
	return dbURL
}

// MustOpen returns an open pool to a fresh migrated database; both are
// closed and dropped when tb ends.
func MustOpen(tb testing.TB) *postgres.DB {
	tb.Helper()
	db, err := postgres.Open(context.Background(), MustDatabase(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	return db
}

// Run runs a test package's tests and then drops this process's template
// database: call it from TestMain as os.Exit(pgtest.Run(m)).
func Run(m *testing.M) int {
	code := m.Run()
	if err := DropTemplate(); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
	}
	return code
}

// DropTemplate drops this process's template database, if it made one.
// Programs that are not tests (benchmarks) call it when done.
func DropTemplate() error {
	if templateName == "" {
		return nil
	}
	if err := admin(context.Background(), "DROP DATABASE IF EXISTS "+templateName+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop template: %w", err)
	}
	return nil
}

func makeTemplate(ctx context.Context) (string, error) {
	if err := dropStale(ctx); err != nil {
		return "", err
	}
	name := fmt.Sprintf("itest_%d_template", os.Getpid())
	if err := admin(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		return "", err
	}
	if err := admin(ctx, "CREATE DATABASE "+name); err != nil {
		return "", err
	}
	db, err := postgres.Open(ctx, withDatabase(AdminURL(), name))
	if err != nil {
		return "", err
	}
	_, err = postgres.Migrate(ctx, db, slog.New(slog.NewTextHandler(io.Discard, nil)))
	// No connection may stay open to a template while it is cloned.
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("migrate template: %w", err)
	}
	return name, nil
}

// dropStale drops test databases of test processes that have exited.
func dropStale(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		return fmt.Errorf("connect to test postgres at %s (set TEST_DATABASE_URL): %w", AdminURL(), err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT datname FROM pg_database WHERE datname LIKE 'itest\_%'`)
	if err != nil {
		return err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, n := range names {
		parts := strings.Split(n, "_")
		pid, err := strconv.Atoi(parts[1])
		if err != nil || processAlive(pid) {
			continue
		}
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+n+" WITH (FORCE)"); err != nil {
			return err
		}
	}
	return nil
}

func processAlive(pid int) bool {
	p, err := os.FindProcess(pid)
	return err == nil && p.Signal(syscall.Signal(0)) == nil
}

func admin(ctx context.Context, stmt string) error {
	conn, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		return fmt.Errorf("connect to test postgres at %s (set TEST_DATABASE_URL): %w", AdminURL(), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("%s: %w", stmt, err)
	}
	return nil
}

// withDatabase returns rawURL naming database name instead.
func withDatabase(rawURL, name string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		panic(fmt.Sprintf("pgtest: bad database url %q: %v", rawURL, err))
	}
	u.Path = "/" + name
	return u.String()
}

// MustUnusedDatabase returns the URL of a database that does not exist yet,
// for tests of code that creates it; it is dropped when tb ends.
func MustUnusedDatabase(tb testing.TB) string {
	tb.Helper()
	name := fmt.Sprintf("itest_%d_%d_%d", os.Getpid(), time.Now().UnixNano()%1e6, counter.Add(1))
	tb.Cleanup(func() {
		if err := admin(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Errorf("drop test database: %v", err)
		}
	})
	return withDatabase(AdminURL(), name)
}
