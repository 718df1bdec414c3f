-- The incentives projection's read model: one row per incentive, as its
-- incentive.issued.v1 event recorded it, rebuilt from the event store (the
-- engine's own `incentive` table is written in the decision transaction and
-- is not). Every change of a row is also published, in the same
-- transaction, as a Debezium change event on db.incentives (docs/topics.md),
-- so analytics sinks built for Debezium read it unchanged. position and
-- version are the event-store position and stream version of the event the
-- row reflects: a redelivered event at or below version changes nothing.
-- No foreign keys: replay rebuilds this table in a shadow schema and swaps it
-- in.

-- +goose Up
CREATE TABLE incentive_view (
    incentive_id     uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL,
    campaign_id      uuid NOT NULL,
    campaign_version bigint NOT NULL,
    decision_id      uuid NOT NULL,
    user_id          text NOT NULL,
    source_event_id  uuid NOT NULL,
    reward_type      text NOT NULL,
    reward_currency  text NOT NULL,
    reward_amount    numeric(20, 4) NOT NULL,
    issued_at        timestamptz NOT NULL,
    position         bigint NOT NULL,
    version          bigint NOT NULL
);
-- A user's incentives, newest first (the seed's index on INCENTIVE).
CREATE INDEX incentive_view_user_issued_idx ON incentive_view (tenant_id, user_id, issued_at DESC);

-- +goose Down
DROP TABLE incentive_view;
