package kafka

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// MeasureRawConsume reads n records of topic from its start with a kgo
// consumer that does nothing with them, and returns how long that took from
// the first poll. It is the ceiling the engine's throughput is read against
// in BENCHMARKS.md: the same broker, the same client library, the same
// batch size, no work. It reads partitions directly, without a consumer
// group, so the figure excludes joining one (the engine joins once).
func MeasureRawConsume(ctx context.Context, brokers []string, topic string, n int64) (time.Duration, error) {
	client, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return 0, err
	}
	defer client.Close()
	var (
		read    int64
		lastErr error
	)
	start := time.Now()
	for read < n {
		fetches := client.PollRecords(ctx, 5000)
		if ctx.Err() != nil {
			return 0, fmt.Errorf("raw consume of %s: %d of %d records (last fetch error: %v): %w", topic, read, n, lastErr, ctx.Err())
		}
		// kgo retries fetch errors itself; keep the last one to explain a timeout.
		fetches.EachError(func(_ string, _ int32, err error) { lastErr = err })
		read += int64(fetches.NumRecords())
	}
	return time.Since(start), nil
}
