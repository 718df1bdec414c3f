package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/incentives-platform/incentives/adapters/avro"
	"github.com/incentives-platform/incentives/domain/engine"
)

// ActionEventProducer writes ActionEvents to tenant-events the way a
// tenant's high-volume backend would: Avro single-object values keyed by
// tenant id, through franz-go's batching, idempotent producer. Produce only
// buffers; Acked counts what the broker confirmed; Flush waits for the rest.
// It is what `incentives loadgen` and the benchmarks drive. Safe for
// concurrent use.
type ActionEventProducer struct {
	client   *kgo.Client
	registry *avro.Registry
	topic    string

	acked atomic.Int64
	mu    sync.Mutex
	err   error // the first failed record's error
}

// NewActionEventProducer returns a producer to topic (tenant-events when
// empty). Close it when done.
func NewActionEventProducer(brokers []string, registry *avro.Registry, topic string) (*ActionEventProducer, error) {
	if len(brokers) == 0 || registry == nil {
		return nil, errors.New("action event producer: brokers and registry are required")
	}
	if topic == "" {
		topic = TenantEventsTopic
	}
	client, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ClientID("incentives-loadgen"),
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchMaxBytes(1<<20),
		// Produce blocks once this many records await their acks: the
		// generator runs as fast as the broker takes records, no faster.
		kgo.MaxBufferedRecords(1<<16),
	)
	if err != nil {
		return nil, fmt.Errorf("action event producer: %w", err)
	}
	return &ActionEventProducer{client: client, registry: registry, topic: topic}, nil
}

// Produce encodes e and buffers it; it blocks while the buffer is full. It
// returns an encoding error, ctx's error, or the first error an earlier
// record failed with, so a broken run stops at once. Ending ctx also drops
// the records it buffered that are not sent yet.
func (p *ActionEventProducer) Produce(ctx context.Context, e engine.ActionEvent) error {
	if err := p.Err(); err != nil {
		return err
	}
	value, err := EncodeActionEvent(p.registry, e)
	if err != nil {
		return err
	}
	r := &kgo.Record{
		Key:     []byte(e.TenantID.String()),
		Value:   value,
		Headers: []kgo.RecordHeader{{Key: HeaderContentType, Value: []byte(ContentTypeAvro)}},
	}
	p.client.Produce(ctx, r, p.promise)
	return ctx.Err()
}

func (p *ActionEventProducer) promise(_ *kgo.Record, err error) {
	switch {
	case err == nil:
		p.acked.Add(1)
		return
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// The caller stopped the run; these were never sent, which is
		// no failure.
		return
	}
	p.mu.Lock()
	if p.err == nil {
		p.err = fmt.Errorf("produce to %s: %w", p.topic, err)
	}
	p.mu.Unlock()
}

// Acked returns how many records the broker has acknowledged.
func (p *ActionEventProducer) Acked() int64 { return p.acked.Load() }

// Err returns the first error a record failed with, if any.
func (p *ActionEventProducer) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Flush waits until every buffered record is acknowledged or failed, and
// returns the first failure.
func (p *ActionEventProducer) Flush(ctx context.Context) error {
	if err := p.client.Flush(ctx); err != nil {
		return err
	}
	return p.Err()
}

// Close releases the connections; records not yet flushed fail.
func (p *ActionEventProducer) Close() { p.client.Close() }
