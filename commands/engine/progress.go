package engine

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/domain/engine"
)

// This file routes quest progress between its two stores (DESIGN.md §6):
// Redis for the campaigns the count-min sketch finds hot, the database for
// the others. A campaign turns hot or cold whenever its traffic does, in the
// middle of users' quests, so neither store can be trusted alone:
//
//   - Every write of a key carries a version one above the highest either
//     store held, so reading both and keeping the higher version finds the
//     user's progress wherever the last batch put it.
//   - Redis is written before the database commits (after the commit, a
//     crash would lose the write). So a Redis entry is pending, marked with
//     one of its batch's decision ids, until that batch is known to have
//     committed: a pending entry whose decision the database does not hold
//     was written by a batch that rolled back, and its base, the progress
//     the batch started from, is the key's. After the commit the marks are
//     cleared (best effort: an uncleared mark costs one lookup later).
//   - Batches on one key are serialised by the action-event log (LogEvents
//     waits for any batch holding the same events), and the Redis write is
//     conditional on the version read, so a batch that lost a race fails
//     and is retried instead of overwriting.
//   - Once the database holds a newer version than Redis, the Redis entry is
//     dropped after the commit: cold campaigns cost Redis no memory.

// questStore is the batch's view of its quests' progress, as loaded.
type questStore struct {
	// hot is the campaigns whose progress this batch writes to Redis.
	hot map[uuid.UUID]bool
	// versions is the version each key's progress was loaded at (0: none).
	versions map[ProgressKey]int64
	// highest is the highest version either store holds of each key,
	// counting a rolled-back batch's pending write: the next write is one
	// above, so that no two writes of a key ever share a version.
	highest map[ProgressKey]int64
	// redis is the raw Redis entry of each key Redis held.
	redis map[ProgressKey]HotEntry
	// keys are the batch's quests, in load order.
	keys []ProgressKey
	// inRedis are the keys whose progress Redis holds, newer than the
	// database's.
	inRedis map[ProgressKey]bool
	// rolledBack are the keys whose Redis entry a rolled-back batch wrote.
	// This batch must replace it even if it changes nothing: decision ids
	// are the same on every attempt at the same events, so once this batch
	// records the decision that marks the entry, the entry would read as
	// committed.
	rolledBack map[ProgressKey]bool
}

// observe counts the batch's candidates in the hot filter and returns the
// campaigns that are hot; nil without a filter (all cold).
func (e *Engine) observe(ctx context.Context, work []candidate) (map[uuid.UUID]bool, error) {
	if e.hotFilter == nil || len(work) == 0 {
		return nil, nil
	}
	occurrences := map[uuid.UUID][]uuid.UUID{}
	for _, w := range work {
		occurrences[w.event.TenantID] = append(occurrences[w.event.TenantID], w.campaign.ID)
	}
	return e.hotFilter.Observe(ctx, occurrences)
}

// loadProgress reads the quests' progress from both stores and keeps, per
// key, the newer: cold keys locked in the database, hot ones read.
func (e *Engine) loadProgress(ctx context.Context, tx BatchTx, keys []ProgressKey, hot map[uuid.UUID]bool) (map[ProgressKey]engine.QuestProgress, *questStore, error) {
	qs := &questStore{hot: hot, versions: map[ProgressKey]int64{}, highest: map[ProgressKey]int64{}, redis: map[ProgressKey]HotEntry{},
		keys: keys, inRedis: map[ProgressKey]bool{}, rolledBack: map[ProgressKey]bool{}}
	progress := map[ProgressKey]engine.QuestProgress{}
	if len(keys) == 0 {
		return progress, qs, nil
	}
	var cold, warm []ProgressKey
	for _, k := range keys {
		if hot[k.CampaignID] {
			warm = append(warm, k)
		} else {
			cold = append(cold, k)
		}
	}
	fromDB, err := tx.LockProgress(ctx, cold)
	if err != nil {
		return nil, nil, err
	}
	warmDB, err := tx.ReadProgress(ctx, warm)
	if err != nil {
		return nil, nil, err
	}
	for k, p := range warmDB {
		fromDB[k] = p
	}
	if e.hotProgress != nil {
		if qs.redis, err = e.hotProgress.Load(ctx, keys); err != nil {
			return nil, nil, fmt.Errorf("hot progress: %w", err)
		}
	}
	committed, err := e.resolvePending(ctx, tx, qs.redis)
	if err != nil {
		return nil, nil, err
	}
	for _, k := range keys {
		best := fromDB[k]
		qs.highest[k] = best.Version
		if r, ok := qs.redis[k]; ok {
			qs.highest[k] = max(qs.highest[k], r.Latest.Version)
			cur := r.Latest
			if r.Pending != uuid.Nil && !committed[r.Pending] {
				cur = r.Base
				qs.rolledBack[k] = true
			}
			if cur.Version > best.Version {
				best = cur
				qs.inRedis[k] = true
			}
		}
		if best.Version > 0 {
			qs.versions[k] = best.Version
			// Empty progress (a rolled-back write replaced, see saveProgress)
			// is no progress, as the database's placeholder rows are.
			if len(best.Counts) > 0 || !best.WindowStart.IsZero() || !best.Completed.IsZero() {
				best.CampaignID, best.UserID = k.CampaignID, k.UserID
				progress[k] = best.QuestProgress
			}
		}
	}
	return progress, qs, nil
}

