package http

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/commands"
	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/campaign"
	"github.com/incentives-platform/incentives/projections"
)

// CampaignQueries reads the campaign read model. Errors: domain.ErrNotFound.
type CampaignQueries interface {
	Campaign(ctx context.Context, id uuid.UUID) (projections.CampaignView, error)
	ListCampaigns(ctx context.Context, tenantID uuid.UUID, filter projections.CampaignFilter, after projections.CampaignKey, limit int) ([]projections.CampaignView, error)
	SearchCampaigns(ctx context.Context, tenantID uuid.UUID, action string, now time.Time) ([]projections.CampaignView, error)
}

// campaignDefinitionDTO is the body of PUT /campaigns/{id}: what a tenant
// writes about a campaign.
type campaignDefinitionDTO struct {
	Name     string          `json:"name"`
	Type     string          `json:"type"`
	StartAt  *time.Time      `json:"startAt"`
	EndAt    *time.Time      `json:"endAt"`
	Rule     json.RawMessage `json:"rule"`
	CohortID *string         `json:"cohortId"`
}

// campaignCreateDTO is the body of POST /campaigns: a definition and the
// tenant it belongs to. (Embedding the definition would make decoding
// errors name fields "campaignDefinitionDTO.name".)
type campaignCreateDTO struct {
	TenantID *string         `json:"tenantId"`
	Name     string          `json:"name"`
	Type     string          `json:"type"`
	StartAt  *time.Time      `json:"startAt"`
	EndAt    *time.Time      `json:"endAt"`
	Rule     json.RawMessage `json:"rule"`
	CohortID *string         `json:"cohortId"`
}

// campaignDTO is a campaign as the API shows it.
type campaignDTO struct {
	CampaignID string          `json:"campaignId"`
	TenantID   string          `json:"tenantId"`
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Status     string          `json:"status"`
	StartAt    *time.Time      `json:"startAt"`
	EndAt      *time.Time      `json:"endAt"`
	Rule       json.RawMessage `json:"rule"`
	CohortID   *string         `json:"cohortId"`
	Version    int64           `json:"version"`
	CreatedAt  time.Time       `json:"createdAt"`
	UpdatedAt  time.Time       `json:"updatedAt"`
}

type campaignListDTO struct {
	Items      []campaignDTO `json:"items"`
	NextCursor string        `json:"nextCursor,omitempty"`
}

func optionalTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func optionalID(id uuid.UUID) *string {
	if id == uuid.Nil {
		return nil
	}
	s := id.String()
	return &s
}

func campaignFromAggregate(c *campaign.Campaign) campaignDTO {
	d := c.Definition()
	return campaignDTO{CampaignID: c.ID().String(), TenantID: c.TenantID().String(), Name: d.Name, Type: string(d.Type),
		Status: string(c.Status()), StartAt: optionalTime(d.StartAt), EndAt: optionalTime(d.EndAt), Rule: d.Rule.Document(),
		CohortID: optionalID(d.CohortID), Version: c.Version(), CreatedAt: c.CreatedAt(), UpdatedAt: c.UpdatedAt()}
}

func campaignFromView(v projections.CampaignView) campaignDTO {
	return campaignDTO{CampaignID: v.CampaignID.String(), TenantID: v.TenantID.String(), Name: v.Name, Type: string(v.Type),
		Status: string(v.Status), StartAt: optionalTime(v.StartAt), EndAt: optionalTime(v.EndAt), Rule: v.Rule,
		CohortID: optionalID(v.CohortID), Version: v.Version, CreatedAt: v.CreatedAt, UpdatedAt: v.UpdatedAt}
}

// input turns the body into the command's input; a malformed cohort id is
// the caller's syntax error (400), like any other malformed id.
func (d campaignDefinitionDTO) input() (commands.CampaignInput, error) {
	in := commands.CampaignInput{Name: d.Name, Type: d.Type}
	if d.StartAt != nil {
		in.StartAt = *d.StartAt
	}
	if d.EndAt != nil {
		in.EndAt = *d.EndAt
	}
	if len(d.Rule) > 0 && string(d.Rule) != "null" {
		in.Rule = d.Rule
	}
	if d.CohortID != nil {
		id, err := parseUUID("cohortId", *d.CohortID)
		if err != nil {
			return in, err
		}
		in.CohortID = id
	}
	return in, nil
}

