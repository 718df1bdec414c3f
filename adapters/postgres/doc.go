// Package postgres is the platform's PostgreSQL adapter: the event store and
// its transactional outbox, the read models the projections build, and the
// migrations. It is the only package that imports pgx, goose and
// watermill-sql.
//
// Writes that must be atomic with the outbox go through database/sql (pgx's
// stdlib driver over the same pool), because watermill-sql publishes into a
// *sql.Tx; everything else uses pgx natively. Public methods own their
// transaction: they begin it, call private helpers that take it, and check
// the Commit error.
package postgres
