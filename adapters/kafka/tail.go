package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TailRecord is one record read by Tail.
type TailRecord struct {
	Topic     string
	Partition int32
	Offset    int64
	Timestamp time.Time
	Key       []byte
	Value     []byte
	Headers   map[string]string
}

// ErrNoSuchTopic is returned by Tail for a topic the cluster does not have.
var ErrNoSuchTopic = errors.New("no such topic")

// Tail reads topic from its start, without joining a consumer group, and
// calls fn for every record. Without follow it returns once it has read
// everything the topic held when it started; with follow it waits for more
// until ctx ends.
func Tail(ctx context.Context, brokers []string, topic string, follow bool, fn func(TailRecord) error) error {
	client, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return err
	}
	defer client.Close()
	ends, err := kadm.NewClient(client).ListEndOffsets(ctx, topic)
	if err != nil {
		return fmt.Errorf("tail %s: %w", topic, err)
	}
	if err := ends.Error(); err != nil {
		return fmt.Errorf("tail %s: %w: %w", topic, ErrNoSuchTopic, err)
	}
	remaining := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			remaining[o.Partition] = o.Offset
		}
	})
	for follow || len(remaining) > 0 {
		fetches := client.PollFetches(ctx)
		if ctx.Err() != nil {
			if follow {
				return nil
			}
			return ctx.Err()
		}
		if err := fetches.Err(); err != nil {
			return fmt.Errorf("tail %s: %w", topic, err)
		}
		var ferr error
		fetches.EachRecord(func(r *kgo.Record) {
			if ferr != nil {
				return
			}
			h := make(map[string]string, len(r.Headers))
			for _, hd := range r.Headers {
				h[hd.Key] = string(hd.Value)
			}
			ferr = fn(TailRecord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp,
				Key: r.Key, Value: r.Value, Headers: h})
			if end, ok := remaining[r.Partition]; ok && r.Offset+1 >= end {
				delete(remaining, r.Partition)
			}
		})
		if ferr != nil {
			return ferr
		}
	}
	return nil
}
