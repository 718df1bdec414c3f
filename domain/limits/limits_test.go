package limits_test

import (
	"errors"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/limits"
)

func ptr(n int64) *int64 { return &n }

func TestDefine(t *testing.T) {
	id := uuid.MustParse("0b8f9c1e-2f57-4f4e-8a1b-6c2d1e3f4a5b")
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		tenant     limits.Caps
		user       limits.Caps
		wantFields []string
	}{
		{"daily caps only", limits.Caps{PerDay: ptr(1000)}, limits.Caps{PerDay: ptr(5)}, nil},
		{"all unbounded", limits.Caps{}, limits.Caps{}, nil},
		{"zero freezes", limits.Caps{Total: ptr(0)}, limits.Caps{}, nil},
		{"window with length", limits.Caps{PerWindow: ptr(10), WindowDays: 7}, limits.Caps{}, nil},
		{"negative caps", limits.Caps{PerDay: ptr(-1)}, limits.Caps{Total: ptr(-5)}, []string{"tenant.maxPerDay", "user.maxTotal"}},
		{"window without length", limits.Caps{PerWindow: ptr(10)}, limits.Caps{}, []string{"tenant.windowDays"}},
		{"window too long", limits.Caps{}, limits.Caps{PerWindow: ptr(1), WindowDays: 400}, []string{"user.windowDays"}},
		{"length without window", limits.Caps{WindowDays: 3}, limits.Caps{}, []string{"tenant.windowDays"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := limits.Define(id, tt.tenant, tt.user, now)
			if tt.wantFields != nil {
				var ve *domain.ValidationError
				if !errors.As(err, &ve) {
					t.Fatalf("Define error = %v, want validation error", err)
				}
				var fields []string
				for _, v := range ve.Violations {
					fields = append(fields, v.Field)
				}
				sort.Strings(fields)
				if !reflect.DeepEqual(fields, tt.wantFields) {
					t.Fatalf("violations of %v, want %v", fields, tt.wantFields)
				}
				return
			}
			want := []domain.Event{limits.Defined{TenantID: id, Tenant: tt.tenant, User: tt.user, DefinedAt: now}}
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("Define = %#v, %v; want %#v", got, err, want)
			}
			p, err := limits.Rehydrate(got)
			if err != nil || p.Version() != 1 || !reflect.DeepEqual(p.Tenant(), tt.tenant) || !reflect.DeepEqual(p.User(), tt.user) {
				t.Fatalf("Rehydrate = %+v, %v", p, err)
			}
		})
	}
}

func TestSetCaps(t *testing.T) {
	id := uuid.MustParse("0b8f9c1e-2f57-4f4e-8a1b-6c2d1e3f4a5b")
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	p, _ := limits.Rehydrate([]domain.Event{limits.Defined{TenantID: id, Tenant: limits.Caps{PerDay: ptr(100)}, User: limits.Caps{PerDay: ptr(5)}, DefinedAt: now}})
	caps := limits.Caps{PerDay: ptr(50), PerWindow: ptr(200), WindowDays: 7}
	got, err := p.SetTenant(caps, now)
	if err != nil || !reflect.DeepEqual(got, []domain.Event{limits.TenantSet{TenantID: id, Caps: caps, SetAt: now}}) {
		t.Fatalf("SetTenant = %v, %v", got, err)
	}
	p.Apply(got[0])
	if again, err := p.SetTenant(limits.Caps{PerDay: ptr(50), PerWindow: ptr(200), WindowDays: 7}, now); err != nil || again != nil {
		t.Fatalf("setting the same caps again = %v, %v; want no events", again, err)
	}
	user, err := p.SetUser(limits.Caps{}, now)
	if err != nil || len(user) != 1 {
		t.Fatalf("SetUser(unbounded) = %v, %v", user, err)
	}
	p.Apply(user[0])
	if p.Version() != 3 || !p.Tenant().Equal(caps) || !p.User().Equal(limits.Caps{}) {
		t.Fatalf("policy after changes: v%d %+v %+v", p.Version(), p.Tenant(), p.User())
	}
	var ve *domain.ValidationError
	if _, err := p.SetUser(limits.Caps{PerWindow: ptr(1)}, now); !errors.As(err, &ve) || ve.Violations[0].Field != "windowDays" {
		t.Fatalf("SetUser without a window length: %v", err)
	}
}
