// Package cohort is the Cohort aggregate: a named set of a tenant's users
// that a campaign can be restricted to. A STATIC cohort is a list of user ids
// given once; a DYNAMIC cohort is a CEL rule over each user's recorded
// actions, recomputed on request and on a schedule.
//
// Member lists can hold a million ids, too many for an event: each list is
// stored once as an immutable member set, and events name it by its
// generation id and size (a claim check). A recomputation writes a new
// generation; the cohort switches to it when Recomputed is recorded.
package cohort

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/rules"
)

// Aggregate is the stable name of the cohort stream type and of its topic.
const Aggregate = "cohort"

// Limits of a cohort.
const (
	MaxNameLength    = 200
	MaxStaticMembers = 1_000_000
	MaxUserIDLength  = 128
)

// Kind says how a cohort's members are chosen.
type Kind string

// Cohort kinds.
const (
	Static  Kind = "STATIC"
	Dynamic Kind = "DYNAMIC"
)

// Event type names (schemas/avro/<name>.avsc).
const (
	CreatedType    = "cohort.created.v1"
	RecomputedType = "cohort.recomputed.v1"
)

// Stream returns the event stream of cohort id.
func Stream(id uuid.UUID) domain.StreamID { return domain.StreamID{Aggregate: Aggregate, ID: id} }

// Members names a stored member set.
type Members struct {
	Generation uuid.UUID
	Count      int64
}

// Created: a tenant defined a cohort. A STATIC cohort's members come with it;
// a DYNAMIC cohort has none until its first computation.
type Created struct {
	CohortID  uuid.UUID
	TenantID  uuid.UUID
	Name      string
	Kind      Kind
	Rule      string
	Members   Members
	CreatedAt time.Time
}

// Recomputed: a DYNAMIC cohort's members are now the generation computed by
// the job.
type Recomputed struct {
	CohortID   uuid.UUID
	JobID      uuid.UUID
	Members    Members
	ComputedAt time.Time
}

func (Created) EventType() string    { return CreatedType }
func (Recomputed) EventType() string { return RecomputedType }

// ValidateUserID reports what is wrong with one member id, or "".
func ValidateUserID(id string) string {
	switch {
	case id == "":
		return "must not be empty"
	case len(id) > MaxUserIDLength:
		return fmt.Sprintf("must be at most %d bytes", MaxUserIDLength)
	case !utf8.ValidString(id) || strings.IndexFunc(id, unicode.IsControl) >= 0:
		return "must be text without control characters"
	}
	return ""
}

// Definition is what a tenant writes about a cohort.
type Definition struct {
	Name string
	Kind Kind
	// Rule is the CEL rule of a DYNAMIC cohort (rules.CompileUserCondition).
	Rule string
}

// Cohort is a cohort's current state, rebuilt from its events.
type Cohort struct {
	id, tenantID uuid.UUID
	def          Definition
	members      Members
	computedAt   time.Time
	createdAt    time.Time
	version      int64
	// lastJob is the recomputation job whose members are current.
	lastJob uuid.UUID
}

// ID returns the cohort's id.
func (c *Cohort) ID() uuid.UUID { return c.id }

// TenantID returns the tenant the cohort belongs to.
func (c *Cohort) TenantID() uuid.UUID { return c.tenantID }

// Definition returns what the tenant wrote.
func (c *Cohort) Definition() Definition { return c.def }

// Members returns the current member set (zero for a DYNAMIC cohort never computed).
func (c *Cohort) Members() Members { return c.members }

// ComputedAt returns when the members were last computed (creation for STATIC).
func (c *Cohort) ComputedAt() time.Time { return c.computedAt }

// CreatedAt returns when the cohort was created.
func (c *Cohort) CreatedAt() time.Time { return c.createdAt }

// Version returns how many events the cohort's stream holds.
func (c *Cohort) Version() int64 { return c.version }

// LastJob returns the recomputation job whose members are current, or
// uuid.Nil if none is (a STATIC cohort, or a DYNAMIC one never computed).
func (c *Cohort) LastJob() uuid.UUID { return c.lastJob }

