// This file is the limits check of the engine: CHECK_AND_INCR (limits.lua),
// which counts a reward decision against its tenant's and its user's caps,
// all or nothing and once per decision id. Keys are built in limit_keys.go.

package redis

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"
)

//go:embed limits.lua
var checkAndIncrSource string

// LimitCaps bounds how many rewards one scope may receive. It mirrors the
// domain's limits.Caps without depending on it: a nil cap is unbounded, a
// zero cap allows nothing.
type LimitCaps struct {
	PerDay    *int64
	PerWindow *int64
	// WindowDays is the length of a PerWindow window in UTC days, counted
	// from the Unix epoch; required exactly when PerWindow is set.
	WindowDays int
	Total      *int64
}

// LimitRequest is one reward decision to count.
type LimitRequest struct {
	TenantID uuid.UUID
	// UserID is the tenant's own opaque id of the user; required.
	UserID string
	// DecisionID identifies the decision (deterministic, DESIGN.md §8): a
	// second request with the same id gets the first one's answer.
	DecisionID uuid.UUID
	// At is the instant the decision is made at, the action event's time, not
	// the clock's: it picks the day and window to count in, so a redelivery
	// lands in the same ones.
	At time.Time
	// Tenant are the caps over all the tenant's rewards (scope GLOBAL).
	Tenant LimitCaps
	// User are the caps over this user's rewards (scope USER).
	User LimitCaps
}

// LimitScope is whose rewards a counter counts, named as in the API.
type LimitScope string

// Scopes of a limit.
const (
	ScopeTenant LimitScope = "GLOBAL"
	ScopeUser   LimitScope = "USER"
)

// LimitKind is the period a counter counts over.
type LimitKind string

// Kinds of a limit.
const (
	KindDay    LimitKind = "DAY"
	KindWindow LimitKind = "WINDOW"
	KindTotal  LimitKind = "TOTAL"
)

// LimitCounter is one counter as a decision saw it.
type LimitCounter struct {
	Scope LimitScope
	Kind  LimitKind
	// Period names the day or window counted in: the UTC date as yyyymmdd
	// for DAY, the window's index (days since the Unix epoch divided by
	// WindowDays) for WINDOW, empty for TOTAL.
	Period     string
	WindowDays int
	// Cap is the cap the decision was checked against.
	Cap int64
	// Seen is the counter's value before the decision; a granted decision
	// left it at Seen+1.
	Seen int64
}

// LimitResult is the answer to one LimitRequest: what an operator needs to
// explain why a user got a reward or nothing.
type LimitResult struct {
	DecisionID uuid.UUID
	Granted    bool
	// RefusedBy is the first counter at or over its cap, in the order of
	// Counters; nil when granted.
	RefusedBy *LimitCounter
	// Counters are the counters whose cap was set, user's before tenant's,
	// each scope's day, window, total: the limit state the decision saw.
	Counters []LimitCounter
	// Replayed reports that the decision id had been applied before and this
	// is that first answer, counted once.
	Replayed bool
}

// LimiterConfig configures a Limiter.
type LimiterConfig struct {
	// DecisionTTL is how long a decision's answer is remembered. A
	// repeat within it gets the same answer and counts nothing. The engine
	// needs it only for a batch retried after its transaction failed (a
	// committed batch's events are found in the action-event log and never
	// reach the limiter again), so it must outlast an outage of the
	// database, not Kafka's retention; every issued reward leaves one key
	// for this long, so longer costs memory by the million. Default 24h.
	DecisionTTL time.Duration
	// CounterMargin is how long a day or window counter outlives its window,
	// so events that arrive late still find their day's count. Default 48h.
	CounterMargin time.Duration
}

func (c *LimiterConfig) setDefaults() {
	if c.DecisionTTL == 0 {
		c.DecisionTTL = 24 * time.Hour
	}
	if c.CounterMargin == 0 {
		c.CounterMargin = 48 * time.Hour
	}
}

// Validate reports every problem of c.
func (c LimiterConfig) Validate() error {
	var errs []error
	if c.DecisionTTL < time.Second {
		errs = append(errs, fmt.Errorf("DecisionTTL %v: must be at least 1s", c.DecisionTTL))
	}
	if c.CounterMargin < 0 {
		errs = append(errs, fmt.Errorf("CounterMargin %v: must not be negative", c.CounterMargin))
	}
	return errors.Join(errs...)
}

// Limiter runs CHECK_AND_INCR. It is safe for concurrent use, by any number
// of goroutines and processes: each decision is one Lua script, which Redis
// runs atomically, so two decisions never both take a counter's last unit.
type Limiter struct {
	rdb         *goredis.Client
	script      *goredis.Script
	decisionTTL string // seconds, as the script's ARGV[1]
	margin      int64  // seconds
}

