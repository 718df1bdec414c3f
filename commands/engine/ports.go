// Package engine is the incentive engine's application service: it turns a
// batch of action events into decisions and incentives, exactly once
// (DESIGN.md §§4, 7, 8). The decisions themselves are domain/engine's; this
// package orders the work around them:
//
//  1. In one database transaction, log the batch's events; the ones the log
//     already held were processed by a committed batch and are skipped, so a
//     redelivered event changes nothing.
//  2. Match each new event against the in-memory catalog of active
//     campaigns (no query per event), load the cohort memberships and quest
//     progress the batch needs in one query each, and evaluate.
//  3. Ask the limits last, for every would-be reward of the batch in one
//     pipelined call; the limiter is idempotent per decision id, so a batch
//     retried after a failed commit gets the same answers.
//  4. Write progress, every decision, and each incentive with its
//     IncentiveIssued event and outbox row; commit.
//  5. Only then does the caller publish the incentives to
//     incentive-generated, mark them published, and commit the Kafka offsets.
//     Incentives committed but never marked published are published again by
//     the republisher.
package engine

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/domain/engine"
	"github.com/incentives-platform/incentives/domain/limits"
	"github.com/incentives-platform/incentives/domain/tenant"
)

// TenantState is what the engine needs to know of a tenant.
type TenantState struct {
	Status tenant.Status
	// Tenant and User are the effective caps (tenant_limit read model).
	Tenant, User limits.Caps
}

// Snapshot is the catalog at one moment: every ACTIVE campaign with its
// compiled rule, every tenant's state, and each cohort's current member set.
type Snapshot struct {
	Campaigns []engine.Campaign
	Tenants   map[uuid.UUID]TenantState
	// CohortMembers maps a cohort id to its current member-set generation
	// (uuid.Nil: never computed, so nobody is a member).
	CohortMembers map[uuid.UUID]uuid.UUID
}

// CatalogSource loads a full Snapshot from the read models. Implementations
// must be safe for concurrent use. Campaign rules come back compiled; a
// campaign whose rule no longer parses is left out and reported in errors
// of its own, never failing the whole load.
type CatalogSource interface {
	LoadSnapshot(ctx context.Context) (Snapshot, error)
}

// MemberKey asks whether UserID is in the member set Generation.
type MemberKey struct {
	Generation uuid.UUID
	UserID     string
}

// ProgressKey names one user's progress in one QUEST campaign.
type ProgressKey struct {
	CampaignID uuid.UUID
	UserID     string
}

// BatchStore opens the one transaction a batch is written in.
type BatchStore interface {
	Begin(ctx context.Context) (BatchTx, error)
}

// BatchTx is one batch's transaction. Methods are called in the order
// listed, from one goroutine. After an error the caller calls Rollback.
type BatchTx interface {
	// LogEvents records events in the action-event log and returns, in
	// their order, those it did not hold before. A concurrent transaction
	// logging the same event makes this one wait for it, then skip it.
	LogEvents(ctx context.Context, events []engine.ActionEvent) ([]engine.ActionEvent, error)
	// Members returns the keys whose user is in the member set.
	Members(ctx context.Context, keys []MemberKey) (map[MemberKey]bool, error)
	// LockProgress locks and returns the database's progress of the given
	// quests, the cold ones: the batch will write them here. A key without
	// progress yet is absent from the map, and locked all the same (a
	// concurrent batch waits for this one).
	LockProgress(ctx context.Context, keys []ProgressKey) (map[ProgressKey]StoredProgress, error)
	// ReadProgress returns the database's progress of the given quests, the
	// hot ones, without locking: Redis holds their newest progress, unless
	// the campaign was cold when the user last played.
	ReadProgress(ctx context.Context, keys []ProgressKey) (map[ProgressKey]StoredProgress, error)
	// SaveProgress writes the progress that changed, each key at its
	// Version.
	SaveProgress(ctx context.Context, progress []StoredProgress) error
	// DecisionsRecorded returns which of the decision ids a committed batch
	// recorded: it tells a pending hot-progress write (HotEntry) whose batch
	// committed from one whose batch rolled back.
	DecisionsRecorded(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]bool, error)
	// Record writes every decision (with the limit answer of those that
	// asked) and, for the issued ones, the incentive rows and their
	// IncentiveIssued events with outbox rows. It returns the incentives it
	// wrote: a decision the store already held keeps its first answer, and
	// its incentive, if any, was issued then, not now.
	Record(ctx context.Context, decisions []RecordedDecision, incentives []engine.Incentive) ([]engine.Incentive, error)
	Commit(ctx context.Context) error
	Rollback(ctx context.Context) error
}

// RecordedDecision is a decision with the limit state it saw, if it asked.
type RecordedDecision struct {
	engine.Decision
	Limits *LimitAnswer
}

