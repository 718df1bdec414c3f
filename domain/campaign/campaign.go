// Package campaign is the Campaign aggregate: what a tenant rewards (its
// rule), for whom (an optional cohort), when (startAt to endAt), and where it
// is in its lifecycle: DRAFT → ACTIVE ⇄ PAUSED → ENDED, ending by itself once
// endAt passes.
package campaign

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/rules"
)

// Aggregate is the stable name of the campaign stream type and of its topic.
const Aggregate = "campaign"

// MaxNameLength bounds a campaign's name.
const MaxNameLength = 200

// Type is the shape of a campaign's rule.
type Type = rules.Kind

// Campaign types.
const (
	Simple = rules.Simple
	Quest  = rules.Quest
)

// Status is where a campaign is in its lifecycle.
type Status string

// Campaign statuses.
const (
	StatusDraft  Status = "DRAFT"
	StatusActive Status = "ACTIVE"
	StatusPaused Status = "PAUSED"
	StatusEnded  Status = "ENDED"
)

// Stream returns the event stream of campaign id.
func Stream(id uuid.UUID) domain.StreamID { return domain.StreamID{Aggregate: Aggregate, ID: id} }

// The dates a campaign may name: what every store and wire format (RFC 3339,
// Avro timestamp-millis, PostgreSQL) holds alike.
var (
	earliest = time.Unix(0, 0).UTC()
	latest   = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
)

// Definition is what a tenant writes about a campaign; everything else
// (status, dates of changes) the campaign's history decides.
type Definition struct {
	Name string
	Type Type
	// StartAt is when the campaign starts rewarding; zero: as soon as it is active.
	StartAt time.Time
	// EndAt is when it stops for good; zero: when it is ended.
	EndAt time.Time
	Rule  rules.Rule
	// CohortID restricts rewards to a cohort's members; uuid.Nil: every user.
	CohortID uuid.UUID
}

// validate reports every problem of d.
func (d *Definition) validate(v *domain.Validator) {
	d.Name = strings.TrimSpace(d.Name)
	switch {
	case d.Name == "":
		v.Add("name", "must not be empty")
	case utf8.RuneCountInString(d.Name) > MaxNameLength:
		v.Add("name", fmt.Sprintf("must be at most %d characters", MaxNameLength))
	case strings.IndexFunc(d.Name, unicode.IsControl) >= 0:
		v.Add("name", "must not contain control characters")
	}
	if d.Type != Simple && d.Type != Quest {
		v.Add("type", "must be SIMPLE or QUEST")
	} else if d.Rule.Kind != d.Type {
		v.Add("rule", "must be a "+string(d.Type)+" rule")
	}
	for _, f := range []struct {
		name string
		at   time.Time
	}{{"startAt", d.StartAt}, {"endAt", d.EndAt}} {
		if !f.at.IsZero() && (f.at.Before(earliest) || f.at.After(latest)) {
			v.Add(f.name, "must be between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z")
		}
	}
	if !d.StartAt.IsZero() && !d.EndAt.IsZero() && !d.EndAt.After(d.StartAt) {
		v.Add("endAt", "must be after startAt")
	}
	d.StartAt, d.EndAt = d.StartAt.UTC(), d.EndAt.UTC()
}

// Campaign is a campaign's current state, rebuilt from its events.
type Campaign struct {
	id        uuid.UUID
	tenantID  uuid.UUID
	def       Definition
	status    Status
	createdAt time.Time
	updatedAt time.Time
	version   int64
}

// ID returns the campaign's id.
func (c *Campaign) ID() uuid.UUID { return c.id }

// TenantID returns the tenant the campaign belongs to.
func (c *Campaign) TenantID() uuid.UUID { return c.tenantID }

// Definition returns what the tenant wrote.
func (c *Campaign) Definition() Definition { return c.def }

// Status returns the lifecycle status.
func (c *Campaign) Status() Status { return c.status }

// CreatedAt returns when the campaign was created.
func (c *Campaign) CreatedAt() time.Time { return c.createdAt }

// UpdatedAt returns when the campaign last changed.
func (c *Campaign) UpdatedAt() time.Time { return c.updatedAt }

// Version returns how many events the campaign's stream holds.
func (c *Campaign) Version() int64 { return c.version }