// NewLimiter returns a Limiter on c's Redis. It returns an error for an
// invalid config.
func NewLimiter(c *Client, cfg LimiterConfig) (*Limiter, error) {
	if c == nil {
		return nil, errors.New("new limiter: nil client")
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new limiter: %w", err)
	}
	return newLimiter(c, cfg, checkAndIncrSource), nil
}

func newLimiter(c *Client, cfg LimiterConfig, source string) *Limiter {
	return &Limiter{
		rdb:         c.rdb,
		script:      goredis.NewScript(source),
		decisionTTL: strconv.FormatInt(int64(cfg.DecisionTTL/time.Second), 10),
		margin:      int64(cfg.CounterMargin / time.Second),
	}
}

// CheckAndIncr counts a batch of decisions, in order, in one pipeline (one
// round trip). Each decision is all or nothing on its own: granted, it
// increments every counter whose cap is set; refused, none. Decisions of a
// batch do not depend on each other beyond sharing counters, and a decision
// id repeated within a batch is answered like a redelivery.
//
// It returns an error, sending nothing, when a request is invalid (no
// tenant, user, decision id or instant; a negative cap; a window cap without
// WindowDays). On a Redis error some decisions of the batch may have been
// applied: retry the whole batch, and those are answered from memory.
func (l *Limiter) CheckAndIncr(ctx context.Context, reqs []LimitRequest) ([]LimitResult, error) {
	if len(reqs) == 0 {
		return nil, nil
	}
	calls := make([]scriptCall, len(reqs))
	var errs []error
	for i, r := range reqs {
		c, err := l.prepare(r)
		if err != nil {
			errs = append(errs, fmt.Errorf("request %d (decision %s): %w", i, r.DecisionID, err))
		}
		calls[i] = c
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("check limits: %w", err)
	}
	cmds, err := runScript(ctx, l.rdb, l.script, "CHECK_AND_INCR", calls)
	if err != nil {
		return nil, err
	}
	results := make([]LimitResult, len(reqs))
	for i, cmd := range cmds {
		r, err := parseAnswer(cmd)
		if err != nil {
			return nil, fmt.Errorf("check limits of decision %s: %w", reqs[i].DecisionID, err)
		}
		r.DecisionID = reqs[i].DecisionID
		results[i] = r
	}
	return results, nil
}

// scriptCall is one EVALSHA of CHECK_AND_INCR.
type scriptCall struct {
	keys []string
	args []any
}

// prepare validates r and builds its keys and arguments.
func (l *Limiter) prepare(r LimitRequest) (scriptCall, error) {
	var errs []error
	if r.TenantID == uuid.Nil {
		errs = append(errs, errors.New("no tenant id"))
	}
	if r.UserID == "" {
		errs = append(errs, errors.New("no user id"))
	}
	if r.DecisionID == uuid.Nil {
		errs = append(errs, errors.New("no decision id"))
	}
	if r.At.IsZero() {
		errs = append(errs, errors.New("no instant"))
	}
	errs = append(errs, r.Tenant.validate("tenant")...)
	errs = append(errs, r.User.validate("user")...)
	if err := errors.Join(errs...); err != nil {
		return scriptCall{}, err
	}
	counters := counterKeys(r, l.margin)
	c := scriptCall{
		keys: make([]string, 1, 1+len(counters)),
		args: make([]any, 1, 1+3*len(counters)),
	}
	c.keys[0] = decisionKey(r.TenantID, r.DecisionID)
	c.args[0] = l.decisionTTL
	for _, k := range counters {
		c.keys = append(c.keys, k.key)
		c.args = append(c.args, k.label, k.cap, k.ttl)
	}
	return c, nil
}

func (c LimitCaps) validate(scope string) []error {
	var errs []error
	for _, f := range []struct {
		name string
		cap  *int64
	}{{"PerDay", c.PerDay}, {"PerWindow", c.PerWindow}, {"Total", c.Total}} {
		if f.cap != nil && *f.cap < 0 {
			errs = append(errs, fmt.Errorf("%s.%s %d: must not be negative", scope, f.name, *f.cap))
		}
	}
	if c.PerWindow != nil && c.WindowDays < 1 {
		errs = append(errs, fmt.Errorf("%s.WindowDays %d: must be at least 1 when PerWindow is set", scope, c.WindowDays))
	}
	return errs
}

// ForgetTenant deletes every limit counter and remembered decision of a
// tenant, and returns how many keys it deleted: for tests, benchmarks and
// the removal of a tenant, never the hot path, since it scans the keyspace.
// In a Redis Cluster it must run on the node that owns the tenant's slot.
func (l *Limiter) ForgetTenant(ctx context.Context, tenantID uuid.UUID) (int64, error) {
	n, err := unlinkMatching(ctx, l.rdb, tenantTag(tenantID)+":*")
	if err != nil {
		return n, fmt.Errorf("forget limits of tenant %s: %w", tenantID, err)
	}
	return n, nil
}
