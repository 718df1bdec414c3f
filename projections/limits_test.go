package projections_test

import (
	"reflect"
	"testing"

	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/limits"
	"github.com/incentives-platform/incentives/projections"
)

func TestEvolveLimitsChanges(t *testing.T) {
	n := func(v int64) *int64 { return &v }
	lrec := func(version int64, e domain.Event) domain.RecordedEvent {
		return domain.RecordedEvent{Stream: limits.Stream(id), Version: version, Event: e}
	}
	defined := lrec(1, limits.Defined{TenantID: id, Tenant: limits.Caps{PerDay: n(100)}, User: limits.Caps{PerDay: n(10)}, DefinedAt: t0})
	tenantSet := lrec(2, limits.TenantSet{TenantID: id, Caps: limits.Caps{PerWindow: n(500), WindowDays: 7, Total: n(0)}, SetAt: t1})
	userSet := lrec(3, limits.UserSet{TenantID: id, Caps: limits.Caps{}, SetAt: t2})
	tests := []struct {
		name       string
		deliveries []domain.RecordedEvent
		want       projections.LimitsView
	}{
		{"tenant caps replaced", []domain.RecordedEvent{defined, tenantSet},
			projections.LimitsView{TenantID: id, Tenant: limits.Caps{PerWindow: n(500), WindowDays: 7, Total: n(0)}, User: limits.Caps{PerDay: n(10)},
				CreatedAt: t0, UpdatedAt: t1, Version: 2}},
		{"user caps lifted", []domain.RecordedEvent{defined, tenantSet, userSet},
			projections.LimitsView{TenantID: id, Tenant: limits.Caps{PerWindow: n(500), WindowDays: 7, Total: n(0)}, User: limits.Caps{},
				CreatedAt: t0, UpdatedAt: t2, Version: 3}},
		{"user caps without tenant change", []domain.RecordedEvent{defined, lrec(2, limits.UserSet{TenantID: id, Caps: limits.Caps{Total: n(3)}, SetAt: t1})},
			projections.LimitsView{TenantID: id, Tenant: limits.Caps{PerDay: n(100)}, User: limits.Caps{Total: n(3)}, CreatedAt: t0, UpdatedAt: t1, Version: 2}},
		{"a redelivered batch changes nothing", []domain.RecordedEvent{defined, tenantSet, userSet, defined, tenantSet, userSet, tenantSet},
			projections.LimitsView{TenantID: id, Tenant: limits.Caps{PerWindow: n(500), WindowDays: 7, Total: n(0)}, User: limits.Caps{},
				CreatedAt: t0, UpdatedAt: t2, Version: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v *projections.LimitsView
			for _, d := range tt.deliveries {
				v = projections.EvolveLimits(v, d)
			}
			if !reflect.DeepEqual(*v, tt.want) {
				t.Fatalf("view = %+v, want %+v", *v, tt.want)
			}
		})
	}
	v := projections.EvolveLimits(projections.EvolveLimits(nil, defined), tenantSet)
	if projections.EvolveLimits(v, tenantSet) != v {
		t.Fatal("an already applied change must return the same view, so the store writes nothing")
	}
}
