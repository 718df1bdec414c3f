-- The seed's tables (ProjectLLD.md §3.1) as read models, built by projections
-- from the event store, plus the action-event log. Read models carry the
-- version of the stream they were built from; a redelivered older event
-- never overwrites a newer state. There are no foreign keys between read
-- models: each projection runs at its own pace.
--
-- Names: the seed's USER and LIMIT are reserved words in SQL, so they are
-- app_user and tenant_limit here. The seed lists CAMPAIGN twice; this is the
-- one table, with cohort_id and the cohort rule inside rule_json.

-- +goose Up
CREATE TABLE tenant (
    tenant_id  uuid PRIMARY KEY,
    name       text NOT NULL,
    status     text NOT NULL CHECK (status IN ('ACTIVE', 'SUSPENDED')),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    version    bigint NOT NULL
);
-- Keyset pagination of the tenant list.
CREATE INDEX tenant_created_idx ON tenant (created_at, tenant_id);

-- A tenant's users, first seen through their action events. user_id is the
-- tenant's own opaque id, unique within the tenant only.
CREATE TABLE app_user (
    tenant_id    uuid NOT NULL,
    user_id      text NOT NULL,
    external_ref text,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);

-- The catalogue of action codes; events may carry codes outside it.
CREATE TABLE action (
    action_code text PRIMARY KEY,
    description text NOT NULL
);
INSERT INTO action (action_code, description) VALUES
    ('LOGIN', 'The user signed in'),
    ('PURCHASE', 'The user paid for something; payload.amount holds the amount'),
    ('REFERRAL', 'The user referred someone who joined'),
    ('SIGNUP', 'The user created an account');

CREATE TABLE campaign (
    campaign_id uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL,
    name        text NOT NULL,
    type        text NOT NULL CHECK (type IN ('SIMPLE', 'QUEST')),
    start_at    timestamptz,
    end_at      timestamptz,
    status      text NOT NULL CHECK (status IN ('DRAFT', 'ACTIVE', 'PAUSED', 'ENDED')),
    rule_json   jsonb NOT NULL,
    cohort_id   uuid,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    version     bigint NOT NULL
);
CREATE INDEX campaign_tenant_status_idx ON campaign (tenant_id, status);
CREATE INDEX campaign_rule_json_idx ON campaign USING gin (rule_json jsonb_path_ops);

-- Effective limits per tenant and scope; a NULL cap is unbounded.
CREATE TABLE tenant_limit (
    tenant_id      uuid NOT NULL,
    scope          text NOT NULL CHECK (scope IN ('GLOBAL', 'USER')),
    max_per_day    bigint,
    max_per_window bigint,
    window_days    int,
    max_total      bigint,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    version        bigint NOT NULL,
    PRIMARY KEY (tenant_id, scope)
);

-- The action-event log: every accepted action event, written in batches.
-- Partitioned by month of event_ts; the key includes event_ts because a
-- partitioned table's unique keys must, and a redelivered event carries the
-- same event_ts, so redelivery is still caught by the key.
CREATE TABLE event (
    event_id    uuid NOT NULL,
    tenant_id   uuid NOT NULL,
    user_id     text NOT NULL,
    action_code text NOT NULL,
    event_ts    timestamptz NOT NULL,
    payload     jsonb NOT NULL DEFAULT '{}',
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, event_ts)
) PARTITION BY RANGE (event_ts);
CREATE INDEX event_tenant_user_ts_idx ON event (tenant_id, user_id, event_ts);
-- Catches events far outside the prepared months (clock skew, backfills).
CREATE TABLE event_default PARTITION OF event DEFAULT;

-- +goose StatementBegin
-- ensure_event_partitions creates the monthly partitions of event from the
-- month of from_month on, months of them; existing ones are left alone. The
-- engine calls it at start-up and daily, so the default partition stays empty.
CREATE FUNCTION ensure_event_partitions(from_month date, months int) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    first date := date_trunc('month', from_month)::date;
    m     date;
BEGIN
    FOR i IN 0 .. months - 1 LOOP
        m := (first + make_interval(months => i))::date;
        EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF event FOR VALUES FROM (%L) TO (%L)',
                       'event_' || to_char(m, 'YYYYMM'), m, (m + interval '1 month')::date);
    END LOOP;
END
$$;
-- +goose StatementEnd
SELECT ensure_event_partitions((now() - interval '1 month')::date, 4);

CREATE TABLE incentive (
    incentive_id    uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL,
    campaign_id     uuid NOT NULL,
    user_id         text NOT NULL,
    source_event_id text NOT NULL,
    type            text NOT NULL CHECK (type IN ('CASHBACK', 'POINTS', 'COUPON')),
    reward_currency text NOT NULL,
    reward_amount   numeric(20, 4) NOT NULL,
    issued_at       timestamptz NOT NULL
);
-- The seed's (user_id, issued_at desc), scoped by tenant: user ids are only
-- unique within a tenant.
CREATE INDEX incentive_user_issued_idx ON incentive (tenant_id, user_id, issued_at DESC);

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

CREATE TABLE incentive_event_log (
    incentive_id uuid PRIMARY KEY,
    user_id      text NOT NULL,
    published_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE incentive_event_log;
DROP TABLE user_aggregation;
DROP TABLE incentive;
DROP TABLE event;
DROP FUNCTION ensure_event_partitions(date, int);
DROP TABLE tenant_limit;
DROP TABLE campaign;
DROP TABLE action;
DROP TABLE app_user;
DROP TABLE tenant;
