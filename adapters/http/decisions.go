package http

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	enginecmd "github.com/incentives-platform/incentives/commands/engine"
	"github.com/incentives-platform/incentives/domain/cohort"
	"github.com/incentives-platform/incentives/domain/engine"
	"github.com/incentives-platform/incentives/projections"
)

// DecisionQueries reads the engine's decisions (adapters/postgres.Decisions).
type DecisionQueries interface {
	// UserDecisions returns up to limit decisions about a tenant's user,
	// newest first (decidedAt, then decisionId, descending), after the
	// place before (zero: from the newest); a non-nil campaignID and a
	// non-empty outcome filter them. An unknown user has none.
	UserDecisions(ctx context.Context, tenantID uuid.UUID, userID string, campaignID uuid.UUID, outcome engine.Outcome,
		before projections.TenantKey, limit int) ([]enginecmd.RecordedDecision, error)
}

// decisionDTO is one engine decision as the API shows it: what a campaign
// decided about one event of a user, and why.
type decisionDTO struct {
	DecisionID      string             `json:"decisionId"`
	CampaignID      string             `json:"campaignId"`
	CampaignVersion int64              `json:"campaignVersion"`
	SourceEventID   string             `json:"sourceEventId"`
	Outcome         string             `json:"outcome"`
	Reason          string             `json:"reason"`
	Reward          *decisionRewardDTO `json:"reward"`
	Inputs          map[string]any     `json:"inputs"`
	Limits          *decisionLimitsDTO `json:"limits"`
	IncentiveID     *string            `json:"incentiveId"`
	DecidedAt       time.Time          `json:"decidedAt"`
}

type decisionRewardDTO struct {
	Type     string `json:"type"`
	Currency string `json:"currency"`
	Amount   string `json:"amount"`
}

type decisionLimitsDTO struct {
	Granted   bool                 `json:"granted"`
	RefusedBy *decisionCounterDTO  `json:"refusedBy"`
	Counters  []decisionCounterDTO `json:"counters"`
}

type decisionCounterDTO struct {
	Scope string `json:"scope"`
	Kind  string `json:"kind"`
	Cap   int64  `json:"cap"`
	Seen  int64  `json:"seen"`
}

type decisionListDTO struct {
	Items      []decisionDTO `json:"items"`
	NextCursor string        `json:"nextCursor,omitempty"`
}

func decisionFromRecord(d enginecmd.RecordedDecision) decisionDTO {
	out := decisionDTO{DecisionID: d.ID.String(), CampaignID: d.CampaignID.String(), CampaignVersion: d.CampaignVer,
		SourceEventID: d.SourceEventID.String(), Outcome: string(d.Outcome), Reason: d.Reason, Inputs: d.Inputs,
		DecidedAt: d.DecidedAt.UTC()}
	if out.Inputs == nil {
		out.Inputs = map[string]any{}
	}
	if r := d.Reward; r != nil {
		out.Reward = &decisionRewardDTO{Type: string(r.Type), Currency: r.Currency, Amount: r.Amount.String()}
	}
	if l := d.Limits; l != nil {
		out.Limits = &decisionLimitsDTO{Granted: l.Granted, Counters: make([]decisionCounterDTO, len(l.Counters))}
		if l.RefusedBy != nil {
			c := decisionCounterDTO(*l.RefusedBy)
			out.Limits.RefusedBy = &c
		}
		for i, c := range l.Counters {
			out.Limits.Counters[i] = decisionCounterDTO(c)
		}
	}
	// An issued decision's incentive id is derived from its id
	// (domain/engine.IncentiveID), the same the engine wrote.
	if d.Outcome == engine.OutcomeIssued {
		id := engine.IncentiveID(d.ID).String()
		out.IncentiveID = &id
	}
	return out
}

// userIDParam reads the {userId} path segment: the tenant's own opaque id,
// URL-escaped. chi matches on the escaped path when the request has one
// (an id with "/" or "%" in it), and then its parameters are escaped too.
func userIDParam(r *http.Request) (string, error) {
	raw := chi.URLParam(r, "userId")
	id := raw
	if r.URL.RawPath != "" {
		var err error
		if id, err = url.PathUnescape(raw); err != nil {
			return "", invalidField("userId", "is not a valid URL-escaped path segment")
		}
	}
	if msg := cohort.ValidateUserID(id); msg != "" {
		return "", invalidField("userId", msg)
	}
	return id, nil
}

// outcomePattern is the shape of an outcome: the list grows with the
// engine's rules, so a filter naming an outcome that never happened simply
// finds nothing.
var outcomePattern = regexp.MustCompile(`^[A-Z][A-Z_]{0,31}$`)

// listUserDecisions answers GET /tenants/{tenantId}/users/{userId}/decisions.
func (s *Server) listUserDecisions(w http.ResponseWriter, r *http.Request) {
	id, err := tenantID(r)
	if err == nil {
		err = requireTenantAdmin(r, id)
	}
	var (
		userID     string
		campaignID uuid.UUID
		outcome    engine.Outcome
		limit      int
		before     projections.TenantKey
	)
	q := r.URL.Query()
	if err == nil {
		userID, err = userIDParam(r)
	}
	if err == nil && q.Get("campaignId") != "" {
		campaignID, err = parseUUID("campaignId", q.Get("campaignId"))
	}
	if err == nil && q.Get("outcome") != "" {
		if outcome = engine.Outcome(q.Get("outcome")); !outcomePattern.MatchString(string(outcome)) {
			err = invalidField("outcome", "must be an outcome such as ISSUED or LIMITED")
		}
	}
	if err == nil {
		limit, err = pageSize(r)
	}
	if err == nil {
		before, err = decodeTenantCursor(q.Get("cursor"))
	}
	var records []enginecmd.RecordedDecision
	if err == nil {
		records, err = s.Decisions.UserDecisions(r.Context(), id, userID, campaignID, outcome, before, limit+1)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	records, next := page(records, limit, func(d enginecmd.RecordedDecision) projections.TenantKey {
		return projections.TenantKey{CreatedAt: d.DecidedAt, ID: d.ID}
	})
	out := decisionListDTO{Items: make([]decisionDTO, 0, len(records)), NextCursor: next}
	for _, d := range records {
		out.Items = append(out.Items, decisionFromRecord(d))
	}
	s.writeJSON(w, r, http.StatusOK, out)
}