// Create decides a new cohort. A STATIC cohort needs its stored member set
// (members, at most MaxStaticMembers); a DYNAMIC one a rule that compiles.
// It returns a *domain.ValidationError for anything else.
func Create(id, tenantID uuid.UUID, def Definition, members Members, now time.Time) ([]domain.Event, error) {
	var v domain.Validator
	v.Check(id != uuid.Nil, "cohortId", "must be a non-nil UUID")
	v.Check(tenantID != uuid.Nil, "tenantId", "is required")
	def.Name = strings.TrimSpace(def.Name)
	switch {
	case def.Name == "":
		v.Add("name", "must not be empty")
	case utf8.RuneCountInString(def.Name) > MaxNameLength:
		v.Add("name", fmt.Sprintf("must be at most %d characters", MaxNameLength))
	case strings.IndexFunc(def.Name, unicode.IsControl) >= 0:
		v.Add("name", "must not contain control characters")
	}
	switch def.Kind {
	case Static:
		v.Check(def.Rule == "", "rule", "is for DYNAMIC cohorts; a STATIC cohort lists userIds")
		v.Check(members.Generation != uuid.Nil, "userIds", "is required for a STATIC cohort")
		v.Check(members.Count <= MaxStaticMembers, "userIds", fmt.Sprintf("must hold at most %d ids", MaxStaticMembers))
	case Dynamic:
		v.Check(members == Members{}, "userIds", "is for STATIC cohorts; a DYNAMIC cohort has a rule")
		if _, err := rules.CompileUserCondition("rule", def.Rule); err != nil {
			var ve *domain.ValidationError
			if !errors.As(err, &ve) {
				return nil, err
			}
			for _, viol := range ve.Violations {
				v.Add(viol.Field, viol.Message)
			}
		}
	default:
		v.Add("kind", "must be STATIC or DYNAMIC")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	return []domain.Event{Created{CohortID: id, TenantID: tenantID, Name: def.Name, Kind: def.Kind, Rule: def.Rule,
		Members: members, CreatedAt: now.UTC()}}, nil
}

// Recompute decides that job's computed member set replaces the current one.
// Only DYNAMIC cohorts are recomputed (domain.ErrInvalidTransition otherwise).
//
// A job whose result is already recorded decides nothing: a job runner that
// crashed after recording and runs the job again must not record it twice.
func (c *Cohort) Recompute(job uuid.UUID, members Members, now time.Time) ([]domain.Event, error) {
	if err := c.Recomputable(); err != nil {
		return nil, err
	}
	if job != uuid.Nil && job == c.lastJob {
		return nil, nil
	}
	return []domain.Event{Recomputed{CohortID: c.id, JobID: job, Members: members, ComputedAt: now.UTC()}}, nil
}

// Recomputable reports whether the cohort's members can be recomputed:
// domain.ErrInvalidTransition for a STATIC cohort, whose list is fixed.
func (c *Cohort) Recomputable() error {
	if c.def.Kind != Dynamic {
		return fmt.Errorf("cohort %s is %s; only DYNAMIC cohorts are recomputed: %w", c.id, c.def.Kind, domain.ErrInvalidTransition)
	}
	return nil
}

// Rehydrate rebuilds a cohort from its events; domain.ErrNotFound for none.
func Rehydrate(history []domain.Event) (*Cohort, error) {
	if len(history) == 0 {
		return nil, domain.ErrNotFound
	}
	c := &Cohort{}
	for _, e := range history {
		c.Apply(e)
	}
	return c, nil
}

// Apply changes the cohort by one of its events; other events are ignored.
func (c *Cohort) Apply(e domain.Event) {
	switch e := e.(type) {
	case Created:
		c.id, c.tenantID = e.CohortID, e.TenantID
		c.def = Definition{Name: e.Name, Kind: e.Kind, Rule: e.Rule}
		c.members, c.createdAt = e.Members, e.CreatedAt
		if e.Kind == Static {
			c.computedAt = e.CreatedAt
		}
	case Recomputed:
		c.members, c.computedAt, c.lastJob = e.Members, e.ComputedAt, e.JobID
	default:
		return
	}
	c.version++
}
