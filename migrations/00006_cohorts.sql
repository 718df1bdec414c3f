-- Cohorts: the cohort read model, the member sets its events name (claim
-- checks), and the queue of recomputation jobs of DYNAMIC cohorts.

-- +goose Up

-- The cohort read model, built by the cohorts projection.
CREATE TABLE cohort (
    cohort_id          uuid PRIMARY KEY,
    tenant_id          uuid NOT NULL,
    name               text NOT NULL,
    kind               text NOT NULL CHECK (kind IN ('STATIC', 'DYNAMIC')),
    rule               text,
    members_generation uuid,
    member_count       bigint NOT NULL DEFAULT 0,
    computed_at        timestamptz,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    version            bigint NOT NULL
);
CREATE INDEX cohort_tenant_created_idx ON cohort (tenant_id, created_at, cohort_id);
-- The recomputation schedule looks for DYNAMIC cohorts computed long ago.
CREATE INDEX cohort_dynamic_computed_idx ON cohort (computed_at) WHERE kind = 'DYNAMIC';

-- Member sets. A set is written once (COPY, in batches), before the event
-- that names it by generation, and never changed; a recomputation writes a
-- new generation. A set no event names is an orphan of a refused command or
-- a failed job: nothing reads it. The key doubles as the membership index.
CREATE TABLE cohort_member (
    generation uuid NOT NULL,
    user_id    text NOT NULL,
    PRIMARY KEY (generation, user_id)
);

-- Recomputation jobs: the durable work queue of DYNAMIC cohorts. Not a read
-- model: jobs are operational state, and what a job achieves is recorded as
-- the cohort's Recomputed event.
CREATE TABLE cohort_job (
    job_id             uuid PRIMARY KEY,
    cohort_id          uuid NOT NULL,
    tenant_id          uuid NOT NULL,
    status             text NOT NULL CHECK (status IN ('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED')),
    processed_users    bigint NOT NULL DEFAULT 0,
    total_users        bigint NOT NULL DEFAULT 0,
    member_count       bigint,
    members_generation uuid,
    -- members_dropped: the job's set was deleted once superseded twice over.
    members_dropped    boolean NOT NULL DEFAULT false,
    cohort_version     bigint,
    error              text,
    -- attempt counts claims; a worker's writes are fenced by the attempt it claimed.
    attempt            int NOT NULL DEFAULT 0,
    -- reported_at: when the running worker last said it was alive.
    reported_at        timestamptz,
    created_at         timestamptz NOT NULL,
    started_at         timestamptz,
    finished_at        timestamptz
);
-- One job in the queue per cohort: concurrent requests and schedules queue one.
CREATE UNIQUE INDEX cohort_job_active_idx ON cohort_job (cohort_id) WHERE status IN ('QUEUED', 'RUNNING');
CREATE INDEX cohort_job_cohort_created_idx ON cohort_job (cohort_id, created_at DESC);
CREATE INDEX cohort_job_queue_idx ON cohort_job (created_at) WHERE status IN ('QUEUED', 'RUNNING');

-- +goose Down
DROP TABLE cohort_job;
DROP TABLE cohort_member;
DROP TABLE cohort;
