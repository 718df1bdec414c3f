-- Idempotency-Key: the first answer to each (caller, key) of a POST, so a
-- client retrying after a lost answer gets that answer again instead of a
-- second tenant, campaign or cohort (docs/api.md, "Idempotency-Key").
--
-- A row is claimed (pending) before its request runs and completed after it;
-- a second request with the key meanwhile is told to retry. Rows live 24 hours
-- (expires_at) and are deleted in small batches whenever a new key is claimed
-- (adapters/postgres/idempotency.go), so the table holds about a day of keys.

-- +goose Up
CREATE TABLE idempotency_key (
    -- Whose key: "<role>:<tenant id>:<subject>" of the caller's token. Keys of
    -- different callers never meet.
    scope         text NOT NULL,
    idem_key      text NOT NULL,
    -- The request holding a pending key; only it may complete or release it.
    claim         uuid NOT NULL,
    -- A pending key still unfinished at locked_until was abandoned (its
    -- process died) and may be claimed again.
    locked_until  timestamptz NOT NULL,
    -- sha256 of method, path and body, and the body's length; null while pending.
    request_hash  bytea,
    request_bytes bigint,
    -- The answer replayed; null while pending.
    status        int,
    headers       jsonb,
    body          bytea,
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    PRIMARY KEY (scope, idem_key),
    CHECK ((status IS NULL) = (request_hash IS NULL))
);

CREATE INDEX idempotency_key_expires_idx ON idempotency_key (expires_at);

-- +goose Down
DROP TABLE idempotency_key;
