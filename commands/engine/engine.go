package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/domain/engine"
	"github.com/incentives-platform/incentives/domain/rules"
	"github.com/incentives-platform/incentives/domain/tenant"
)

// Engine decides a batch of action events at a time. Process may be called
// from several goroutines (one per consumer), each with its own batch.
type Engine struct {
	store       BatchStore
	catalog     *Catalog
	limiter     Limiter
	hotFilter   HotFilter
	hotProgress HotProgress
	logger      *slog.Logger
}

// Option configures an Engine.
type Option func(*Engine)

// WithHotProgress keeps hot campaigns' quest progress in p (Redis), those
// filter finds hot. A nil filter finds none hot: the engine then moves any
// progress p still holds to the database as users play, which is how hot
// campaigns are switched off without losing progress.
func WithHotProgress(filter HotFilter, p HotProgress) Option {
	return func(e *Engine) { e.hotFilter, e.hotProgress = filter, p }
}

// WithLogger sets the logger of what goes wrong after a commit, when
// nothing is lost. Default: discard.
func WithLogger(l *slog.Logger) Option {
	return func(e *Engine) { e.logger = l }
}

// New returns an engine; it panics on a nil dependency. Without
// WithHotProgress every quest's progress is in the database.
func New(store BatchStore, catalog *Catalog, limiter Limiter, opts ...Option) *Engine {
	if store == nil || catalog == nil || limiter == nil {
		panic("engine: New needs a store, a catalog and a limiter")
	}
	e := &Engine{store: store, catalog: catalog, limiter: limiter, logger: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(e)
	}
	if e.hotFilter != nil && e.hotProgress == nil {
		panic("engine: a hot filter needs a hot progress store")
	}
	return e
}

// candidate is one (event, campaign) pair of a batch.
type candidate struct {
	event    *engine.ActionEvent
	campaign *engine.Campaign
	// vars are the event's CEL variables, shared by its candidates.
	vars map[string]any
}

// Process decides events and records everything in one transaction. It
// returns the incentives it issued, for the caller to publish; events the
// log already held (a redelivery) decide nothing and issue nothing. On an
// error nothing was recorded, and the caller retries the batch: the limiter
// gives a retried decision the answer it gave before.
func (e *Engine) Process(ctx context.Context, events []engine.ActionEvent) (_ []engine.Incentive, err error) {
	tx, err := e.store.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("engine: begin: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			err = errors.Join(err, tx.Rollback(context.WithoutCancel(ctx)))
		}
	}()
	fresh, err := tx.LogEvents(ctx, events)
	if err != nil {
		return nil, fmt.Errorf("engine: log events: %w", err)
	}
	idx := e.catalog.current()
	var (
		work        []candidate
		memberKeys  []MemberKey
		progressKey []ProgressKey
		seenMember  = map[MemberKey]bool{}
		seenQuest   = map[ProgressKey]bool{}
	)
	for i := range fresh {
		ev := &fresh[i]
		cs := idx.campaigns(ev.TenantID, ev.ActionCode)
		var vars map[string]any // the event's CEL variables, built once for all its campaigns
		if len(cs) > 0 {
			vars = engine.EventVars(*ev)
		}
		for j := range cs {
			c := &cs[j]
			work = append(work, candidate{ev, c, vars})
			if c.CohortID != uuid.Nil {
				k := MemberKey{Generation: idx.cohorts[c.CohortID], UserID: ev.UserID}
				if k.Generation != uuid.Nil && !seenMember[k] {
					seenMember[k] = true
					memberKeys = append(memberKeys, k)
				}
			}
			if c.Rule.Kind == rules.Quest {
				k := ProgressKey{CampaignID: c.ID, UserID: ev.UserID}
				if !seenQuest[k] {
					seenQuest[k] = true
					progressKey = append(progressKey, k)
				}
			}
		}
	}
	if len(work) == 0 {
		return nil, e.commit(ctx, tx, &committed)
	}
	members := map[MemberKey]bool{}
	if len(memberKeys) > 0 {
		if members, err = tx.Members(ctx, memberKeys); err != nil {
			return nil, fmt.Errorf("engine: cohort members: %w", err)
		}
	}
	hot, err := e.observe(ctx, work)
	if err != nil {
		return nil, fmt.Errorf("engine: hot campaigns: %w", err)
	}
	progress, qs, err := e.loadProgress(ctx, tx, progressKey, hot)
	if err != nil {
		return nil, fmt.Errorf("engine: quest progress: %w", err)
	}

	q := &quests{progress: progress, before: map[ProgressKey]engine.QuestProgress{}}
	decisions, asks, reqs := e.decide(idx, work, members, q)
	var incentives []engine.Incentive
	// Limits answer after the whole batch was decided; a quest completion
	// they refuse is undone, and the same user's later events of that quest
	// in this batch, decided as if it had been paid, are decided again (the
	// next may complete it, under a later day's cap): one batch must decide
	// as the same events one at a time would.
	for len(reqs) > 0 {
		answers, err := e.limiter.CheckAndIncr(ctx, reqs)
		if err != nil {
			return nil, fmt.Errorf("engine: limits: %w", err)
		}
		var refused []int
		for i, a := range answers {
			d := &decisions[asks[i]]
			d.Limits = &answers[i]
			if a.Granted {
				incentives = append(incentives, engine.NewIncentive(d.Decision))
				continue
			}
			d.Outcome = engine.OutcomeLimited
			if a.RefusedBy != nil {
				d.Reason = fmt.Sprintf("%s %s limit of %d reached", a.RefusedBy.Scope, a.RefusedBy.Kind, a.RefusedBy.Cap)
			}
			if q.refuseCompletion(d.Decision) {
				refused = append(refused, asks[i])
			}
		}
		asks, reqs = e.redecideAfter(idx, work, members, q, decisions, refused)
	}
	after, err := e.saveProgress(ctx, tx, q, qs, work, decisions)
	if err != nil {
		return nil, fmt.Errorf("engine: save quest progress: %w", err)
	}
	written, err := tx.Record(ctx, decisions, incentives)
	if err != nil {
		return nil, fmt.Errorf("engine: record decisions: %w", err)
	}
	if err := e.commit(ctx, tx, &committed); err != nil {
		return nil, err
	}
	after.run(ctx, e)
	return written, nil
}