// resolvePending returns which pending marks of entries belong to batches
// that committed.
func (e *Engine) resolvePending(ctx context.Context, tx BatchTx, entries map[ProgressKey]HotEntry) (map[uuid.UUID]bool, error) {
	var ids []uuid.UUID
	for _, r := range entries {
		if r.Pending != uuid.Nil {
			ids = append(ids, r.Pending)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	return tx.DecisionsRecorded(ctx, ids)
}

// afterCommit is what a batch does once it committed: clear the pending
// marks it wrote, and drop the Redis entries it superseded in the database.
type afterCommit struct {
	settles []HotSettle
	drops   []HotDrop
}

// saveProgress writes the batch's changed progress, each key to the store
// its campaign's heat says, at one version above what it loaded; pending
// marks are decision ids of decisions, which Record writes in this
// transaction.
func (e *Engine) saveProgress(ctx context.Context, tx BatchTx, q *quests, qs *questStore,
	work []candidate, decisions []RecordedDecision) (afterCommit, error) {
	var (
		after  afterCommit
		toDB   []StoredProgress
		writes []HotWrite
	)
	var mark map[ProgressKey]uuid.UUID
	for _, k := range qs.keys {
		_, changed := q.before[k]
		p := StoredProgress{QuestProgress: q.progress[k], Version: qs.highest[k] + 1}
		p.CampaignID, p.UserID = k.CampaignID, k.UserID
		raw, inRedis := qs.redis[k]
		if !qs.hot[k.CampaignID] || e.hotProgress == nil {
			// Cold: the database takes the progress over even when this
			// batch did not change it, so that Redis keeps none of it.
			if changed || qs.inRedis[k] || qs.rolledBack[k] {
				toDB = append(toDB, p)
			}
			if inRedis {
				after.drops = append(after.drops, HotDrop{Key: k, Version: raw.Latest.Version})
			}
			continue
		}
		if !changed && !qs.rolledBack[k] {
			continue
		}
		if mark == nil {
			mark = pendingMarks(work, decisions)
		}
		var base StoredProgress
		if v := qs.versions[k]; v > 0 {
			base = StoredProgress{QuestProgress: q.loaded(k), Version: v}
			base.CampaignID, base.UserID = k.CampaignID, k.UserID
		}
		// No expiry: a campaign's end can move, and an expired entry would
		// be a user's lost (or repeated) quest.
		w := HotWrite{Key: k, Seen: raw.Latest.Version, Progress: p, Base: base, Pending: mark[k]}
		writes = append(writes, w)
		after.settles = append(after.settles, HotSettle{Key: k, Pending: w.Pending})
	}
	if len(toDB) > 0 {
		if err := tx.SaveProgress(ctx, toDB); err != nil {
			return after, err
		}
	}
	if len(writes) > 0 {
		if err := e.hotProgress.Save(ctx, writes); err != nil {
			return after, fmt.Errorf("hot progress: %w", err)
		}
	}
	return after, nil
}

// pendingMarks picks, per quest key, one decision of the batch on it.
func pendingMarks(work []candidate, decisions []RecordedDecision) map[ProgressKey]uuid.UUID {
	out := map[ProgressKey]uuid.UUID{}
	for i, w := range work {
		out[ProgressKey{CampaignID: w.campaign.ID, UserID: w.event.UserID}] = decisions[i].ID
	}
	return out
}

// run clears the marks and drops the superseded entries. The batch has
// committed, so a failure here loses nothing: an uncleared mark is resolved
// by a lookup when the key is next read, and an undropped entry is older
// than the database's and ignored; both are logged.
func (a afterCommit) run(ctx context.Context, e *Engine) {
	if e.hotProgress == nil {
		return
	}
	if len(a.settles) > 0 {
		if err := e.hotProgress.Settle(ctx, a.settles); err != nil {
			e.logger.WarnContext(ctx, "clearing hot progress marks failed; they are resolved when read", "keys", len(a.settles), "err", err)
		}
	}
	if len(a.drops) > 0 {
		if err := e.hotProgress.Drop(ctx, a.drops); err != nil {
			e.logger.WarnContext(ctx, "dropping hot progress handed to the database failed; the newer database rows win", "keys", len(a.drops), "err", err)
		}
	}
}
