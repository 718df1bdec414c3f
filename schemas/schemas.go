// Package schemas embeds the platform's external contracts: the Avro schemas
// of every Kafka value (avro/*.avsc, one file per schema, named after the event
// type it carries) and, as they are added, the OpenAPI document and the JSON
// schema of campaign rules. The files are the contract; code reads them from
// here and never keeps a second copy.
package schemas

import "embed"

// Avro holds avro/*.avsc.
//
//go:embed avro/*.avsc
var Avro embed.FS
