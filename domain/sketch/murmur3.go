package sketch

import "math/bits"

// Murmur3 is MurmurHash3_x86_32 (Austin Appleby, SMHasher) of the bytes of
// data with seed. It is the function of the reference implementation
// bit for bit, so any language's Murmur3_x86_32 (Guava's murmur3_32_fixed,
// Python's mmh3.hash with signed=False, the Lua in adapters/redis/sketch.lua)
// places an item in the same columns; testdata/murmur3_x86_32.json holds the
// vectors every implementation must reproduce.
//
// A Go string is its bytes: callers hash the item's canonical text (a UUID's
// lowercase 36-character form), never a re-encoding of it.
func Murmur3(data string, seed uint32) uint32 {
	const (
		c1 = 0xcc9e2d51
		c2 = 0x1b873593
	)
	h := seed
	n := len(data)
	i := 0
	for ; i+4 <= n; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= c1
		k = bits.RotateLeft32(k, 15)
		k *= c2
		h ^= k
		h = bits.RotateLeft32(h, 13)
		h = h*5 + 0xe6546b64
	}
	// The 1 to 3 bytes left over, little-endian, mixed like a block but
	// without the rotate-and-add of h.
	var k uint32
	switch n - i {
	case 3:
		k ^= uint32(data[i+2]) << 16
		fallthrough
	case 2:
		k ^= uint32(data[i+1]) << 8
		fallthrough
	case 1:
		k ^= uint32(data[i])
		k *= c1
		k = bits.RotateLeft32(k, 15)
		k *= c2
		h ^= k
	}
	// The reference takes the length as a 32-bit int: inputs of 4 GiB or
	// more wrap, as they do there.
	h ^= uint32(n)
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}
