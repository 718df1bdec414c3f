package avro

import (
	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/cohort"
)

// Cohort events carry their member set by reference (membersGeneration and
// memberCount), never the ids: a consumer that needs the members reads the
// set from the platform.

func cohortCreatedToNative(e domain.Event) (map[string]any, error) {
	c, ok := e.(cohort.Created)
	if !ok {
		return nil, wrongType(cohort.CreatedType, e)
	}
	return map[string]any{
		"cohortId": c.CohortID.String(), "tenantId": c.TenantID.String(), "name": c.Name, "kind": string(c.Kind),
		"rule": c.Rule, "membersGeneration": nullableUUID(c.Members.Generation), "memberCount": c.Members.Count,
		"createdAt": c.CreatedAt,
	}, nil
}

func cohortCreatedFromNative(m map[string]any) (domain.Event, error) {
	r := &record{m: m}
	e := cohort.Created{CohortID: r.uuid("cohortId"), TenantID: r.uuid("tenantId"), Name: r.string("name"),
		Kind: cohort.Kind(r.string("kind")), Rule: r.string("rule"),
		Members:   cohort.Members{Generation: r.optionalUUID("membersGeneration"), Count: readLong(r, "memberCount")},
		CreatedAt: r.time("createdAt")}
	return e, r.err
}

func cohortRecomputedToNative(e domain.Event) (map[string]any, error) {
	c, ok := e.(cohort.Recomputed)
	if !ok {
		return nil, wrongType(cohort.RecomputedType, e)
	}
	return map[string]any{
		"cohortId": c.CohortID.String(), "jobId": c.JobID.String(),
		"membersGeneration": c.Members.Generation.String(), "memberCount": c.Members.Count, "computedAt": c.ComputedAt,
	}, nil
}

func cohortRecomputedFromNative(m map[string]any) (domain.Event, error) {
	r := &record{m: m}
	e := cohort.Recomputed{CohortID: r.uuid("cohortId"), JobID: r.uuid("jobId"),
		Members:    cohort.Members{Generation: r.uuid("membersGeneration"), Count: readLong(r, "memberCount")},
		ComputedAt: r.time("computedAt")}
	return e, r.err
}

// readLong reads a long field.
func readLong(r *record, field string) int64 {
	n, ok := r.m[field].(int64)
	if !ok {
		r.fail(field, "long", r.m[field])
	}
	return n
}
