package sketch_test

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/domain/sketch"
)

// zipfStream draws n items from ids campaign ids with Zipf exponent s: the
// shape of real campaign traffic, a few campaigns taking most events. It
// returns the ids, as UUIDs in the canonical text the engine hashes, and the
// stream.
func zipfStream(seed uint64, n, ids int, s float64) (universe, stream []string) {
	rng := rand.New(rand.NewPCG(seed, 0x5ca1ab1e))
	names := make([]string, ids)
	for i := range names {
		var u uuid.UUID
		binary.BigEndian.PutUint64(u[:8], rng.Uint64())
		binary.BigEndian.PutUint64(u[8:], rng.Uint64())
		names[i] = u.String()
	}
	z := rand.NewZipf(rng, s, 1, uint64(ids-1))
	stream = make([]string, n)
	for i := range stream {
		stream[i] = names[z.Uint64()]
	}
	return names, stream
}

// TestAccuracyOnZipfStream is issue #5's accuracy test for the Go sketch
// (adapters/redis has the same for the Lua one): 200,000 events over 5,000
// campaigns with s = 1.1, ε = δ = 0.01. No estimate may be below the true
// count, at any point of the stream, and the share of campaigns estimated
// above true + εN must stay at or under δ (Cormode and Muthukrishnan's bound,
// which holds per query with probability 1 - δ).
func TestAccuracyOnZipfStream(t *testing.T) {
	const (
		n       = 200_000
		ids     = 5_000
		epsilon = 0.01
		delta   = 0.01
	)
	for _, seed := range []uint64{1, 2, 3} {
		universe, stream := zipfStream(seed, n, ids, 1.1)
		s, err := sketch.NewForError(epsilon, delta)
		if err != nil {
			t.Fatal(err)
		}
		exact := map[string]uint64{}
		for i, item := range stream {
			exact[item]++
			if est := s.Add(item, 1); est < exact[item] {
				t.Fatalf("stream %d, event %d: Add(%s) = %d, below the true %d", seed, i, item, est, exact[item])
			}
		}
		// Every campaign of the universe is queried, those never drawn too.
		bound := uint64(epsilon * n)
		var over, maxErr uint64
		for _, item := range universe {
			est, truth := s.Estimate(item), exact[item]
			if est < truth {
				t.Fatalf("stream %d: Estimate(%s) = %d, below the true %d", seed, item, est, truth)
			}
			maxErr = max(maxErr, est-truth)
			if est > truth+bound {
				over++
			}
		}
		share := float64(over) / float64(len(universe))
		t.Logf("stream %d: %d distinct of %d campaigns drawn; %d estimates above true + εN (%d): share %.4f (δ = %v); largest error %d",
			seed, len(exact), ids, over, bound, share, delta, maxErr)
		if share > delta {
			t.Errorf("stream %d: share above true + εN = %.4f, want at most %v", seed, share, delta)
		}
	}
}
