package projections_test

import (
	"reflect"
	"testing"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/cohort"
	"github.com/incentives-platform/incentives/projections"
)

func TestEvolveCohort(t *testing.T) {
	cohortID, tenantID := uuid.New(), uuid.New()
	crec := func(version int64, e domain.Event) domain.RecordedEvent {
		return domain.RecordedEvent{Stream: cohort.Stream(cohortID), Version: version, Event: e}
	}
	staticMembers := cohort.Members{Generation: uuid.New(), Count: 3}
	first, second := cohort.Members{Generation: uuid.New(), Count: 10}, cohort.Members{Generation: uuid.New(), Count: 12}
	rule := "user.total > 3"
	static := crec(1, cohort.Created{CohortID: cohortID, TenantID: tenantID, Name: "VIPs", Kind: cohort.Static, Members: staticMembers, CreatedAt: t0})
	dynamic := crec(1, cohort.Created{CohortID: cohortID, TenantID: tenantID, Name: "Active", Kind: cohort.Dynamic, Rule: rule, CreatedAt: t0})
	recomputed := crec(2, cohort.Recomputed{CohortID: cohortID, JobID: uuid.New(), Members: first, ComputedAt: t1})
	again := crec(3, cohort.Recomputed{CohortID: cohortID, JobID: uuid.New(), Members: second, ComputedAt: t2})
	tests := []struct {
		name       string
		deliveries []domain.RecordedEvent
		want       projections.CohortView
	}{
		{"static: computed when created", []domain.RecordedEvent{static}, projections.CohortView{CohortID: cohortID, TenantID: tenantID,
			Name: "VIPs", Kind: cohort.Static, Members: staticMembers, ComputedAt: t0, CreatedAt: t0, UpdatedAt: t0, Version: 1}},
		{"dynamic: no members until computed", []domain.RecordedEvent{dynamic}, projections.CohortView{CohortID: cohortID, TenantID: tenantID,
			Name: "Active", Kind: cohort.Dynamic, Rule: rule, CreatedAt: t0, UpdatedAt: t0, Version: 1}},
		{"recomputed twice", []domain.RecordedEvent{dynamic, recomputed, again}, projections.CohortView{CohortID: cohortID, TenantID: tenantID,
			Name: "Active", Kind: cohort.Dynamic, Rule: rule, Members: second, ComputedAt: t2, CreatedAt: t0, UpdatedAt: t2, Version: 3}},
		{"a redelivered older event changes nothing", []domain.RecordedEvent{dynamic, recomputed, again, recomputed, dynamic},
			projections.CohortView{CohortID: cohortID, TenantID: tenantID,
				Name: "Active", Kind: cohort.Dynamic, Rule: rule, Members: second, ComputedAt: t2, CreatedAt: t0, UpdatedAt: t2, Version: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v *projections.CohortView
			for _, d := range tt.deliveries {
				v = projections.EvolveCohort(v, d)
			}
			if !reflect.DeepEqual(*v, tt.want) {
				t.Fatalf("view = %+v, want %+v", *v, tt.want)
			}
		})
	}
	cur := projections.EvolveCohort(nil, dynamic)
	if projections.EvolveCohort(cur, dynamic) != cur {
		t.Fatal("an already applied event must return the same view, so the store writes nothing")
	}
}
