package avro

import (
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/linkedin/goavro/v2"

	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/campaign"
	"github.com/incentives-platform/incentives/domain/rules"
)

// definitionToNative writes the rule as its canonical document: consumers in
// any language read it with schemas/rule.schema.json, and it parses back to
// an equal rule.
func definitionToNative(d campaign.Definition) map[string]any {
	return map[string]any{
		"name": d.Name, "type": string(d.Type),
		"startAt": nullableTime(d.StartAt), "endAt": nullableTime(d.EndAt),
		"rule": string(d.Rule.Document()), "cohortId": nullableUUID(d.CohortID),
	}
}

func definitionFromNative(r *record) campaign.Definition {
	d := campaign.Definition{
		Name: r.string("name"), Type: campaign.Type(r.string("type")),
		StartAt: r.optionalTime("startAt"), EndAt: r.optionalTime("endAt"), CohortID: r.optionalUUID("cohortId"),
	}
	doc := r.string("rule")
	if r.err != nil {
		return d
	}
	rule, err := rules.Parse(d.Type, []byte(doc))
	if err != nil {
		r.err = fmt.Errorf("%w: field rule: %v", ErrUndecodable, err)
	}
	d.Rule = rule
	return d
}

func campaignCreatedToNative(e domain.Event) (map[string]any, error) {
	c, ok := e.(campaign.Created)
	if !ok {
		return nil, wrongType(campaign.CreatedType, e)
	}
	return map[string]any{"campaignId": c.CampaignID.String(), "tenantId": c.TenantID.String(),
		"definition": definitionToNative(c.Definition), "createdAt": c.CreatedAt}, nil
}

func campaignCreatedFromNative(m map[string]any) (domain.Event, error) {
	r := &record{m: m}
	dr := r.record("definition")
	e := campaign.Created{CampaignID: r.uuid("campaignId"), TenantID: r.uuid("tenantId"), CreatedAt: r.time("createdAt")}
	if r.err == nil {
		e.Definition = definitionFromNative(dr)
	}
	return e, firstErr(r.err, dr.err)
}

func campaignUpdatedToNative(e domain.Event) (map[string]any, error) {
	u, ok := e.(campaign.Updated)
	if !ok {
		return nil, wrongType(campaign.UpdatedType, e)
	}
	return map[string]any{"campaignId": u.CampaignID.String(), "definition": definitionToNative(u.Definition), "updatedAt": u.UpdatedAt}, nil
}

func campaignUpdatedFromNative(m map[string]any) (domain.Event, error) {
	r := &record{m: m}
	dr := r.record("definition")
	e := campaign.Updated{CampaignID: r.uuid("campaignId"), UpdatedAt: r.time("updatedAt")}
	if r.err == nil {
		e.Definition = definitionFromNative(dr)
	}
	return e, firstErr(r.err, dr.err)
}

func campaignActivatedToNative(e domain.Event) (map[string]any, error) {
	a, ok := e.(campaign.Activated)
	if !ok {
		return nil, wrongType(campaign.ActivatedType, e)
	}
	return map[string]any{"campaignId": a.CampaignID.String(), "activatedAt": a.ActivatedAt}, nil
}

func campaignActivatedFromNative(m map[string]any) (domain.Event, error) {
	r := &record{m: m}
	return campaign.Activated{CampaignID: r.uuid("campaignId"), ActivatedAt: r.time("activatedAt")}, r.err
}

func campaignPausedToNative(e domain.Event) (map[string]any, error) {
	p, ok := e.(campaign.Paused)
	if !ok {
		return nil, wrongType(campaign.PausedType, e)
	}
	return map[string]any{"campaignId": p.CampaignID.String(), "pausedAt": p.PausedAt}, nil
}

func campaignPausedFromNative(m map[string]any) (domain.Event, error) {
	r := &record{m: m}
	return campaign.Paused{CampaignID: r.uuid("campaignId"), PausedAt: r.time("pausedAt")}, r.err
}

func campaignEndedToNative(e domain.Event) (map[string]any, error) {
	x, ok := e.(campaign.Ended)
	if !ok {
		return nil, wrongType(campaign.EndedType, e)
	}
	return map[string]any{"campaignId": x.CampaignID.String(), "reason": string(x.Reason), "endedAt": x.EndedAt}, nil
}

func campaignEndedFromNative(m map[string]any) (domain.Event, error) {
	r := &record{m: m}
	return campaign.Ended{CampaignID: r.uuid("campaignId"), Reason: campaign.EndReason(r.string("reason")), EndedAt: r.time("endedAt")}, r.err
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// nullableTime writes a ["null", timestamp-millis] union; the zero time is null.
func nullableTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return goavro.Union("long.timestamp-millis", t)
}

// nullableUUID writes a ["null", uuid string] union; uuid.Nil is null.
func nullableUUID(id uuid.UUID) any {
	if id == uuid.Nil {
		return nil
	}
	return goavro.Union("string", id.String())
}

// optionalTime reads a ["null", timestamp-millis] union; null reads as the zero time.
func (r *record) optionalTime(field string) time.Time {
	switch v := r.m[field].(type) {
	case nil:
		return time.Time{}
	case map[string]any:
		if t, ok := v["long.timestamp-millis"].(time.Time); ok {
			return t.UTC()
		}
	}
	r.fail(field, "null or timestamp", r.m[field])
	return time.Time{}
}

// optionalUUID reads a ["null", uuid string] union; null reads as uuid.Nil.
func (r *record) optionalUUID(field string) uuid.UUID {
	switch v := r.m[field].(type) {
	case nil:
		return uuid.Nil
	case map[string]any:
		if s, ok := v["string"].(string); ok {
			if id, err := uuid.Parse(s); err == nil {
				return id
			}
		}
	}
	r.fail(field, "null or uuid", r.m[field])
	return uuid.Nil
}
