package redis

import (
	"context"

	"github.com/incentives-platform/incentives/commands/engine"
	"github.com/incentives-platform/incentives/domain/limits"
)

var _ engine.Limiter = EngineLimits{}

// EngineLimits is the engine's Limiter port over CHECK_AND_INCR: it maps the
// domain's caps to the script's and the script's answers back.
type EngineLimits struct {
	Limiter *Limiter
}

// CheckAndIncr implements engine.Limiter with one pipelined call.
func (l EngineLimits) CheckAndIncr(ctx context.Context, reqs []engine.LimitRequest) ([]engine.LimitAnswer, error) {
	in := make([]LimitRequest, len(reqs))
	for i, r := range reqs {
		in[i] = LimitRequest{TenantID: r.TenantID, UserID: r.UserID, DecisionID: r.DecisionID, At: r.At,
			Tenant: limitCaps(r.Tenant), User: limitCaps(r.User)}
	}
	results, err := l.Limiter.CheckAndIncr(ctx, in)
	if err != nil {
		return nil, err
	}
	out := make([]engine.LimitAnswer, len(results))
	for i, res := range results {
		a := engine.LimitAnswer{Granted: res.Granted, Counters: make([]engine.LimitCounter, len(res.Counters))}
		for j, c := range res.Counters {
			a.Counters[j] = limitCounter(c)
		}
		if res.RefusedBy != nil {
			c := limitCounter(*res.RefusedBy)
			a.RefusedBy = &c
		}
		out[i] = a
	}
	return out, nil
}

func limitCaps(c limits.Caps) LimitCaps {
	return LimitCaps{PerDay: c.PerDay, PerWindow: c.PerWindow, WindowDays: c.WindowDays, Total: c.Total}
}

func limitCounter(c LimitCounter) engine.LimitCounter {
	return engine.LimitCounter{Scope: string(c.Scope), Kind: string(c.Kind), Cap: c.Cap, Seen: c.Seen}
}
