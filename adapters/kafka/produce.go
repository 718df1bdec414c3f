package kafka

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Record is a key and value to produce.
type Record struct {
	Key, Value []byte
}

// ProduceAll writes records to topic with franz-go's batching producer and
// returns once all are acknowledged. It is the broker's bulk write path,
// used by load generators and as the reference rate in benchmarks.
func ProduceAll(ctx context.Context, brokers []string, topic string, records []Record) error {
	client, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(1<<16))
	if err != nil {
		return err
	}
	defer client.Close()
	rs := make([]*kgo.Record, len(records))
	for i, r := range records {
		rs[i] = &kgo.Record{Key: r.Key, Value: r.Value}
	}
	if err := client.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		return fmt.Errorf("produce to %s: %w", topic, err)
	}
	return nil
}
