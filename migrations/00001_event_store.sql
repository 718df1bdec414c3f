-- The event store: the source of truth. Every other table is rebuilt from it.

-- +goose Up
CREATE TABLE event_store (
    -- Store-wide sequence, assigned at insert (before commit).
    position       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The writing transaction. Catch-up readers order by (transaction_id,
    -- position) and read only below the snapshot's xmin, so a transaction that
    -- commits late is never skipped (see adapters/postgres/eventstore.go).
    transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
    event_id       uuid NOT NULL,
    stream_id      text NOT NULL,
    aggregate      text NOT NULL,
    aggregate_id   uuid NOT NULL,
    version        bigint NOT NULL CHECK (version > 0),
    event_type     text NOT NULL,
    schema_version int NOT NULL,
    tenant_id      uuid,
    -- The event in Avro's JSON encoding of schemas/avro/<event_type>.avsc.
    payload        jsonb NOT NULL,
    -- tenantId, correlationId, causationId, actor.
    metadata       jsonb NOT NULL DEFAULT '{}',
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    -- The optimistic-concurrency guard: two writers of the same version cannot both commit.
    CONSTRAINT event_store_stream_version_key UNIQUE (stream_id, version)
);

CREATE INDEX event_store_commit_order_idx ON event_store (transaction_id, position);

-- +goose Down
DROP TABLE event_store;
