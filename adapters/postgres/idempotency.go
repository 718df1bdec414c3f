package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	httpapi "github.com/incentives-platform/incentives/adapters/http"
)

var _ httpapi.IdempotencyStore = (*Idempotency)(nil)

// pruneBatch is how many expired keys each newly claimed key deletes. More
// than one, so the table shrinks back after a burst; few, so no request pays
// for a large delete. SKIP LOCKED keeps concurrent claims from queueing on
// the same old rows.
const pruneBatch = 100

// Idempotency is the idempotency_key table: the remembered answers of POSTs
// sent with an Idempotency-Key. There is no pruning job: each claim of a new
// key deletes up to pruneBatch expired keys, so the table holds about one TTL
// of keys for as long as keys keep arriving.
type Idempotency struct {
	db *DB
}

// NewIdempotency returns the store over db.
func NewIdempotency(db *DB) *Idempotency { return &Idempotency{db: db} }

// Claim implements httpapi.IdempotencyStore. One upsert claims a key that is
// new, expired or abandoned; a live key's row is then read. If that row
// vanished in between (its holder released it), the claim is tried again.
func (s *Idempotency) Claim(ctx context.Context, c httpapi.IdempotencyClaim) (httpapi.IdempotentRecord, bool, error) {
	for attempt := 0; attempt < 3; attempt++ {
		tag, err := s.db.Pool.Exec(ctx, `
			INSERT INTO idempotency_key (scope, idem_key, claim, locked_until, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (scope, idem_key) DO UPDATE
			SET claim = excluded.claim, locked_until = excluded.locked_until, created_at = excluded.created_at,
			    expires_at = excluded.expires_at, request_hash = NULL, request_bytes = NULL, status = NULL, headers = NULL, body = NULL
			WHERE idempotency_key.expires_at <= $5
			   OR (idempotency_key.status IS NULL AND idempotency_key.locked_until <= $5)`,
			c.Scope, c.Key, c.Claim, c.LockedUntil, c.Now, c.ExpiresAt)
		if err != nil {
			return httpapi.IdempotentRecord{}, false, fmt.Errorf("claim idempotency key: %w", err)
		}
		if tag.RowsAffected() == 1 {
			if err := s.prune(ctx, c); err != nil {
				return httpapi.IdempotentRecord{}, false, errors.Join(err, s.Release(ctx, c.IdempotencyKey, c.Claim))
			}
			return httpapi.IdempotentRecord{}, true, nil
		}
		rec, err := s.load(ctx, c.IdempotencyKey)
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		return rec, false, err
	}
	// Released three times between our upsert and read: it is busy; say so.
	return httpapi.IdempotentRecord{Pending: true}, false, nil
}

func (s *Idempotency) prune(ctx context.Context, c httpapi.IdempotencyClaim) error {
	_, err := s.db.Pool.Exec(ctx, `
		DELETE FROM idempotency_key WHERE ctid IN (
			SELECT ctid FROM idempotency_key WHERE expires_at <= $1
			ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)`, c.Now, pruneBatch)
	if err != nil {
		return fmt.Errorf("prune idempotency keys: %w", err)
	}
	return nil
}

func (s *Idempotency) load(ctx context.Context, key httpapi.IdempotencyKey) (httpapi.IdempotentRecord, error) {
	var (
		rec     httpapi.IdempotentRecord
		status  *int
		bytes   *int64
		headers []byte
	)
	err := s.db.Pool.QueryRow(ctx, `SELECT status, request_hash, request_bytes, headers, body
		FROM idempotency_key WHERE scope = $1 AND idem_key = $2`, key.Scope, key.Key).
		Scan(&status, &rec.RequestHash, &bytes, &headers, &rec.Body)
	if err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return rec, err
		}
		return rec, fmt.Errorf("load idempotency key: %w", err)
	}
	if status == nil {
		return httpapi.IdempotentRecord{Pending: true}, nil
	}
	rec.Status, rec.RequestBytes = *status, *bytes
	if err := json.Unmarshal(headers, &rec.Header); err != nil {
		return rec, fmt.Errorf("load idempotency key: headers: %w", err)
	}
	return rec, nil
}

// Complete implements httpapi.IdempotencyStore.
func (s *Idempotency) Complete(ctx context.Context, key httpapi.IdempotencyKey, claim uuid.UUID, rec httpapi.IdempotentRecord) error {
	header := rec.Header
	if header == nil {
		header = http.Header{}
	}
	headers, err := json.Marshal(header)
	if err != nil {
		return fmt.Errorf("complete idempotency key: %w", err)
	}
	body := rec.Body
	if body == nil {
		body = []byte{}
	}
	tag, err := s.db.Pool.Exec(ctx, `
		UPDATE idempotency_key SET status = $4, request_hash = $5, request_bytes = $6, headers = $7, body = $8
		WHERE scope = $1 AND idem_key = $2 AND claim = $3 AND status IS NULL`,
		key.Scope, key.Key, claim, rec.Status, rec.RequestHash, rec.RequestBytes, headers, body)
	if err != nil {
		return fmt.Errorf("complete idempotency key: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("complete idempotency key: %w", httpapi.ErrIdempotencyClaimLost)
	}
	return nil
}

// Release implements httpapi.IdempotencyStore.
func (s *Idempotency) Release(ctx context.Context, key httpapi.IdempotencyKey, claim uuid.UUID) error {
	_, err := s.db.Pool.Exec(ctx, `DELETE FROM idempotency_key WHERE scope = $1 AND idem_key = $2 AND claim = $3 AND status IS NULL`,
		key.Scope, key.Key, claim)
	if err != nil {
		return fmt.Errorf("release idempotency key: %w", err)
	}
	return nil
}
