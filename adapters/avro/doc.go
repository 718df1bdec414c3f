// Package avro encodes and decodes the platform's Avro values (goavro) in the
// Avro single-object encoding: the marker C3 01, the schema's 8-byte
// CRC-64-AVRO fingerprint (little-endian), then the binary body. Any consumer
// finds the schema in schemas/avro by that fingerprint, without a registry
// service.
//
// The fingerprint is the specification's: CRC-64-AVRO of the Parsing
// Canonical Form exactly as Java's SchemaNormalization writes it (logical
// types stripped, so a timestamp-millis long is "long"). goavro's own
// canonical form keeps {"type":"long"} for logical types and so fingerprints
// differ from every other language's; this package computes the canonical
// form itself, writes the spec's fingerprint, and accepts both when reading.
//
// This package is the only one that imports goavro.
package avro
