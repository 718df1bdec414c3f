// This file wraps go-redis/redis_rate, the widely used GCRA rate limiter.
// The platform decides rewards with Limiter; this is the reference bench/
// measures CHECK_AND_INCR against, kept here because this package is the
// only one that imports go-redis and its libraries.

package redis

import (
	"context"
	"fmt"
	"time"

	"github.com/go-redis/redis_rate/v10"
)

// RateLimiter is redis_rate's limiter on a Client's Redis, safe for
// concurrent use. Its keys are redis_rate's own ("rate:<key>") and expire
// once their budget is full again.
type RateLimiter struct {
	limiter *redis_rate.Limiter
}

// NewRateLimiter returns a RateLimiter on c's Redis.
func NewRateLimiter(c *Client) *RateLimiter {
	return &RateLimiter{limiter: redis_rate.NewLimiter(c.rdb)}
}

// Allow reports whether one more event fits key's budget of rate events per
// period (burst rate), and takes it if so. It is one round trip: redis_rate
// parses each answer before returning, so it cannot be pipelined.
func (r *RateLimiter) Allow(ctx context.Context, key string, rate int, period time.Duration) (bool, error) {
	res, err := r.limiter.Allow(ctx, key, redis_rate.Limit{Rate: rate, Burst: rate, Period: period})
	if err != nil {
		return false, fmt.Errorf("rate limit %s: %w", key, err)
	}
	return res.Allowed > 0, nil
}
