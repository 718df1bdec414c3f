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
