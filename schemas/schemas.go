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

// Rule is rule.schema.json, the JSON Schema (2020-12) of a campaign's rule.
//
//go:embed rule.schema.json
var Rule []byte

// OpenAPI is openapi.json, the OpenAPI 3.1 document of the REST API. It
// refers to rule.schema.json by file name; adapters/http serves it at
// /openapi.json with that schema bundled in.
//
//go:embed openapi.json
var OpenAPI []byte

// JSON holds json/*.schema.json, the JSON Schemas (2020-12) of the topics
// whose values are JSON: db.incentives.schema.json.
//
//go:embed json/*.schema.json
var JSON embed.FS
