-- The transactional outbox of watermill-sql (DefaultPostgreSQLSchema and
-- DefaultPostgreSQLOffsetsAdapter, topic "outbox"): commands write their events'
-- messages here in the same transaction as the events; the relay forwards them
-- to Kafka. The DDL is watermill's own, created here so that the application
-- never runs DDL at request time; a test checks it still matches watermill's.

-- +goose Up
CREATE TABLE watermill_outbox (
    "offset"         BIGSERIAL,
    "uuid"           VARCHAR(36) NOT NULL,
    "created_at"     TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "payload"        JSON DEFAULT NULL,
    "metadata"       JSON DEFAULT NULL,
    "transaction_id" xid8 NOT NULL,
    PRIMARY KEY ("transaction_id", "offset")
);

CREATE TABLE watermill_offsets_outbox (
    consumer_group                VARCHAR(255) NOT NULL,
    offset_acked                  BIGINT,
    last_processed_transaction_id xid8 NOT NULL,
    PRIMARY KEY (consumer_group)
);

-- +goose Down
DROP TABLE watermill_offsets_outbox;
DROP TABLE watermill_outbox;
