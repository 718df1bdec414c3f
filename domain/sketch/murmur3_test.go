package sketch_test

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"strconv"
	"testing"

	"github.com/incentives-platform/incentives/domain/sketch"
)

// vector is one line of testdata/murmur3_x86_32.json, which the Redis
// adapter's tests check the Lua hashing against too.
type vector struct {
	Input    string `json:"input"`
	InputHex string `json:"input_hex"`
	Seed     string `json:"seed"`
	Hash     string `json:"hash"`
	Source   string `json:"source"`
	Pinned   bool   `json:"pinned"`
}

func loadVectors(t *testing.T) []vector {
	t.Helper()
	raw, err := os.ReadFile("testdata/murmur3_x86_32.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct{ Vectors []vector }
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	return file.Vectors
}

func (v vector) parse(t *testing.T) (input string, seed, hash uint32) {
	t.Helper()
	input = v.Input
	if v.InputHex != "" {
		b, err := hex.DecodeString(v.InputHex)
		if err != nil {
			t.Fatalf("vector %+v: %v", v, err)
		}
		input = string(b)
	}
	s, err1 := strconv.ParseUint(v.Seed, 0, 32)
	h, err2 := strconv.ParseUint(v.Hash, 0, 32)
	if err1 != nil || err2 != nil || (v.Source == "") == !v.Pinned {
		t.Fatalf("vector %+v: seed %v, hash %v; want a source or pinned, not both", v, err1, err2)
	}
	return input, uint32(s), uint32(h)
}

func TestMurmur3Vectors(t *testing.T) {
	vs := loadVectors(t)
	published := 0
	for _, v := range vs {
		input, seed, want := v.parse(t)
		if got := sketch.Murmur3(input, seed); got != want {
			t.Errorf("Murmur3(%q, %#08x) = %#08x, want %#08x (%s)", input, seed, got, want, v.Source)
		}
		if !v.Pinned {
			published++
		}
	}
	if published < 40 {
		t.Errorf("%d published vectors, want at least 40", published)
	}
}

// TestMurmur3SMHasherVerification is SMHasher's own check of an
// implementation: hash the keys {}, {0}, {0,1}, ... {0..254} with seed
// 256 - length, hash the 256 results (little-endian) with seed 0.
func TestMurmur3SMHasherVerification(t *testing.T) {
	var key [256]byte
	var hashes [1024]byte
	for i := range 256 {
		key[i] = byte(i)
		h := sketch.Murmur3(string(key[:i]), uint32(256-i))
		hashes[4*i], hashes[4*i+1], hashes[4*i+2], hashes[4*i+3] = byte(h), byte(h>>8), byte(h>>16), byte(h>>24)
	}
	if got := sketch.Murmur3(string(hashes[:]), 0); got != 0xb0f57ee3 {
		t.Errorf("verification value = %#08x, want 0xb0f57ee3", got)
	}
}

func BenchmarkMurmur3CampaignID(b *testing.B) {
	id := "0b8f9c1e-2f57-4f4e-8a1b-6c2d1e3f4a5b"
	for b.Loop() {
		sketch.Murmur3(id, 3)
	}
}
