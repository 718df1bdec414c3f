// Package sketch is a Count-Min Sketch (Cormode and Muthukrishnan, 2005) of
// item counts, such as a tenant's matching events per campaign in a window:
// the engine's early filter for hot campaigns (DESIGN.md §6, issue #5).
//
// It is pure logic with no I/O, clock or randomness: the engine keeps its
// live sketches in Redis (adapters/redis/sketch.lua) and this package is the
// same sketch for offline use, tests and anyone checking the script. Both
// place an item in the same cells, so the same stream of items gives the
// same counters and the same estimates, bit for bit.
//
// # Layout
//
// A sketch of width w and depth d is d rows of w counters. Row r (0-based)
// hashes the item with Murmur3 (MurmurHash3_x86_32, see [Murmur3]) seeded
// with r itself, 0 to d-1, and the item's column in that row is the hash, as
// an unsigned 32-bit integer, modulo w. Adding n to an item adds n to its d
// counters; its estimate is the smallest of them.
//
// # Guarantees
//
// With w = ⌈e/ε⌉ and d = ⌈ln(1/δ)⌉ (see [Dimensions]; ε = δ = 0.01 gives
// 272 × 5) and N the total added:
//
//   - an estimate is never below the item's true count, since every counter
//     of the item holds at least its count (counts only grow);
//   - an estimate exceeds the true count by more than εN with probability
//     at most δ, per item queried.
//
// So a campaign whose estimate is under the hot threshold is certainly under
// it, and a cold campaign is taken for hot only when it shares a crowded
// cell in every row.
//
// The package never decrements (counts are unsigned): subtracting would break
// the first guarantee, and windows replace deletion.
package sketch

import (
	"errors"
	"fmt"
	"math"
)

// MaxCounters bounds width × depth. It keeps a sketch small enough to be
// one Redis hash updated inside one script call (ε = 10⁻⁴, δ = 10⁻⁶ still
// fits), and refuses an ε or δ typed in the wrong unit.
const MaxCounters = 1 << 20

// Dimensions returns the width ⌈e/ε⌉ and depth ⌈ln(1/δ)⌉ of a sketch whose
// estimates exceed the true count by more than ε times the total with
// probability at most δ. It returns an error unless 0 < ε < 1 and 0 < δ < 1,
// or when the sketch would have more than MaxCounters counters.
func Dimensions(epsilon, delta float64) (width, depth int, err error) {
	var errs []error
	if !(epsilon > 0 && epsilon < 1) {
		errs = append(errs, fmt.Errorf("epsilon %v: must be in (0, 1)", epsilon))
	}
	if !(delta > 0 && delta < 1) {
		errs = append(errs, fmt.Errorf("delta %v: must be in (0, 1)", delta))
	}
	if err := errors.Join(errs...); err != nil {
		return 0, 0, err
	}
	w := math.Ceil(math.E / epsilon)
	d := math.Ceil(math.Log(1 / delta))
	if w*d > MaxCounters {
		return 0, 0, fmt.Errorf("epsilon %v, delta %v: %v × %v counters, more than %d", epsilon, delta, w, d, MaxCounters)
	}
	return int(w), int(d), nil
}

// Sketch is a Count-Min Sketch held in memory. The zero value is not usable;
// use New or NewForError. It is not safe for concurrent use.
type Sketch struct {
	width, depth int
	counts       []uint64 // row-major: row r, column c at r*width+c
	total        uint64
}

// New returns an empty sketch of width columns and depth rows. It returns
// an error unless both are at least 1 and their product is at most
// MaxCounters.
func New(width, depth int) (*Sketch, error) {
	if width < 1 || depth < 1 || width > MaxCounters || depth > MaxCounters/width {
		return nil, fmt.Errorf("sketch of %d × %d: width and depth must be at least 1 and their product at most %d", width, depth, MaxCounters)
	}
	return &Sketch{width: width, depth: depth, counts: make([]uint64, width*depth)}, nil
}

// NewForError returns an empty sketch with the Dimensions of epsilon and
// delta, and Dimensions' errors.
func NewForError(epsilon, delta float64) (*Sketch, error) {
	w, d, err := Dimensions(epsilon, delta)
	if err != nil {
		return nil, err
	}
	return New(w, d)
}

// Width is the number of columns of each row.
func (s *Sketch) Width() int { return s.width }

// Depth is the number of rows, and of hash functions.
func (s *Sketch) Depth() int { return s.depth }

// Total is N, the sum of every n added: the εN of the error bound.
func (s *Sketch) Total() uint64 { return s.total }

// Column returns the column of item in row of a sketch of the given width:
// Murmur3(item, seed row) mod width. It is the whole contract between this
// package and other implementations of the sketch.
func Column(item string, row, width int) int {
	return int(Murmur3(item, uint32(row)) % uint32(width))
}

// Add adds n occurrences of item and returns its estimate afterwards, the
// answer the Redis script gives for the same update.
func (s *Sketch) Add(item string, n uint64) uint64 {
	s.total += n
	est := uint64(math.MaxUint64)
	for r := range s.depth {
		i := r*s.width + Column(item, r, s.width)
		s.counts[i] += n
		est = min(est, s.counts[i])
	}
	return est
}

// Estimate returns the smallest of item's counters: never below the number
// of times it was added, and above it by more than ε·Total with probability
// at most δ.
func (s *Sketch) Estimate(item string) uint64 {
	est := uint64(math.MaxUint64)
	for r := range s.depth {
		est = min(est, s.counts[r*s.width+Column(item, r, s.width)])
	}
	return est
}

// Count returns the counter at row and col (both 0-based), so another copy
// of the sketch, such as a Redis hash's field "<row>:<col>", can be compared
// counter by counter. It panics when either is out of range.
func (s *Sketch) Count(row, col int) uint64 {
	if row < 0 || row >= s.depth || col < 0 || col >= s.width {
		panic(fmt.Sprintf("sketch: counter %d:%d outside %d × %d", row, col, s.depth, s.width))
	}
	return s.counts[row*s.width+col]
}
