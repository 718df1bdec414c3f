package loadgen_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/incentives-platform/incentives/adapters/avro"
	"github.com/incentives-platform/incentives/adapters/kafka"
	"github.com/incentives-platform/incentives/bench/loadgen"
	"github.com/incentives-platform/incentives/domain/engine"
)

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func stream(t *testing.T, cfg loadgen.Config, n int) []engine.ActionEvent {
	t.Helper()
	g, err := loadgen.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]engine.ActionEvent, n)
	for i := range out {
		out[i] = g.Next(t0.Add(time.Duration(i) * time.Millisecond))
	}
	return out
}

func TestTheSameSeedsGiveTheSameStream(t *testing.T) {
	cfg := loadgen.Config{Seed: 7, StreamSeed: 42, Tenants: 4, Users: 100}
	a, b := stream(t, cfg, 500), stream(t, cfg, 500)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two generators of one config disagree")
	}
	cfg.StreamSeed = 43
	c := stream(t, cfg, 500)
	seen := map[uuid.UUID]bool{}
	for _, e := range a {
		seen[e.EventID] = true
	}
	for _, e := range c {
		if seen[e.EventID] {
			t.Fatalf("event id %s repeats across stream seeds", e.EventID)
		}
	}
	// The tenants depend on Seed alone.
	tenantsOf := func(events []engine.ActionEvent) []uuid.UUID {
		var ids []uuid.UUID
		for _, e := range events {
			if !slices.Contains(ids, e.TenantID) {
				ids = append(ids, e.TenantID)
			}
		}
		slices.SortFunc(ids, func(x, y uuid.UUID) int { return slices.Compare(x[:], y[:]) })
		return ids
	}
	want := []uuid.UUID{loadgen.TenantID(7, 0), loadgen.TenantID(7, 1), loadgen.TenantID(7, 2), loadgen.TenantID(7, 3)}
	slices.SortFunc(want, func(x, y uuid.UUID) int { return slices.Compare(x[:], y[:]) })
	if !slices.Equal(tenantsOf(a), want) || !slices.Equal(tenantsOf(c), want) {
		t.Fatalf("tenants %v and %v, want %v", tenantsOf(a), tenantsOf(c), want)
	}
	if loadgen.TenantID(7, 0) == loadgen.TenantID(8, 0) {
		t.Fatal("two seeds name the same tenant")
	}
}

func TestExplicitTenantsAreUsedAsGiven(t *testing.T) {
	mine := []uuid.UUID{uuid.New(), uuid.New()}
	for _, e := range stream(t, loadgen.Config{TenantIDs: mine}, 200) {
		if !slices.Contains(mine, e.TenantID) {
			t.Fatalf("tenant %s, want one of %v only", e.TenantID, mine)
		}
	}
	g, err := loadgen.New(loadgen.Config{TenantIDs: mine, Tenants: 1, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if got := g.Tenants(); !slices.Equal(got, append(mine, loadgen.TenantID(3, 0))) {
		t.Fatalf("Tenants() = %v", got)
	}
}

func TestActionPopularityIsZipfSkewed(t *testing.T) {
	counts := map[string]int{}
	for _, e := range stream(t, loadgen.Config{StreamSeed: 1}, 20_000) {
		counts[e.ActionCode]++
	}
	var byRank []int
	for _, a := range loadgen.DefaultActions {
		byRank = append(byRank, counts[a])
	}
	if !sort.IsSorted(sort.Reverse(sort.IntSlice(byRank))) || byRank[0] < 3*byRank[4] {
		t.Fatalf("counts by rank %v: want falling, the first at least 3 times the last", byRank)
	}
	// s = 1.1 over five actions: the first about 46%.
	if share := float64(byRank[0]) / 20_000; share < 0.42 || share > 0.50 {
		t.Fatalf("the most popular action has %.0f%% of events, want about 46%%", share*100)
	}
	// A steeper exponent concentrates more.
	steep := 0
	for _, e := range stream(t, loadgen.Config{StreamSeed: 1, Zipf: 2}, 20_000) {
		if e.ActionCode == loadgen.DefaultActions[0] {
			steep++
		}
	}
	if steep <= byRank[0] {
		t.Fatalf("Zipf 2 gives the first action %d events, Zipf 1.1 gives %d", steep, byRank[0])
	}
}

func TestEventsAreValidActionEventsWithRealisticPayloads(t *testing.T) {
	reg, _, err := avro.LoadPlatform()
	if err != nil {
		t.Fatal(err)
	}
	var amounts []decimal.Decimal
	users := map[string]bool{}
	for _, e := range stream(t, loadgen.Config{StreamSeed: 9, Users: 50}, 5000) {
		value, err := kafka.EncodeActionEvent(reg, e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := kafka.DecodeActionEvent(reg, []byte(e.TenantID.String()), value)
		if err != nil {
			t.Fatalf("generated event is invalid: %v", err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("the generated payload map differs from what a consumer decodes:\n%+v\n%+v", e.Payload, got.Payload)
		}
		users[e.UserID] = true
		if e.Payload["channel"] == nil {
			t.Fatalf("payload without a channel: %s", e.RawPayload)
		}
		if e.ActionCode == "PURCHASE" {
			a, err := decimal.NewFromString(string(e.Payload["amount"].(json.Number)))
			if err != nil || a.Exponent() != -2 || !a.IsPositive() || e.Payload["items"] == nil {
				t.Fatalf("purchase payload %s", e.RawPayload)
			}
			amounts = append(amounts, a)
		}
	}
	if len(users) != 50 {
		t.Fatalf("%d distinct users, want all 50", len(users))
	}
	slices.SortFunc(amounts, func(a, b decimal.Decimal) int { return a.Cmp(b) })
	median, p95 := amounts[len(amounts)/2], amounts[len(amounts)*95/100]
	if median.LessThan(decimal.NewFromInt(500)) || median.GreaterThan(decimal.NewFromInt(1100)) || p95.LessThan(median.Mul(decimal.NewFromInt(3))) {
		t.Fatalf("purchase amounts: median %s, p95 %s; want a median near 750 and a long tail", median, p95)
	}
}

func TestConfigReportsEveryProblem(t *testing.T) {
	_, err := loadgen.New(loadgen.Config{Zipf: 1, Users: -1, Actions: []string{"login"}})
	if err == nil {
		t.Fatal("an invalid config was accepted")
	}
	for _, want := range []string{"Zipf", "Users", "login"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}