func parseUUID(field, raw string) (uuid.UUID, error) {
	id, err := uuid.Parse(raw)
	if err != nil || len(raw) != 36 {
		return uuid.Nil, invalidField(field, "must be a UUID such as 0b8f9c1e-2f57-4f4e-8a1b-6c2d1e3f4a5b")
	}
	return id, nil
}

// owningTenant decides which tenant a new resource belongs to: a tenant
// admin's own (naming another is "no such tenant", as if it did not exist),
// or the one a platform admin names.
func owningTenant(acting uuid.UUID, named *string) (uuid.UUID, error) {
	if named == nil {
		if acting == uuid.Nil {
			return uuid.Nil, &domain.ValidationError{Violations: []domain.Violation{{Field: "tenantId", Message: "is required for a platform admin"}}}
		}
		return acting, nil
	}
	id, err := parseUUID("tenantId", *named)
	if err != nil {
		return uuid.Nil, err
	}
	if acting != uuid.Nil && id != acting {
		return uuid.Nil, &domain.ValidationError{Violations: []domain.Violation{{Field: "tenantId", Message: "no such tenant"}}}
	}
	return id, nil
}

func (s *Server) createCampaign(w http.ResponseWriter, r *http.Request) {
	acting, err := actingTenant(r)
	var in campaignCreateDTO
	if err == nil {
		err = s.decodeJSON(w, r, &in, false)
	}
	var cmd commands.CreateCampaign
	if err == nil {
		cmd.TenantID, err = owningTenant(acting, in.TenantID)
	}
	if err == nil {
		cmd.Input, err = campaignDefinitionDTO{Name: in.Name, Type: in.Type, StartAt: in.StartAt, EndAt: in.EndAt, Rule: in.Rule, CohortID: in.CohortID}.input()
	}
	var c *campaign.Campaign
	if err == nil {
		cmd.CampaignID = newResourceID(r)
		c, err = s.Commands.CreateCampaign.Handle(r.Context(), cmd)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/campaigns/"+c.ID().String())
	s.writeVersioned(w, r, http.StatusCreated, c.Version(), campaignFromAggregate(c))
}

func campaignID(r *http.Request) (uuid.UUID, error) {
	return parseUUID("campaignId", chi.URLParam(r, "campaignId"))
}

// campaignCommandInput checks what every command on an existing campaign
// needs: an admin, a campaign id, an optional If-Match and the body.
func (s *Server) campaignCommandInput(w http.ResponseWriter, r *http.Request, body any, optional bool) (acting, id uuid.UUID, version *int64, err error) {
	if acting, err = actingTenant(r); err != nil {
		return
	}
	if id, err = campaignID(r); err != nil {
		return
	}
	if version, err = ifMatch(r); err != nil {
		return
	}
	err = s.decodeJSON(w, r, body, optional)
	return
}

// answerCampaign answers a campaign command's result.
func (s *Server) answerCampaign(w http.ResponseWriter, r *http.Request, c *campaign.Campaign, err error) {
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeVersioned(w, r, http.StatusOK, c.Version(), campaignFromAggregate(c))
}

func (s *Server) updateCampaign(w http.ResponseWriter, r *http.Request) {
	var body campaignDefinitionDTO
	acting, id, version, err := s.campaignCommandInput(w, r, &body, false)
	var in commands.CampaignInput
	if err == nil {
		in, err = body.input()
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	c, err := s.Commands.UpdateCampaign.Handle(r.Context(), commands.UpdateCampaign{TenantID: acting, CampaignID: id, Input: in, IfMatch: version})
	s.answerCampaign(w, r, c, err)
}

func (s *Server) activateCampaign(w http.ResponseWriter, r *http.Request) {
	s.campaignTransition(w, r, func(ctx context.Context, acting, id uuid.UUID, version *int64) (*campaign.Campaign, error) {
		return s.Commands.ActivateCampaign.Handle(ctx, commands.ActivateCampaign{TenantID: acting, CampaignID: id, IfMatch: version})
	})
}

func (s *Server) pauseCampaign(w http.ResponseWriter, r *http.Request) {
	s.campaignTransition(w, r, func(ctx context.Context, acting, id uuid.UUID, version *int64) (*campaign.Campaign, error) {
		return s.Commands.PauseCampaign.Handle(ctx, commands.PauseCampaign{TenantID: acting, CampaignID: id, IfMatch: version})
	})
}

// campaignTransition serves a lifecycle command: no body, or an empty one.
func (s *Server) campaignTransition(w http.ResponseWriter, r *http.Request,
	do func(ctx context.Context, acting, id uuid.UUID, version *int64) (*campaign.Campaign, error)) {
	var body struct{}
	acting, id, version, err := s.campaignCommandInput(w, r, &body, true)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	c, err := do(r.Context(), acting, id, version)
	s.answerCampaign(w, r, c, err)
}

func (s *Server) getCampaign(w http.ResponseWriter, r *http.Request) {
	acting, err := actingTenant(r)
	var id uuid.UUID
	if err == nil {
		id, err = campaignID(r)
	}
	var v projections.CampaignView
	if err == nil {
		// The owner is checked inside the read, so another tenant's campaign
		// is "not found" at once: waiting for its version would tell.
		err = s.readAtLeast(r, func() (int64, error) {
			var err error
			if v, err = s.Campaigns.Campaign(r.Context(), id); err == nil {
				err = requireOwner(acting, v.TenantID)
			}
			return v.Version, err
		})
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeVersioned(w, r, http.StatusOK, v.Version, campaignFromView(v))
}

var actionCode = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,63}$`)

// campaignFilter reads the list's query filters.
func campaignFilter(r *http.Request) (projections.CampaignFilter, error) {
	q := r.URL.Query()
	f := projections.CampaignFilter{Status: campaign.Status(q.Get("status")), Type: campaign.Type(q.Get("type")), Action: q.Get("action")}
	switch f.Status {
	case "", campaign.StatusDraft, campaign.StatusActive, campaign.StatusPaused, campaign.StatusEnded:
	default:
		return f, invalidField("status", "must be DRAFT, ACTIVE, PAUSED or ENDED")
	}
	switch f.Type {
	case "", campaign.Simple, campaign.Quest:
	default:
		return f, invalidField("type", "must be SIMPLE or QUEST")
	}
	if f.Action != "" && !actionCode.MatchString(f.Action) {
		return f, invalidField("action", "must be an action code such as PURCHASE")
	}
	if raw := q.Get("activeAt"); raw != "" {
		at, err := time.Parse(time.RFC3339Nano, raw)
		if err != nil {
			return f, invalidField("activeAt", "must be an RFC 3339 time such as 2026-12-01T00:00:00Z")
		}
		f.ActiveAt = at
	}
	return f, nil
}

func (s *Server) listCampaigns(w http.ResponseWriter, r *http.Request) {
	id, err := tenantID(r)
	if err == nil {
		err = requireTenantAdmin(r, id)
	}
	var (
		filter projections.CampaignFilter
		limit  int
		after  projections.TenantKey
	)
	if err == nil {
		filter, err = campaignFilter(r)
	}
	if err == nil {
		limit, err = pageSize(r)
	}
	if err == nil {
		after, err = decodeTenantCursor(r.URL.Query().Get("cursor"))
	}
	var views []projections.CampaignView
	if err == nil {
		views, err = s.Campaigns.ListCampaigns(r.Context(), id, filter, projections.CampaignKey(after), limit+1)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	views, next := page(views, limit, func(v projections.CampaignView) projections.TenantKey {
		return projections.TenantKey{CreatedAt: v.CreatedAt, ID: v.CampaignID}
	})
	out := campaignListDTO{Items: make([]campaignDTO, 0, len(views)), NextCursor: next}
	for _, v := range views {
		out.Items = append(out.Items, campaignFromView(v))
	}
	s.writeJSON(w, r, http.StatusOK, out)
}

// searchCampaigns is the engine's lookup (ProjectLLD.md §4): the ACTIVE
// campaigns of a tenant that an event of action can match now.
func (s *Server) searchCampaigns(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	raw := q.Get("tenantId")
	if raw == "" {
		s.writeError(w, r, invalidField("tenantId", "is required"))
		return
	}
	id, err := parseUUID("tenantId", raw)
	if err == nil {
		err = requireTenantAdmin(r, id)
	}
	action := q.Get("action")
	if err == nil && !actionCode.MatchString(action) {
		err = invalidField("action", "is required: an action code such as PURCHASE")
	}
	var views []projections.CampaignView
	if err == nil {
		views, err = s.Campaigns.SearchCampaigns(r.Context(), id, action, time.Now())
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := campaignListDTO{Items: make([]campaignDTO, 0, len(views))}
	for _, v := range views {
		out.Items = append(out.Items, campaignFromView(v))
	}
	s.writeJSON(w, r, http.StatusOK, out)
}
