// This file holds the sketch's exact counters: the shadow counts
// HotCampaigns keeps for a sample of campaigns, to measure the sketch's
// false positives, and IncrExact, the reference bench/ measures CMS_ADD
// against.

package redis

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"
)

// exactKey is the hash of a window's exact shadow counts, one field per
// sampled item. It shares the sketch's hash tag and expiry, and
// ForgetTenant's pattern.
func exactKey(tenantID uuid.UUID, windowTs int64) string {
	return sketchKey(tenantID, windowTs) + ":exact"
}

// queueExact queues on pipe an HINCRBY of each item's exact count in the
// tenant's window by its occurrences, then the hash's EXPIREAT (the
// sketch's), and returns the HINCRBY commands in order: their values are
// the exact counts once the pipeline has run, every process's increments
// included.
func (s *Sketch) queueExact(ctx context.Context, pipe goredis.Pipeliner, tenantID uuid.UUID, windowTs int64, items []string, occurrences []int64) []*goredis.IntCmd {
	key := exactKey(tenantID, windowTs)
	cmds := make([]*goredis.IntCmd, len(items))
	for i, item := range items {
		cmds[i] = pipe.HIncrBy(ctx, key, item, occurrences[i])
	}
	if len(items) > 0 {
		pipe.ExpireAt(ctx, key, time.Unix(s.expireAt(windowTs), 0))
	}
	return cmds
}

// IncrExact increments an exact counter per item, one INCR each, all in one
// pipeline, and returns the new counts in order. Its keys,
// cms:{<tenantId>}:<windowTs>:exact:<item>, have no TTL: it is a benchmark
// reference (raw INCR, the floor CMS_ADD is measured against), deleted by
// ForgetTenant. HotCampaigns' shadow counts are a hash per window that
// expires with the sketch.
func (s *Sketch) IncrExact(ctx context.Context, tenantID uuid.UUID, windowTs int64, items []string) ([]int64, error) {
	prefix := sketchKey(tenantID, windowTs) + ":exact:"
	pipe := s.rdb.Pipeline()
	cmds := make([]*goredis.IntCmd, len(items))
	for i, item := range items {
		cmds[i] = pipe.Incr(ctx, prefix+item)
	}
	_, _ = pipe.Exec(ctx) // each command is checked below
	out := make([]int64, len(items))
	for i, c := range cmds {
		n, err := c.Result()
		if err != nil {
			return nil, fmt.Errorf("incr exact count %s: %w", prefix+strconv.Quote(items[i]), err)
		}
		out[i] = n
	}
	return out, nil
}
