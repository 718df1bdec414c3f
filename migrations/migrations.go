// Package migrations embeds the platform's SQL migrations, applied in order by
// `incentives migrate` (and by `serve --migrate`) through goose. Each file is
// append-only history: once a migration has shipped, fix it with a new one.
package migrations

import "embed"

// FS holds the *.sql migrations.
//
//go:embed *.sql
var FS embed.FS