func (e *Engine) commit(ctx context.Context, tx BatchTx, committed *bool) error {
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("engine: commit: %w", err)
	}
	*committed = true
	return nil
}

// quests is the batch's quest progress, threaded through its events in order.
type quests struct {
	progress map[ProgressKey]engine.QuestProgress
	// before holds the progress the batch started from of each key it
	// changed (zero: none): the keys it must write.
	before map[ProgressKey]engine.QuestProgress
}

// loaded returns the progress k had before the batch.
func (q *quests) loaded(k ProgressKey) engine.QuestProgress {
	if p, ok := q.before[k]; ok {
		return p
	}
	return q.progress[k]
}

func (q *quests) get(k ProgressKey) *engine.QuestProgress {
	if p, ok := q.progress[k]; ok {
		return &p
	}
	return nil
}

func (q *quests) set(k ProgressKey, p engine.QuestProgress) {
	if _, ok := q.before[k]; !ok {
		q.before[k] = q.progress[k]
	}
	q.progress[k] = p
}

// refuseCompletion undoes a quest's completion that was not paid (limits,
// a suspended tenant), so the user's next quest event tries again. It
// reports whether there was a completion to undo.
func (q *quests) refuseCompletion(d engine.Decision) bool {
	k := ProgressKey{CampaignID: d.CampaignID, UserID: d.UserID}
	if p := q.get(k); p != nil && !p.Completed.IsZero() {
		q.set(k, engine.CompleteRefused(*p))
		return true
	}
	return false
}

// decide evaluates every candidate in batch order and returns the
// decisions (decisions[i] is work[i]'s) with, for each would-be reward, its
// index among them and its limit request.
func (e *Engine) decide(idx *catalogIndex, work []candidate, members map[MemberKey]bool, q *quests) ([]RecordedDecision, []int, []LimitRequest) {
	decisions := make([]RecordedDecision, len(work))
	var (
		asks []int
		reqs []LimitRequest
	)
	for i, w := range work {
		var req *LimitRequest
		decisions[i], req = evaluate(idx, w, members, q)
		if req != nil {
			asks, reqs = append(asks, i), append(reqs, *req)
		}
	}
	return decisions, asks, reqs
}

// redecideAfter decides again, in order, the candidates that follow each
// refused quest completion for the same campaign and user, and returns the
// would-be rewards among them.
func (e *Engine) redecideAfter(idx *catalogIndex, work []candidate, members map[MemberKey]bool, q *quests,
	decisions []RecordedDecision, refused []int) ([]int, []LimitRequest) {
	var (
		asks []int
		reqs []LimitRequest
	)
	for _, r := range refused {
		key := work[r]
		for j := r + 1; j < len(work); j++ {
			w := work[j]
			if w.campaign.ID != key.campaign.ID || w.event.UserID != key.event.UserID {
				continue
			}
			var req *LimitRequest
			decisions[j], req = evaluate(idx, w, members, q)
			if req != nil {
				asks, reqs = append(asks, j), append(reqs, *req)
			}
		}
	}
	return asks, reqs
}

// evaluate decides one candidate, threading its quest progress, and returns
// the limit request of a would-be reward.
func evaluate(idx *catalogIndex, w candidate, members map[MemberKey]bool, q *quests) (RecordedDecision, *LimitRequest) {
	ev, c := w.event, w.campaign
	inCohort := true
	if c.CohortID != uuid.Nil {
		inCohort = members[MemberKey{Generation: idx.cohorts[c.CohortID], UserID: ev.UserID}]
	}
	pk := ProgressKey{CampaignID: c.ID, UserID: ev.UserID}
	d, next := engine.EvaluateVars(*ev, w.vars, *c, inCohort, q.get(pk))
	if next != nil {
		q.set(pk, *next)
	}
	if d.Outcome != engine.OutcomeIssued {
		return RecordedDecision{Decision: d}, nil
	}
	t, ok := idx.tenants[ev.TenantID]
	if !ok || t.Status != tenant.StatusActive {
		d.Outcome, d.Reason = engine.OutcomeTenantSuspended, "the tenant is not active"
		q.refuseCompletion(d)
		return RecordedDecision{Decision: d}, nil
	}
	return RecordedDecision{Decision: d}, &LimitRequest{DecisionID: d.ID, TenantID: ev.TenantID, UserID: ev.UserID, At: ev.EventTs,
		Tenant: t.Tenant, User: t.User}
}
