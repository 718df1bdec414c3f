// This file is the reference bench/ measures CMS_ADD against: raw Redis
// INCR, one exact counter per item, pipelined the same way.

package redis

import (
	"context"
	"fmt"
	"strconv"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"
)

// IncrExact increments an exact counter per item, one INCR each, all in one
// pipeline, and returns the new counts in order. Its keys,
// cms:{<tenantId>}:<windowTs>:exact:<item>, have no TTL: it is a benchmark
// reference, deleted by ForgetTenant. Exact shadow counts for the
// cms_false_positive_rate metric would need an expiry like the sketch's.
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
