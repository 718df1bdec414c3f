package projections_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/limits"
	"github.com/incentives-platform/incentives/domain/tenant"
	"github.com/incentives-platform/incentives/projections"
)

var (
	id = uuid.MustParse("5a0c2d3e-4f51-4a6b-8c7d-9e0f1a2b3c4d")
	t0 = time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	t1 = t0.Add(time.Hour)
	t2 = t1.Add(time.Hour)
)

func rec(version int64, e domain.Event) domain.RecordedEvent {
	return domain.RecordedEvent{Stream: tenant.Stream(id), Version: version, Event: e}
}

func TestEvolveTenant(t *testing.T) {
	created := rec(1, tenant.Created{TenantID: id, Name: "Acme", CreatedAt: t0})
	suspended := rec(2, tenant.Suspended{TenantID: id, SuspendedAt: t1})
	reactivated := rec(3, tenant.Reactivated{TenantID: id, ReactivatedAt: t2})
	active := projections.TenantView{TenantID: id, Name: "Acme", Status: tenant.StatusActive, CreatedAt: t0, UpdatedAt: t0, Version: 1}
	tests := []struct {
		name       string
		deliveries []domain.RecordedEvent
		want       projections.TenantView
	}{
		{"created", []domain.RecordedEvent{created}, active},
		{"suspended", []domain.RecordedEvent{created, suspended},
			projections.TenantView{TenantID: id, Name: "Acme", Status: tenant.StatusSuspended, CreatedAt: t0, UpdatedAt: t1, Version: 2}},
		{"a redelivered batch changes nothing", []domain.RecordedEvent{created, suspended, reactivated, suspended, reactivated, created},
			projections.TenantView{TenantID: id, Name: "Acme", Status: tenant.StatusActive, CreatedAt: t0, UpdatedAt: t2, Version: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v *projections.TenantView
			for _, d := range tt.deliveries {
				v = projections.EvolveTenant(v, d)
			}
			if !reflect.DeepEqual(*v, tt.want) {
				t.Fatalf("view = %+v, want %+v", *v, tt.want)
			}
		})
	}
	cur := &active
	if got := projections.EvolveTenant(cur, created); got != cur {
		t.Fatal("an already applied event must return the same view, so the store writes nothing")
	}
}

func TestEvolveLimits(t *testing.T) {
	n := int64(10)
	defined := domain.RecordedEvent{Stream: limits.Stream(id), Version: 1, Event: limits.Defined{TenantID: id, User: limits.Caps{PerDay: &n}, DefinedAt: t0}}
	v := projections.EvolveLimits(nil, defined)
	want := projections.LimitsView{TenantID: id, User: limits.Caps{PerDay: &n}, CreatedAt: t0, UpdatedAt: t0, Version: 1}
	if !reflect.DeepEqual(*v, want) {
		t.Fatalf("view = %+v, want %+v", *v, want)
	}
	if projections.EvolveLimits(v, defined) != v {
		t.Fatal("redelivery changed the view")
	}
}
