package avro

// crc64Empty is the CRC-64-AVRO seed (the specification's EMPTY).
const crc64Empty uint64 = 0xc15d213aa4d7a795

var crc64Table = func() (t [256]uint64) {
	for i := range t {
		fp := uint64(i)
		for range 8 {
			fp = (fp >> 1) ^ (crc64Empty & -(fp & 1))
		}
		t[i] = fp
	}
	return t
}()

// Fingerprint returns the CRC-64-AVRO (Rabin) fingerprint of data, as the Avro
// specification defines it. Applied to a schema's Parsing Canonical Form it is
// the schema's fingerprint.
func Fingerprint(data []byte) uint64 {
	fp := crc64Empty
	for _, c := range data {
		fp = (fp >> 8) ^ crc64Table[byte(fp)^c]
	}
	return fp
}
