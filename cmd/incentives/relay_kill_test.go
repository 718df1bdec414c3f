package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/adapters/avro"
	"github.com/incentives-platform/incentives/adapters/jsonschema"
	"github.com/incentives-platform/incentives/adapters/kafka"
	"github.com/incentives-platform/incentives/adapters/kafka/kafkatest"
	"github.com/incentives-platform/incentives/adapters/postgres"
	"github.com/incentives-platform/incentives/adapters/postgres/pgtest"
	"github.com/incentives-platform/incentives/commands"
)

// process is a platform process started from the test binary.
type process struct {
	cmd *exec.Cmd
	out *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startProcess runs `incentives <args>` as a child process with env added.
func startProcess(t *testing.T, env []string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(append(os.Environ(), runAsBinaryEnv+"=1"), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, out: out}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		if t.Failed() {
			t.Logf("output of %v:\n%s", args, out.String())
		}
	})
	return p
}

// mustRuleSchema loads the campaign rule schema every command application needs.
func mustRuleSchema(t *testing.T) *jsonschema.RuleSchema {
	t.Helper()
	s, err := jsonschema.LoadRuleSchema()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type nopRecorder struct{}

func (nopRecorder) ObserveCommand(string, time.Duration, string) {}

// writeTenants creates n tenants and takes each through four more lifecycle
// events, from 8 writers: six events per tenant, five of them in one stream.
// It returns the first error, so it can run off the test's goroutine.
func writeTenants(app commands.Application, n int) error {
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	work := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				id := uuid.New()
				_, err := app.CreateTenant.Handle(ctx, commands.CreateTenant{TenantID: id, Name: fmt.Sprint("tenant ", i)})
				for k := 0; err == nil && k < 2; k++ {
					if _, err = app.SuspendTenant.Handle(ctx, commands.SuspendTenant{TenantID: id}); err == nil {
						_, err = app.ReactivateTenant.Handle(ctx, commands.ReactivateTenant{TenantID: id})
					}
				}
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	return <-errs
}

// A relay killed mid-stream (SIGKILL: no goodbye) and restarted, with events
// committed while it was down, still gets every event to Kafka, each stream's
// events in version order. Redelivered duplicates are allowed; consumers
// deduplicate by stream version.
func TestRelayKilledMidStreamLosesNothingAndKeepsStreamOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	broker := kafkatest.MustBroker(t)
	dbURL := pgtest.MustDatabase(t)
	db, err := postgres.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, codec, err := avro.LoadPlatform()
	if err != nil {
		t.Fatal(err)
	}
	store, err := postgres.NewEventStore(db, postgres.EventStoreConfig{Codec: codec, Outbox: kafka.DomainMessages{Codec: codec}})
	if err != nil {
		t.Fatal(err)
	}
	app := commands.NewApplication(commands.Dependencies{Store: store, Clock: commands.SystemClock{},
		TenantDefaults: commands.DefaultTenantDefaults(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Recorder: nopRecorder{}, RuleSchema: mustRuleSchema(t)})
	relayEnv := []string{"DATABASE_URL=" + dbURL, "KAFKA_BROKERS=" + broker.Addr(), "ROLES=relay", "LOG_LEVEL=warn", "KAFKA_PARTITIONS=4", "HTTP_ADDR=127.0.0.1:0"}
	collected := kafkatest.Collect(t, broker.Brokers(), "ic.domain.tenant", "ic.domain.limits")

	// A backlog committed before any relay runs.
	if err := writeTenants(app, 300); err != nil {
		t.Fatal(err)
	}
	first := startProcess(t, relayEnv, "serve")
	// More commits while it relays; kill it as soon as it is under way.
	writing := make(chan error, 1)
	go func() { writing <- writeTenants(app, 150) }()
	eventually(t, "the first relay publishing", func() bool { return collected.Len() >= 200 })
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.cmd.Wait()
	if err := <-writing; err != nil {
		t.Fatal(err)
	}
	killedAt := collected.Len()
	// Commits while no relay runs: committed, not yet published.
	if err := writeTenants(app, 100); err != nil {
		t.Fatal(err)
	}

	second := startProcess(t, relayEnv, "serve")
	want := allEvents(t, db)
	eventually(t, fmt.Sprintf("all %d events on Kafka", len(want)), func() bool { return distinct(collected.Records()) >= len(want) })
	if err := second.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := second.cmd.Wait(); err != nil {
		t.Fatalf("relay after SIGTERM: %v", err)
	}

	records := collected.Records()
	t.Logf("%d events, %d records on Kafka (%d redelivered); the first relay was killed after %d", len(want), len(records), len(records)-distinct(records), killedAt)
	type streamKey struct{ aggregate, id string }
	partitionOf := map[streamKey]int32{}
	versions := map[streamKey][]int64{}
	sort.SliceStable(records, func(i, j int) bool {
		a, b := records[i], records[j]
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		if a.Partition != b.Partition {
			return a.Partition < b.Partition
		}
		return a.Offset < b.Offset
	})
	for _, r := range records {
		k := streamKey{r.Headers[kafka.HeaderAggregate], r.Key}
		if p, ok := partitionOf[k]; ok && p != r.Partition {
			t.Fatalf("stream %v in partitions %d and %d", k, p, r.Partition)
		}
		partitionOf[k] = r.Partition
		v, _ := strconv.ParseInt(r.Headers[kafka.HeaderStreamVersion], 10, 64)
		versions[k] = append(versions[k], v)
	}
	for e := range want {
		k := streamKey{e.aggregate, e.id}
		if firstSeen(versions[k], e.version) < 0 {
			t.Fatalf("stream %v version %d never reached Kafka", k, e.version)
		}
	}
	for k, vs := range versions {
		// Each version's first appearance comes after its predecessor's.
		last := -1
		for v := int64(1); ; v++ {
			at := firstSeen(vs, v)
			if at < 0 {
				break
			}
			if at < last {
				t.Fatalf("stream %v: version %d first appears before version %d: %v", k, v, v-1, vs)
			}
			last = at
		}
	}
}

type eventKey struct {
	aggregate, id string
	version       int64
}

// allEvents reads every event in the store straight from its table. ReadAll
// would be wrong here: it withholds events newer than any transaction still
// open anywhere in the cluster (another test's relay, say), which is right for
// a catch-up reader but would make this test wait for too few.
func allEvents(t *testing.T, db *postgres.DB) map[eventKey]bool {
	t.Helper()
	rows, err := db.Pool.Query(context.Background(), `SELECT aggregate, aggregate_id::text, version FROM event_store`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[eventKey]bool{}
	for rows.Next() {
		var k eventKey
		if err := rows.Scan(&k.aggregate, &k.id, &k.version); err != nil {
			t.Fatal(err)
		}
		out[k] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func distinct(records []kafkatest.Record) int {
	seen := map[string]bool{}
	for _, r := range records {
		seen[r.Headers["_watermill_message_uuid"]] = true
	}
	return len(seen)
}

func firstSeen(vs []int64, v int64) int {
	for i, x := range vs {
		if x == v {
			return i
		}
	}
	return -1
}
