package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
)

// RelayGroup is the outbox consumer group of the relay.
const RelayGroup = "relay"

// OutboxSubscriberConfig configures the relay's outbox subscriber.
type OutboxSubscriberConfig struct {
	// BatchSize is how many outbox rows one query reads. A crash re-relays at
	// most one batch. Default 500.
	BatchSize int
	// PollInterval is the wait after a query that found nothing: the relay's
	// idle latency. Default 50ms.
	PollInterval time.Duration
}

func (c *OutboxSubscriberConfig) setDefaults() {
	if c.BatchSize == 0 {
		c.BatchSize = 500
	}
	if c.PollInterval == 0 {
		c.PollInterval = 50 * time.Millisecond
	}
}

// NewOutboxSubscriber returns the watermill-sql subscriber of the outbox in
// consumer group RelayGroup. It reads rows in commit-visibility order
// (transaction id below the snapshot's xmin, then offset) and records its
// place only after the whole batch is acked, so a crash re-delivers, never
// loses. Several relays may run: the group's offset row is locked while a
// batch is in flight, so they take turns.
func NewOutboxSubscriber(db *DB, cfg OutboxSubscriberConfig, logger watermill.LoggerAdapter) (message.Subscriber, error) {
	cfg.setDefaults()
	return wsql.NewSubscriber(db.SQL, wsql.SubscriberConfig{
		ConsumerGroup:  RelayGroup,
		PollInterval:   cfg.PollInterval,
		ResendInterval: 100 * time.Millisecond,
		RetryInterval:  time.Second,
		SchemaAdapter:  wsql.DefaultPostgreSQLSchema{SubscribeBatchSize: cfg.BatchSize},
		OffsetsAdapter: wsql.DefaultPostgreSQLOffsetsAdapter{},
	}, logger)
}

// PruneOutbox deletes outbox rows the relay has forwarded that are older than
// keep, and returns how many it deleted. Rows of the transaction the relay is
// in the middle of are kept.
func (db *DB) PruneOutbox(ctx context.Context, keep time.Duration) (int64, error) {
	tag, err := db.Pool.Exec(ctx, `
		DELETE FROM watermill_outbox
		WHERE transaction_id < (SELECT last_processed_transaction_id FROM watermill_offsets_outbox WHERE consumer_group = $1)
		  AND created_at < LOCALTIMESTAMP - $2::interval`, RelayGroup, fmt.Sprintf("%d milliseconds", keep.Milliseconds()))
	if err != nil {
		return 0, fmt.Errorf("prune outbox: %w", err)
	}
	return tag.RowsAffected(), nil
}

// OutboxBacklog returns how many outbox rows the relay has not forwarded yet.
func (db *DB) OutboxBacklog(ctx context.Context) (int64, error) {
	var n int64
	err := db.Pool.QueryRow(ctx, `
		SELECT count(*) FROM watermill_outbox o
		LEFT JOIN watermill_offsets_outbox g ON g.consumer_group = $1
		WHERE g.consumer_group IS NULL
		   OR o.transaction_id > g.last_processed_transaction_id
		   OR (o.transaction_id = g.last_processed_transaction_id AND o."offset" > g.offset_acked)`, RelayGroup).Scan(&n)
	return n, err
}
