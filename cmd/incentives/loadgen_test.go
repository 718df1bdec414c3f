package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/adapters/avro"
	"github.com/incentives-platform/incentives/adapters/kafka"
	"github.com/incentives-platform/incentives/adapters/kafka/kafkatest"
	"github.com/incentives-platform/incentives/bench/loadgen"
)

func TestLoadgenSendsValidEventsKeyedByTenant(t *testing.T) {
	t.Parallel()
	b := kafkatest.MustBroker(t)
	code, out, errOut := runCLI(t, map[string]string{"KAFKA_BROKERS": b.Addr()},
		"loadgen", "--count", "300", "--tenants", "2", "--seed", "5", "--users", "20", "--campaign-actions", "LOGIN,PURCHASE")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "sent 300 events to tenant-events") {
		t.Fatalf("summary %q", out)
	}
	tenants := []uuid.UUID{loadgen.TenantID(5, 0), loadgen.TenantID(5, 1)}
	if !strings.Contains(errOut, tenants[0].String()) {
		t.Fatalf("the start line does not name the tenants: %q", errOut)
	}
	registry, _, err := avro.LoadPlatform()
	if err != nil {
		t.Fatal(err)
	}
	records := kafkatest.ReadN(t, b.Brokers(), 300, 10*time.Second, kafka.TenantEventsTopic)
	partitions := map[int32]bool{}
	for _, r := range records {
		e, err := kafka.DecodeActionEvent(registry, []byte(r.Key), r.Value)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(tenants, e.TenantID) || (e.ActionCode != "LOGIN" && e.ActionCode != "PURCHASE") {
			t.Fatalf("event %+v: tenant or action not asked for", e)
		}
		partitions[r.Partition] = true
	}
	if len(records) != 300 {
		t.Fatalf("%d records on tenant-events, want 300", len(records))
	}
	// Keyed by tenant: each tenant's events are in one partition.
	if len(partitions) > len(tenants) {
		t.Fatalf("%d tenants' events in %d partitions", len(tenants), len(partitions))
	}
}

func TestLoadgenTargetsGivenTenantsAtARate(t *testing.T) {
	t.Parallel()
	b := kafkatest.MustBroker(t)
	mine := uuid.New()
	start := time.Now()
	code, out, errOut := runCLI(t, nil, "loadgen", "--brokers", b.Addr(), "--tenant-ids", mine.String(),
		"--rate", "400", "--duration", "500ms")
	took := time.Since(start)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var sent int
	if _, err := fmt.Sscanf(out, "sent %d events", &sent); err != nil {
		t.Fatalf("summary %q: %v", out, err)
	}
	// 400/s for half a second: about 200, never a flood.
	if sent < 100 || sent > 260 || took > 5*time.Second {
		t.Fatalf("sent %d events in %s, want about 200 in half a second", sent, took)
	}
	for _, r := range kafkatest.ReadN(t, b.Brokers(), sent, 10*time.Second, kafka.TenantEventsTopic) {
		if r.Key != mine.String() {
			t.Fatalf("record keyed %q, want only the given tenant %s", r.Key, mine)
		}
	}
}

func TestLoadgenRefusesBadFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"loadgen", "--tenant-ids", "acme"},
		{"loadgen", "--rate", "-1"},
		{"loadgen", "--zipf", "1"},
		{"loadgen", "--campaign-actions", "login"},
		{"loadgen", "--users", "0"},
	} {
		// Port 1 refuses: a flag error must come before any connection.
		code, _, errOut := runCLI(t, map[string]string{"KAFKA_BROKERS": "127.0.0.1:1"}, args...)
		if code == 0 || errOut == "" {
			t.Errorf("%v: exit %d with %q, want a failure that says why", args, code, errOut)
		}
	}
}