// LimitRequest asks the limits for one would-be reward.
type LimitRequest struct {
	DecisionID uuid.UUID
	TenantID   uuid.UUID
	UserID     string
	// At is the event's time: days and windows are the event's, so a
	// redelivery lands in the same counters.
	At           time.Time
	Tenant, User limits.Caps
}

// LimitCounter is one counter a limit check read.
type LimitCounter struct {
	// Scope is GLOBAL or USER; Kind is DAY, WINDOW or TOTAL.
	Scope, Kind string
	Cap         int64
	// Seen is the counter's value before this decision.
	Seen int64
}

// LimitAnswer is the limits' verdict on one request.
type LimitAnswer struct {
	Granted bool
	// RefusedBy is the counter at its cap, when refused.
	RefusedBy *LimitCounter
	Counters  []LimitCounter
}

// Limiter checks and counts rewards against the limits, all or nothing per
// request and idempotent per decision id. Safe for concurrent use.
type Limiter interface {
	CheckAndIncr(ctx context.Context, reqs []LimitRequest) ([]LimitAnswer, error)
}

// IncentivePublisher publishes issued incentives to incentive-generated
// (key userId) and returns once the broker has them all.
type IncentivePublisher interface {
	PublishIncentives(ctx context.Context, incentives []engine.Incentive) error
}

// PublishLog is INCENTIVE_EVENT_LOG: which incentives reached
// incentive-generated, and which committed ones have not yet.
type PublishLog interface {
	MarkPublished(ctx context.Context, ids []uuid.UUID, at time.Time) error
	// Unpublished returns up to limit incentives issued before olderThan
	// that were never marked published.
	Unpublished(ctx context.Context, olderThan time.Time, limit int) ([]engine.Incentive, error)
}

// StoredProgress is quest progress as a store holds it. Version orders the
// writes of one key across both stores, the database and Redis: each write
// is one more than the newest version either held, so whichever store holds
// the higher version holds the user's progress. Version 0 is no progress.
type StoredProgress struct {
	engine.QuestProgress
	Version int64
}

// HotFilter tells hot campaigns from cold ones: the count-min sketch of
// DESIGN.md §6.
type HotFilter interface {
	// Observe counts one occurrence of each campaign id given (one per
	// matching event, so a campaign repeats), per tenant, and returns the
	// campaigns that are hot once they are counted. A batch routes all of a
	// campaign's progress one way, by this answer.
	Observe(ctx context.Context, occurrences map[uuid.UUID][]uuid.UUID) (map[uuid.UUID]bool, error)
}

// HotEntry is what Redis holds of one quest's progress.
type HotEntry struct {
	// Latest is the progress last written.
	Latest StoredProgress
	// Pending is a decision id of the batch that wrote Latest, until that
	// batch is known to have committed (Settle clears it); uuid.Nil once
	// settled. Redis is written before the database commits, so a pending
	// entry whose decision the database does not hold was written by a
	// batch that rolled back, and Base is the key's progress.
	Pending uuid.UUID
	// Base is the progress the pending write started from (Version 0: none).
	Base StoredProgress
}

// HotWrite writes one hot quest's progress.
type HotWrite struct {
	Key ProgressKey
	// Seen is the Latest.Version that Load returned (0: the key was
	// absent). The write happens only if the key is still at it.
	Seen     int64
	Progress StoredProgress
	// Base and Pending become the entry's: the progress this batch started
	// from, and one of this batch's decision ids.
	Base    StoredProgress
	Pending uuid.UUID
	// ExpireAt is when Redis may forget the key, after its campaign ends;
	// zero: never.
	ExpireAt time.Time
}

// HotSettle clears one entry's pending mark, once its batch committed.
type HotSettle struct {
	Key     ProgressKey
	Pending uuid.UUID
}

// HotDrop deletes one entry the database now holds a newer version of.
type HotDrop struct {
	Key ProgressKey
	// Version is the Latest.Version Load returned: a key written since is kept.
	Version int64
}

// ErrProgressConflict reports a hot quest whose progress another batch
// wrote between this batch's Load and Save: the batch is retried.
var ErrProgressConflict = errors.New("hot quest progress changed since it was read")

// HotProgress keeps hot campaigns' quest progress: Redis agg: hashes
// (DESIGN.md §6). Safe for concurrent use.
type HotProgress interface {
	// Load returns the entries held of keys; an absent key is not in the map.
	Load(ctx context.Context, keys []ProgressKey) (map[ProgressKey]HotEntry, error)
	// Save writes each entry if its key is still at Seen. If any key moved,
	// it returns an error wrapping ErrProgressConflict; others may have been
	// written, pending, which a retry reads as rolled back.
	Save(ctx context.Context, writes []HotWrite) error
	// Settle clears the pending marks that are still the given ones.
	Settle(ctx context.Context, settles []HotSettle) error
	// Drop deletes the entries still at the given versions.
	Drop(ctx context.Context, drops []HotDrop) error
}
