package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/adapters/redis"
)

// runLimits measures CHECK_AND_INCR (issue #4) beside go-redis/redis_rate's
// limiter on the same Redis in the same run: one decision at a time, and in
// the pipelined batches the engine sends, from 1 and 8 workers.
func runLimits(ctx context.Context, o options) (string, error) {
	url := os.Getenv("TEST_REDIS_URL")
	if url == "" {
		url = os.Getenv("REDIS_URL")
	}
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	client, err := redis.Open(ctx, url)
	if err != nil {
		return "", err
	}
	defer client.Close()
	version, err := client.ServerVersion(ctx)
	if err != nil {
		return "", err
	}
	limiter, err := redis.NewLimiter(client, redis.LimiterConfig{})
	if err != nil {
		return "", err
	}
	rate := redis.NewRateLimiter(client)

	const (
		users = 100_000
		batch = 100
	)
	// A large tenant's caps (never reached in a run) and a typical user's
	// (reached by a few users in the longer runs): both scopes' counters are
	// read and written for nearly every decision.
	tenantCaps := redis.LimitCaps{PerDay: ptr(10_000_000), PerWindow: ptr(50_000_000), WindowDays: 7, Total: ptr(1_000_000_000)}
	userCaps := redis.LimitCaps{PerDay: ptr(10), PerWindow: ptr(50), WindowDays: 30, Total: ptr(1000)}
	userDayOnly := redis.LimitCaps{PerDay: ptr(10)}

	t := &table{header: []string{"limiter", "call", "workers", "decisions/s", "p50 per call", "p99 per call", "granted"}}
	rates := map[string]float64{}
	measure := func(key, name, call string, workers, perCall int, op func(ctx context.Context, rng *rand.Rand, granted *atomic.Int64) error) error {
		rngs := make([]*rand.Rand, workers)
		for w := range rngs {
			rngs[w] = rand.New(rand.NewPCG(uint64(w), 42))
		}
		var granted atomic.Int64
		r, err := timed(ctx, workers, o.duration, func(ctx context.Context, w int) error {
			return op(ctx, rngs[w], &granted)
		})
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		decisions := float64(r.ops * perCall)
		rates[fmt.Sprint(key, workers)] = decisions / r.elapsed.Seconds()
		t.add(name, call, fmt.Sprint(workers), perSecond(decisions/r.elapsed.Seconds()), ms(r.percentile(0.5)), ms(r.percentile(0.99)),
			pct(float64(granted.Load()), decisions))
		return nil
	}
	// checkAndIncr sends perCall decisions of random users of a fresh tenant
	// per call, and forgets the tenant's keys after the figure.
	checkAndIncr := func(key, name, call string, workers, perCall int, tenant, user redis.LimitCaps) error {
		tenantID := uuid.New()
		defer func() {
			// Cleanup must run even when the run was interrupted.
			_, _ = limiter.ForgetTenant(context.WithoutCancel(ctx), tenantID)
		}()
		return measure(key, name, call, workers, perCall, func(ctx context.Context, rng *rand.Rand, granted *atomic.Int64) error {
			reqs := make([]redis.LimitRequest, perCall)
			now := time.Now()
			for i := range reqs {
				reqs[i] = redis.LimitRequest{TenantID: tenantID, UserID: fmt.Sprintf("user-%d", rng.IntN(users)),
					DecisionID: uuid.New(), At: now, Tenant: tenant, User: user}
			}
			res, err := limiter.CheckAndIncr(ctx, reqs)
			if err != nil {
				return err
			}
			for _, r := range res {
				if r.Granted {
					granted.Add(1)
				}
			}
			return nil
		})
	}
	// redis_rate's keys ("rate:bench-<run>:<user>") expire by themselves
	// within a minute of their last use, the length of its budget.
	run := uuid.NewString()
	allow := func(workers int) error {
		return measure("rate", "redis_rate `Allow` (GCRA, one key: the user's 10 per minute)", "one at a time", workers, 1,
			func(ctx context.Context, rng *rand.Rand, granted *atomic.Int64) error {
				ok, err := rate.Allow(ctx, fmt.Sprintf("bench-%s:%d", run, rng.IntN(users)), 10, time.Minute)
				if err == nil && ok {
					granted.Add(1)
				}
				return err
			})
	}
	const (
		oneCap  = "`CHECK_AND_INCR`, the user's daily cap only (1 counter + the decision's memory)"
		sixCaps = "`CHECK_AND_INCR`, tenant and user caps per day, window and total (6 counters + the decision's memory)"
	)
	for _, w := range []int{1, 8} {
		for _, f := range []func() error{
			func() error { return allow(w) },
			func() error {
				return checkAndIncr("one", oneCap, "one at a time", w, 1, redis.LimitCaps{}, userDayOnly)
			},
			func() error { return checkAndIncr("six", sixCaps, "one at a time", w, 1, tenantCaps, userCaps) },
			func() error {
				return checkAndIncr("batch", sixCaps, fmt.Sprintf("pipelined, %d per call", batch), w, batch, tenantCaps, userCaps)
			},
		} {
			if err := f(); err != nil {
				return "", err
			}
		}
	}

	var b strings.Builder
	fmt.Fprintf(&b, "### Limits: `CHECK_AND_INCR` beside redis_rate (issue #4)\n\n")
	fmt.Fprintf(&b, "Measured %s on %s, Redis %s on the same machine; `go run ./bench %s`, %v per figure. "+
		"Decisions of random users among %s of one tenant, at the current time; p50/p99 are per call (per batch when pipelined).\n\n",
		time.Now().UTC().Format("2006-01-02"), machine(), version, strings.Join(os.Args[1:], " "), o.duration, thousands(users))
	b.WriteString(t.String())
	fmt.Fprintf(&b, "\nOne at a time, the six-counter `CHECK_AND_INCR` runs at %s of redis_rate's rate with 1 worker and %s with 8; "+
		"with the user's daily cap alone, at %s and %s. Pipelining batches of %d multiplies it by %.1f with 1 worker and %.1f with 8. "+
		"redis_rate cannot be pipelined (its `AllowN` parses the reply before it returns), checks one key without a decision id, "+
		"and is not all or nothing across keys.\n",
		pct(rates["six1"], rates["rate1"]), pct(rates["six8"], rates["rate8"]),
		pct(rates["one1"], rates["rate1"]), pct(rates["one8"], rates["rate8"]),
		batch, rates["batch1"]/rates["six1"], rates["batch8"]/rates["six8"])
	return b.String(), nil
}

func ptr(v int64) *int64 { return &v }