// Create decides a new campaign of tenantID, in DRAFT. It returns a
// *domain.ValidationError for a bad definition.
func Create(id, tenantID uuid.UUID, def Definition, now time.Time) ([]domain.Event, error) {
	var v domain.Validator
	v.Check(id != uuid.Nil, "campaignId", "must be a non-nil UUID")
	v.Check(tenantID != uuid.Nil, "tenantId", "is required")
	def.validate(&v)
	if err := v.Err(); err != nil {
		return nil, err
	}
	return []domain.Event{Created{CampaignID: id, TenantID: tenantID, Definition: def, CreatedAt: now.UTC()}}, nil
}

// Update decides to replace the definition. An ended campaign cannot change
// (domain.ErrInvalidTransition), and only a draft may change its type.
func (c *Campaign) Update(def Definition, now time.Time) ([]domain.Event, error) {
	var v domain.Validator
	def.validate(&v)
	if c.status != StatusDraft && def.Type != c.def.Type {
		v.Add("type", "can only change while the campaign is a DRAFT")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if c.status == StatusEnded {
		return nil, fmt.Errorf("campaign %s has ended: %w", c.id, domain.ErrInvalidTransition)
	}
	return []domain.Event{Updated{CampaignID: c.id, Definition: def, UpdatedAt: now.UTC()}}, nil
}

// Activate decides to start rewarding: from DRAFT or PAUSED, and not once
// endAt has passed.
func (c *Campaign) Activate(now time.Time) ([]domain.Event, error) {
	if c.status != StatusDraft && c.status != StatusPaused {
		return nil, fmt.Errorf("campaign %s is %s, not DRAFT or PAUSED: %w", c.id, c.status, domain.ErrInvalidTransition)
	}
	if !c.def.EndAt.IsZero() && !now.Before(c.def.EndAt) {
		return nil, fmt.Errorf("campaign %s ended at %s: %w", c.id, c.def.EndAt.Format(time.RFC3339), domain.ErrInvalidTransition)
	}
	return []domain.Event{Activated{CampaignID: c.id, ActivatedAt: now.UTC()}}, nil
}

// Pause decides to stop rewarding for now: from ACTIVE only.
func (c *Campaign) Pause(now time.Time) ([]domain.Event, error) {
	if c.status != StatusActive {
		return nil, fmt.Errorf("campaign %s is %s, not ACTIVE: %w", c.id, c.status, domain.ErrInvalidTransition)
	}
	return []domain.Event{Paused{CampaignID: c.id, PausedAt: now.UTC()}}, nil
}

// EndIfDue decides to end an active or paused campaign whose endAt has
// passed. It returns no events when there is nothing to do, so a scheduler
// may ask as often as it likes.
func (c *Campaign) EndIfDue(now time.Time) []domain.Event {
	if (c.status != StatusActive && c.status != StatusPaused) || c.def.EndAt.IsZero() || now.Before(c.def.EndAt) {
		return nil
	}
	return []domain.Event{Ended{CampaignID: c.id, Reason: EndAtReached, EndedAt: now.UTC()}}
}

// Rehydrate rebuilds a campaign from its events; domain.ErrNotFound for none.
func Rehydrate(history []domain.Event) (*Campaign, error) {
	if len(history) == 0 {
		return nil, domain.ErrNotFound
	}
	c := &Campaign{}
	for _, e := range history {
		c.Apply(e)
	}
	return c, nil
}

// Apply changes the campaign by one of its events; other events are ignored.
func (c *Campaign) Apply(e domain.Event) {
	switch e := e.(type) {
	case Created:
		c.id, c.tenantID, c.def, c.status = e.CampaignID, e.TenantID, e.Definition, StatusDraft
		c.createdAt, c.updatedAt = e.CreatedAt, e.CreatedAt
	case Updated:
		c.def, c.updatedAt = e.Definition, e.UpdatedAt
	case Activated:
		c.status, c.updatedAt = StatusActive, e.ActivatedAt
	case Paused:
		c.status, c.updatedAt = StatusPaused, e.PausedAt
	case Ended:
		c.status, c.updatedAt = StatusEnded, e.EndedAt
	default:
		return
	}
	c.version++
}
