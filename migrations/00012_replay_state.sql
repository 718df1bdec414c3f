-- `incentives replay` rebuilds a read model into shadow tables in a schema of
-- its own (replay_<projection>) and swaps them in at the end. Its place in
-- the event store is kept here, written with each batch of shadow rows, so
-- an interrupted replay resumes where it stopped (adapters/postgres/replay.go).

-- +goose Up
CREATE TABLE replay_state (
    projection     text PRIMARY KEY,
    schema_name    text NOT NULL,
    -- The cursor of the last event folded into the shadow tables, in commit
    -- order (EventStore.ReadAll).
    transaction_id bigint NOT NULL,
    position       bigint NOT NULL,
    events         bigint NOT NULL DEFAULT 0,
    started_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE replay_state;
