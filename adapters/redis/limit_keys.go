// This file names the keys of CHECK_AND_INCR and reads its answers back.
//
// Keys (DESIGN.md §6; the tenant id in braces is the Redis Cluster hash tag,
// so all of a decision's keys live in one slot):
//
//	limit:{<tenantId>}:d:<yyyymmdd>                  tenant's rewards that UTC day
//	limit:{<tenantId>}:w<days>:<index>               tenant's rewards in that window
//	limit:{<tenantId>}:total                         tenant's rewards ever
//	limit:{<tenantId>}:u:<userId>:d:<yyyymmdd>       the same for one user
//	limit:{<tenantId>}:u:<userId>:w<days>:<index>
//	limit:{<tenantId>}:u:<userId>:total
//	limit:{<tenantId>}:dec:<decisionId>              the decision's answer
//
// A window is <days> consecutive UTC days counted from the Unix epoch;
// <index> is the day number since the epoch divided by <days>. The length is
// in the key, so changing a policy's windowDays starts new counters rather
// than reinterpreting old ones. Day and window counters expire CounterMargin
// after their window ends, measured from the decision's instant when the
// counter is born; totals never expire; a decision's answer expires after
// DecisionTTL.

package redis

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"
)

const secondsPerDay = 24 * 60 * 60

// tenantTag is the prefix of every limit key of a tenant, hash tag included.
func tenantTag(tenantID uuid.UUID) string { return "limit:{" + tenantID.String() + "}" }

func decisionKey(tenantID uuid.UUID, decisionID uuid.UUID) string {
	return tenantTag(tenantID) + ":dec:" + decisionID.String()
}

// counterKey is one counter a decision is checked against.
type counterKey struct {
	key string
	// label names the counter in the answer: scope (u, t), kind (d, w<days>,
	// t) and period, as "ud:20240310", "tw7:2817", "ut".
	label string
	cap   int64
	ttl   int64 // seconds; 0 for none
}

// counterKeys lists the counters of r whose cap is set, narrowest first
// (user before tenant; day, window, total), so that the first counter to
// refuse is the most specific explanation.
func counterKeys(r LimitRequest, margin int64) []counterKey {
	at := r.At.UTC()
	now := at.Unix()
	day := floorDiv(now, secondsPerDay)
	date := at.Format("20060102")
	tag := tenantTag(r.TenantID)
	var keys []counterKey
	add := func(prefix, scope string, c LimitCaps) {
		if c.PerDay != nil {
			keys = append(keys, counterKey{
				key:   prefix + ":d:" + date,
				label: scope + "d:" + date,
				cap:   *c.PerDay,
				ttl:   (day+1)*secondsPerDay - now + margin,
			})
		}
		if c.PerWindow != nil {
			days := int64(c.WindowDays)
			index := floorDiv(day, days)
			w := "w" + strconv.FormatInt(days, 10) + ":" + strconv.FormatInt(index, 10)
			keys = append(keys, counterKey{
				key:   prefix + ":" + w,
				label: scope + w,
				cap:   *c.PerWindow,
				ttl:   (index+1)*days*secondsPerDay - now + margin,
			})
		}
		if c.Total != nil {
			keys = append(keys, counterKey{key: prefix + ":total", label: scope + "t", cap: *c.Total})
		}
	}
	add(tag+":u:"+r.UserID, "u", r.User)
	add(tag, "t", r.Tenant)
	return keys
}

// floorDiv divides rounding down, so instants before the epoch fall in the
// day and window that contain them.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// parseAnswer reads the script's {replayed, outcome} reply.
func parseAnswer(cmd *goredis.Cmd) (LimitResult, error) {
	reply, err := cmd.Slice()
	if err != nil {
		return LimitResult{}, err
	}
	if len(reply) != 2 {
		return LimitResult{}, fmt.Errorf("CHECK_AND_INCR answered %d values, want 2", len(reply))
	}
	replayed, ok1 := reply[0].(int64)
	outcome, ok2 := reply[1].(string)
	if !ok1 || !ok2 {
		return LimitResult{}, fmt.Errorf("CHECK_AND_INCR answered %T, %T", reply[0], reply[1])
	}
	r, err := parseOutcome(outcome)
	if err != nil {
		return LimitResult{}, fmt.Errorf("outcome %q: %w", outcome, err)
	}
	r.Replayed = replayed == 1
	return r, nil
}

// parseOutcome reads "<1|0>|<label>,<cap>,<seen>|...".
func parseOutcome(s string) (LimitResult, error) {
	parts := strings.Split(s, "|")
	var r LimitResult
	switch parts[0] {
	case "1":
		r.Granted = true
	case "0":
	default:
		return r, fmt.Errorf("granted flag %q", parts[0])
	}
	if len(parts) > 1 {
		r.Counters = make([]LimitCounter, 0, len(parts)-1)
	}
	for _, p := range parts[1:] {
		label, rest, ok1 := strings.Cut(p, ",")
		capText, seenText, ok2 := strings.Cut(rest, ",")
		if !ok1 || !ok2 {
			return r, fmt.Errorf("counter %q", p)
		}
		c, err := parseLabel(label)
		if err != nil {
			return r, err
		}
		if c.Cap, err = strconv.ParseInt(capText, 10, 64); err != nil {
			return r, fmt.Errorf("cap of %s: %w", label, err)
		}
		if c.Seen, err = strconv.ParseInt(seenText, 10, 64); err != nil {
			return r, fmt.Errorf("value of %s: %w", label, err)
		}
		r.Counters = append(r.Counters, c)
	}
	if !r.Granted {
		for i := range r.Counters {
			if c := r.Counters[i]; c.Seen >= c.Cap {
				r.RefusedBy = &c
				break
			}
		}
		if r.RefusedBy == nil {
			return r, errors.New("refused with every counter under its cap")
		}
	}
	return r, nil
}

func parseLabel(label string) (LimitCounter, error) {
	var c LimitCounter
	if len(label) < 2 {
		return c, fmt.Errorf("counter label %q", label)
	}
	switch label[0] {
	case 'u':
		c.Scope = ScopeUser
	case 't':
		c.Scope = ScopeTenant
	default:
		return c, fmt.Errorf("scope of counter label %q", label)
	}
	kind, period, _ := strings.Cut(label[1:], ":")
	switch {
	case kind == "d":
		c.Kind, c.Period = KindDay, period
	case kind == "t":
		c.Kind = KindTotal
	case strings.HasPrefix(kind, "w"):
		days, err := strconv.Atoi(kind[1:])
		if err != nil {
			return c, fmt.Errorf("window of counter label %q: %w", label, err)
		}
		c.Kind, c.Period, c.WindowDays = KindWindow, period, days
	default:
		return c, fmt.Errorf("kind of counter label %q", label)
	}
	return c, nil
}
