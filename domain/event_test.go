package domain_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/domain"
)

// The expected id is RFC 4122 UUIDv5 of the namespace and "<stream>/<version>"
// (Python: uuid.uuid5(namespace, "tenant-1111.../1")). Event ids must be the same on every copy of an event (a relay retry, a
// replay, a rebuilt store) and differ between events, since consumers
// deduplicate by them.
func TestEventIDIsStableAndDistinct(t *testing.T) {
	s := domain.StreamID{Aggregate: "tenant", ID: uuid.MustParse("11111111-2222-4333-8444-555555555555")}
	if got, want := domain.EventID(s, 1).String(), "6f3798a9-10d4-59fa-a213-877d6c25f608"; got != want {
		t.Fatalf("EventID(%s, 1) = %s, want %s: changing it breaks deduplication of stored history", s, got, want)
	}
	seen := map[uuid.UUID]bool{}
	for _, agg := range []string{"tenant", "limits"} {
		for v := int64(1); v <= 100; v++ {
			id := domain.EventID(domain.StreamID{Aggregate: agg, ID: s.ID}, v)
			if seen[id] {
				t.Fatalf("EventID collides at %s v%d", agg, v)
			}
			seen[id] = true
		}
	}
}
