-- Where each projection is in each partition of its source topics. A
-- projection writes its read-model change and this row in one transaction.

-- +goose Up
CREATE TABLE projection_checkpoint (
    projection   text NOT NULL,
    topic        text NOT NULL,
    partition    int NOT NULL,
    -- The last applied Kafka offset; a redelivered offset at or below it is skipped.
    kafka_offset bigint NOT NULL,
    -- The event-store position of the last applied event.
    position     bigint NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, topic, partition)
);

-- +goose Down
DROP TABLE projection_checkpoint;
