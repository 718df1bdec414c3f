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

// Given a defined policy, setting one scope's caps records that scope's event
// (or nothing, or a validation error) and leaves the other scope alone.
func TestSetTenantAndSetUser(t *testing.T) {
	id := uuid.MustParse("0b8f9c1e-2f57-4f4e-8a1b-6c2d1e3f4a5b")
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	t1 := t0.Add(time.Hour)
	given := limits.Defined{TenantID: id, Tenant: limits.Caps{PerDay: ptr(100)}, User: limits.Caps{PerDay: ptr(5), Total: ptr(50)}, DefinedAt: t0}
	type scope int
	const (
		global scope = iota
		user
	)
	tests := []struct {
		name       string
		scope      scope
		caps       limits.Caps
		want       domain.Event // nil: nothing recorded
		wantFields []string     // set: a validation error naming these fields
	}{
		{"tenant: new daily cap", global, limits.Caps{PerDay: ptr(200)}, limits.TenantSet{TenantID: id, Caps: limits.Caps{PerDay: ptr(200)}, SetAt: t1}, nil},
		{"tenant: every cap lifted", global, limits.Caps{}, limits.TenantSet{TenantID: id, SetAt: t1}, nil},
		{"tenant: frozen", global, limits.Caps{PerDay: ptr(0), Total: ptr(0)}, limits.TenantSet{TenantID: id, Caps: limits.Caps{PerDay: ptr(0), Total: ptr(0)}, SetAt: t1}, nil},
		{"tenant: window", global, limits.Caps{PerWindow: ptr(700), WindowDays: 7}, limits.TenantSet{TenantID: id, Caps: limits.Caps{PerWindow: ptr(700), WindowDays: 7}, SetAt: t1}, nil},
		{"tenant: the caps it has", global, limits.Caps{PerDay: ptr(100)}, nil, nil},
		{"tenant: the user scope's caps", global, limits.Caps{PerDay: ptr(5), Total: ptr(50)}, limits.TenantSet{TenantID: id, Caps: limits.Caps{PerDay: ptr(5), Total: ptr(50)}, SetAt: t1}, nil},
		{"tenant: negative caps", global, limits.Caps{PerDay: ptr(-1), PerWindow: ptr(-2), WindowDays: 1, Total: ptr(-3)}, nil, []string{"maxPerDay", "maxPerWindow", "maxTotal"}},
		{"tenant: window without length", global, limits.Caps{PerWindow: ptr(1)}, nil, []string{"windowDays"}},
		{"tenant: length without window", global, limits.Caps{WindowDays: 7}, nil, []string{"windowDays"}},
		{"user: window too long", user, limits.Caps{PerWindow: ptr(1), WindowDays: limits.MaxWindowDays + 1}, nil, []string{"windowDays"}},
		{"user: longest window", user, limits.Caps{PerWindow: ptr(1), WindowDays: limits.MaxWindowDays}, limits.UserSet{TenantID: id, Caps: limits.Caps{PerWindow: ptr(1), WindowDays: limits.MaxWindowDays}, SetAt: t1}, nil},
		{"user: the caps it has", user, limits.Caps{PerDay: ptr(5), Total: ptr(50)}, nil, nil},
		{"user: one cap dropped", user, limits.Caps{PerDay: ptr(5)}, limits.UserSet{TenantID: id, Caps: limits.Caps{PerDay: ptr(5)}, SetAt: t1}, nil},
		{"user: negative total", user, limits.Caps{Total: ptr(-1)}, nil, []string{"maxTotal"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := limits.Rehydrate([]domain.Event{given})
			if err != nil {
				t.Fatal(err)
			}
			set := p.SetTenant
			if tt.scope == user {
				set = p.SetUser
			}
			got, err := set(tt.caps, t1)
			if tt.wantFields != nil {
				var ve *domain.ValidationError
				if !errors.As(err, &ve) || got != nil {
					t.Fatalf("set(%+v) = %v, %v; want a validation error", tt.caps, got, err)
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
			if err != nil {
				t.Fatalf("set(%+v) error = %v", tt.caps, err)
			}
			if tt.want == nil {
				if len(got) != 0 {
					t.Fatalf("set(%+v) = %v; want no events", tt.caps, got)
				}
				return
			}
			if !reflect.DeepEqual(got, []domain.Event{tt.want}) {
				t.Fatalf("set(%+v) = %#v; want %#v", tt.caps, got, tt.want)
			}
			p.Apply(got[0])
			wantTenant, wantUser := given.Tenant, given.User
			if tt.scope == global {
				wantTenant = tt.caps
			} else {
				wantUser = tt.caps
			}
			if !p.Tenant().Equal(wantTenant) || !p.User().Equal(wantUser) || p.Version() != 2 || !p.UpdatedAt().Equal(t1) {
				t.Fatalf("policy after the event: tenant %+v user %+v v%d at %v", p.Tenant(), p.User(), p.Version(), p.UpdatedAt())
			}
		})
	}
}

func TestRehydrateTracksTheLastChange(t *testing.T) {
	id := uuid.New()
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	history := []domain.Event{
		limits.Defined{TenantID: id, DefinedAt: t0},
		limits.UserSet{TenantID: id, Caps: limits.Caps{PerDay: ptr(3)}, SetAt: t0.Add(time.Minute)},
		limits.TenantSet{TenantID: id, Caps: limits.Caps{Total: ptr(9)}, SetAt: t0.Add(2 * time.Minute)},
	}
	p, err := limits.Rehydrate(history)
	if err != nil {
		t.Fatal(err)
	}
	if p.TenantID() != id || p.Version() != 3 || !p.UpdatedAt().Equal(t0.Add(2*time.Minute)) ||
		!p.Tenant().Equal(limits.Caps{Total: ptr(9)}) || !p.User().Equal(limits.Caps{PerDay: ptr(3)}) {
		t.Fatalf("Rehydrate = %+v", p)
	}
	if _, err := limits.Rehydrate(nil); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("Rehydrate(nothing) error = %v, want ErrNotFound", err)
	}
}
