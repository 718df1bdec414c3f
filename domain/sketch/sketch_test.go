package sketch_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/incentives-platform/incentives/domain/sketch"
)

func TestDimensions(t *testing.T) {
	for _, tc := range []struct {
		epsilon, delta float64
		width, depth   int
	}{
		{0.01, 0.01, 272, 5}, // the seed's 272 × 5
		{0.001, 0.001, 2719, 7},
		{0.1, 0.5, 28, 1},
		{0.5, 0.05, 6, 3},
	} {
		w, d, err := sketch.Dimensions(tc.epsilon, tc.delta)
		if err != nil || w != tc.width || d != tc.depth {
			t.Errorf("Dimensions(%v, %v) = %d, %d, %v; want %d, %d", tc.epsilon, tc.delta, w, d, err, tc.width, tc.depth)
		}
	}
	for _, tc := range []struct {
		epsilon, delta float64
		want           []string
	}{
		{0, 0.01, []string{"epsilon 0"}},
		{0.01, 1, []string{"delta 1"}},
		{-1, math.NaN(), []string{"epsilon -1", "delta NaN"}},
		{1e-6, 0.01, []string{"more than"}},
	} {
		_, _, err := sketch.Dimensions(tc.epsilon, tc.delta)
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("Dimensions(%v, %v) error = %v, want one naming %q", tc.epsilon, tc.delta, err, w)
			}
		}
	}
}

func TestNewRefusesImpossibleShapes(t *testing.T) {
	for _, wd := range [][2]int{{0, 5}, {272, 0}, {-1, 5}, {sketch.MaxCounters, 2}, {math.MaxInt, math.MaxInt}} {
		if s, err := sketch.New(wd[0], wd[1]); err == nil {
			t.Errorf("New(%d, %d) = %v, want an error", wd[0], wd[1], s)
		}
	}
}

func TestColumnIsMurmur3ModuloWidth(t *testing.T) {
	// The pinned vectors of this id give its five columns of a 272-wide sketch.
	id := "0b8f9c1e-2f57-4f4e-8a1b-6c2d1e3f4a5b"
	for row, h := range []uint32{0xcaed67b8, 0x6ded621e, 0xab0190fc, 0xfc255013, 0xfd00e17d} {
		if got, want := sketch.Column(id, row, 272), int(h%272); got != want {
			t.Errorf("Column(%q, %d, 272) = %d, want %d", id, row, got, want)
		}
	}
}

func TestAddAndEstimate(t *testing.T) {
	s, err := sketch.NewForError(0.01, 0.01)
	if err != nil {
		t.Fatal(err)
	}
	if s.Width() != 272 || s.Depth() != 5 {
		t.Fatalf("NewForError(0.01, 0.01) is %d × %d, want 272 × 5", s.Width(), s.Depth())
	}
	steps := []struct {
		item string
		n    uint64
		want uint64 // Add's answer; no two of these items share all five cells
	}{
		{"a", 1, 1}, {"b", 3, 3}, {"a", 2, 3}, {"c", 0, 0}, {"a", 10, 13},
	}
	for _, st := range steps {
		if got := s.Add(st.item, st.n); got != st.want {
			t.Errorf("Add(%q, %d) = %d, want %d", st.item, st.n, got, st.want)
		}
	}
	for item, want := range map[string]uint64{"a": 13, "b": 3, "c": 0, "never added": 0} {
		if got := s.Estimate(item); got != want {
			t.Errorf("Estimate(%q) = %d, want %d", item, got, want)
		}
	}
	if s.Total() != 16 {
		t.Errorf("Total() = %d, want 16", s.Total())
	}
	// Every row holds every count once.
	for r := range s.Depth() {
		var sum uint64
		for c := range s.Width() {
			sum += s.Count(r, c)
		}
		if sum != s.Total() {
			t.Errorf("row %d sums to %d, want Total %d", r, sum, s.Total())
		}
	}
}

func TestOneColumnCountsEverything(t *testing.T) {
	// With a single column every item shares every counter: the estimate is
	// the total, the worst over-estimate, never an under-estimate.
	s, err := sketch.New(1, 3)
	if err != nil {
		t.Fatal(err)
	}
	s.Add("x", 5)
	if got := s.Add("y", 1); got != 6 {
		t.Errorf("Add(y) = %d, want 6", got)
	}
}

func TestCountPanicsOutsideTheSketch(t *testing.T) {
	s, _ := sketch.New(4, 2)
	for _, rc := range [][2]int{{-1, 0}, {2, 0}, {0, 4}, {0, -1}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Count(%d, %d) did not panic", rc[0], rc[1])
				}
			}()
			s.Count(rc[0], rc[1])
		}()
	}
}

func TestWindow(t *testing.T) {
	const ten = 10 * time.Minute
	for _, tc := range []struct {
		at   time.Time
		size time.Duration
		want int64
	}{
		{time.Unix(0, 0), ten, 0},
		{time.Unix(599, 999_999_999), ten, 0},
		{time.Unix(600, 0), ten, 1},
		{time.Date(2024, 3, 10, 18, 0, 0, 0, time.UTC), ten, 2850156}, // 1710093600 / 600
		// The same instant in another zone is the same window.
		{time.Date(2024, 3, 10, 23, 30, 0, 0, time.FixedZone("IST", 5*3600+1800)), ten, 2850156},
		{time.Unix(-1, 0), ten, -1},
		{time.Unix(-600, 0), ten, -1},
		{time.Unix(-601, 0), ten, -2},
		{time.Unix(3600, 0), time.Hour, 1},
	} {
		if got := sketch.Window(tc.at, tc.size); got != tc.want {
			t.Errorf("Window(%v, %v) = %d, want %d", tc.at, tc.size, got, tc.want)
		}
		start := sketch.WindowStart(tc.want, tc.size)
		if tc.at.Before(start) || !tc.at.Before(sketch.WindowStart(tc.want+1, tc.size)) {
			t.Errorf("%v is not in window %d [%v, %v)", tc.at, tc.want, start, sketch.WindowStart(tc.want+1, tc.size))
		}
	}
	for _, size := range []time.Duration{0, -time.Minute, 1500 * time.Millisecond} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Window(_, %v) did not panic", size)
				}
			}()
			sketch.Window(time.Unix(0, 0), size)
		}()
	}
}

func BenchmarkAdd(b *testing.B) {
	s, _ := sketch.NewForError(0.01, 0.01)
	id := "0b8f9c1e-2f57-4f4e-8a1b-6c2d1e3f4a5b"
	for b.Loop() {
		s.Add(id, 1)
	}
}
