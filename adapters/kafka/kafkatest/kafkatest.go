// Package kafkatest starts an embedded broker per test and reads topics back,
// so integration tests talk Kafka over TCP without sharing topics.
package kafkatest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/incentives-platform/incentives/adapters/kafka"
)

// MustBroker starts an embedded broker on a free loopback port; it stops
// when tb ends.
func MustBroker(tb testing.TB) *kafka.Embedded {
	tb.Helper()
	b, err := kafka.StartEmbedded(kafka.EmbeddedConfig{Addr: "127.0.0.1:0", Partitions: 4})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(b.Close)
	return b
}

// Record is a consumed record, reduced to what tests check.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       string
	Value     []byte
	Headers   map[string]string
}

// ReadUntil consumes topics from their start until done says enough, or
// fails tb after timeout. It returns every record read, in partition order.
func ReadUntil(tb testing.TB, brokers []string, timeout time.Duration, done func([]Record) bool, topics ...string) []Record {
	tb.Helper()
	client, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.AllowAutoTopicCreation())
	if err != nil {
		tb.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []Record
	for !done(out) {
		fetches := client.PollFetches(ctx)
		if ctx.Err() != nil {
			tb.Fatalf("read %d records from %v in %v, not done yet", len(out), topics, timeout)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			h := map[string]string{}
			for _, hd := range r.Headers {
				h[hd.Key] = string(hd.Value)
			}
			out = append(out, Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: string(r.Key), Value: r.Value, Headers: h})
		})
	}
	return out
}

// ReadN consumes until at least n records have been read.
func ReadN(tb testing.TB, brokers []string, n int, timeout time.Duration, topics ...string) []Record {
	tb.Helper()
	return ReadUntil(tb, brokers, timeout, func(r []Record) bool { return len(r) >= n }, topics...)
}

// Produce writes raw records (key, value) to topic and waits for the acks.
func Produce(tb testing.TB, brokers []string, topic string, records ...[2][]byte) {
	tb.Helper()
	client, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.AllowAutoTopicCreation())
	if err != nil {
		tb.Fatal(err)
	}
	defer client.Close()
	rs := make([]*kgo.Record, len(records))
	for i, kv := range records {
		rs[i] = &kgo.Record{Topic: topic, Key: kv[0], Value: kv[1]}
	}
	if err := client.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
		tb.Fatal(err)
	}
}

// Collector reads topics in the background from their start, keeping every
// record, until the test ends.
type Collector struct {
	mu      sync.Mutex
	records []Record
}

// Collect starts a collector of topics.
func Collect(tb testing.TB, brokers []string, topics ...string) *Collector {
	tb.Helper()
	client, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.AllowAutoTopicCreation())
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Collector{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			fetches := client.PollFetches(ctx)
			fetches.EachRecord(func(r *kgo.Record) {
				h := map[string]string{}
				for _, hd := range r.Headers {
					h[hd.Key] = string(hd.Value)
				}
				c.mu.Lock()
				c.records = append(c.records, Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: string(r.Key), Value: r.Value, Headers: h})
				c.mu.Unlock()
			})
		}
	}()
	tb.Cleanup(func() { cancel(); <-done; client.Close() })
	return c
}

// Len returns how many records have been read.
func (c *Collector) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.records)
}

// Records returns a copy of the records read so far.
func (c *Collector) Records() []Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Record(nil), c.records...)
}
