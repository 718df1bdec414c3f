-- The incentive engine's tables (issue 4; /work/notes/engine.md): every
-- decision it makes, per-user quest progress, and what the incentive table
-- needs to carry a reward exactly once (DESIGN.md §8).
--
-- The engine writes these in the same transaction as the action-event log
-- and the IncentiveIssued events (adapters/postgres/engine_store.go); they
-- are its own state, not projections of the event store.

-- +goose Up

-- One row per (campaign, event) decision, issued or refused, so an operator
-- can see why a user got a reward or nothing. decision_id is deterministic
-- (domain/engine.DecisionID): a redelivered event decides the same ids and
-- the key keeps one copy. There is no CHECK on outcome: the engine's list of
-- outcomes grows with its rules, and the table must not refuse a batch for it.
CREATE TABLE decision (
    decision_id      uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL,
    user_id          text NOT NULL,
    campaign_id      uuid NOT NULL,
    -- The campaign version that decided: a later edit does not rewrite history.
    campaign_version bigint NOT NULL,
    source_event_id  uuid NOT NULL,
    outcome          text NOT NULL,
    reason           text NOT NULL DEFAULT '',
    -- What an issued (or limit-refused) decision pays; NULL when nothing would.
    reward_type      text,
    reward_currency  text,
    reward_amount    numeric(20, 4),
    -- The values the decision read (payload fields, quest counts).
    inputs           jsonb NOT NULL DEFAULT '{}',
    -- The limit state it saw, if it asked the limits.
    limits           jsonb,
    incentive_id     uuid,
    -- The event's time, not the wall clock: a replay decides the same.
    decided_at       timestamptz NOT NULL,
    recorded_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((reward_type IS NULL) = (reward_amount IS NULL))
);
-- GET /tenants/{tenantId}/users/{userId}/decisions: a user's history, newest
-- first, with decision_id breaking ties for keyset pagination.
CREATE INDEX decision_tenant_user_decided_idx ON decision (tenant_id, user_id, decided_at DESC, decision_id DESC);

-- Quest progress of cold campaigns (DESIGN.md §6). Nothing has written the
-- seed's shape (one row per action, an identity key), so it is replaced: one
-- row per (campaign, user) holding every step's count. A row whose
-- step_counts is empty is a placeholder the engine inserted only to lock a
-- key that had no progress yet (EngineStore.LockProgress); it means "none".
DROP TABLE user_aggregation;
CREATE TABLE user_aggregation (
    campaign_id  uuid NOT NULL,
    user_id      text NOT NULL,
    tenant_id    uuid NOT NULL,
    -- Per step of the campaign's rule, in rule order: events counted toward it.
    step_counts  int[] NOT NULL,
    -- The first counted event of the current window; NULL when nothing counts.
    window_start timestamptz,
    -- When the quest was completed (it rewards once) and the incentive it paid.
    completed_at timestamptz,
    incentive_id uuid,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (campaign_id, user_id)
);
-- The seed's index: a user's progress across campaigns.
CREATE INDEX user_aggregation_user_campaign_idx ON user_aggregation (tenant_id, user_id, campaign_id);

-- An incentive carries the decision that issued it under a unique key, the
-- last guard against paying one decision twice, and the campaign version
-- that decided. The table has had no writer before the engine, so the new
-- columns can be NOT NULL.
ALTER TABLE incentive
    ADD COLUMN decision_id      uuid NOT NULL,
    ADD COLUMN campaign_version bigint NOT NULL,
    -- When the engine wrote the row (issued_at is the event's time, which can
    -- be long past for a late event).
    ADD COLUMN recorded_at      timestamptz NOT NULL DEFAULT now(),
    ADD CONSTRAINT incentive_decision_id_key UNIQUE (decision_id);

-- Incentives committed but not yet published to incentive-generated: written
-- with the incentive, deleted when INCENTIVE_EVENT_LOG gets its row. The
-- republisher reads this small table instead of anti-joining every incentive
-- ever issued with the log, which would grow without bound.
CREATE TABLE incentive_unpublished (
    incentive_id uuid PRIMARY KEY,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX incentive_unpublished_recorded_idx ON incentive_unpublished (recorded_at);

-- +goose Down
DROP TABLE incentive_unpublished;
ALTER TABLE incentive
    DROP CONSTRAINT incentive_decision_id_key,
    DROP COLUMN recorded_at,
    DROP COLUMN campaign_version,
    DROP COLUMN decision_id;
DROP TABLE user_aggregation;
CREATE TABLE user_aggregation (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id    uuid NOT NULL,
    user_id      text NOT NULL,
    campaign_id  uuid NOT NULL,
    action_code  text NOT NULL,
    incentive_id uuid,
    completed_at timestamptz
);
CREATE INDEX user_aggregation_user_campaign_idx ON user_aggregation (tenant_id, user_id, campaign_id);
DROP TABLE decision;
