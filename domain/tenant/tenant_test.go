package tenant_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/tenant"
)

var (
	id  = uuid.MustParse("6f1d7f5e-4a55-4d8a-9a45-0b1f3b3e2a11")
	t0  = time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	now = t0.Add(time.Hour)
)

func TestCreate(t *testing.T) {
	tests := []struct {
		name      string
		id        uuid.UUID
		input     string
		want      []domain.Event
		wantField string
	}{
		{"trims the name", id, "  Acme  ", []domain.Event{tenant.Created{TenantID: id, Name: "Acme", CreatedAt: now}}, ""},
		{"unicode name at the limit", id, strings.Repeat("é", tenant.MaxNameLength), []domain.Event{tenant.Created{TenantID: id, Name: strings.Repeat("é", tenant.MaxNameLength), CreatedAt: now}}, ""},
		{"empty name", id, "", nil, "name"},
		{"blank name", id, " \t ", nil, "name"},
		{"too long", id, strings.Repeat("x", tenant.MaxNameLength+1), nil, "name"},
		{"control character", id, "Ac\x00me", nil, "name"},
		{"nil id", uuid.Nil, "Acme", nil, "tenantId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tenant.Create(tt.id, tt.input, now)
			if tt.wantField != "" {
				var ve *domain.ValidationError
				if !errors.As(err, &ve) || ve.Violations[0].Field != tt.wantField {
					t.Fatalf("Create(%q) error = %v, want a validation error of %s", tt.input, err, tt.wantField)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Create(%q) = %#v, %v, want %#v", tt.input, got, err, tt.want)
			}
		})
	}
}

func TestLifecycle(t *testing.T) {
	created := tenant.Created{TenantID: id, Name: "Acme", CreatedAt: t0}
	suspended := tenant.Suspended{TenantID: id, Reason: "unpaid invoice", SuspendedAt: t0}
	reactivated := tenant.Reactivated{TenantID: id, ReactivatedAt: t0}
	suspend := func(reason string) func(*tenant.Tenant) ([]domain.Event, error) {
		return func(tn *tenant.Tenant) ([]domain.Event, error) { return tn.Suspend(reason, now) }
	}
	reactivate := func(tn *tenant.Tenant) ([]domain.Event, error) { return tn.Reactivate(now) }

	tests := []struct {
		name    string
		given   []domain.Event
		when    func(*tenant.Tenant) ([]domain.Event, error)
		then    []domain.Event
		wantErr error
	}{
		{"suspend an active tenant", []domain.Event{created}, suspend(" unpaid "),
			[]domain.Event{tenant.Suspended{TenantID: id, Reason: "unpaid", SuspendedAt: now}}, nil},
		{"suspend twice", []domain.Event{created, suspended}, suspend("again"), nil, domain.ErrInvalidTransition},
		{"reactivate a suspended tenant", []domain.Event{created, suspended}, reactivate,
			[]domain.Event{tenant.Reactivated{TenantID: id, ReactivatedAt: now}}, nil},
		{"reactivate an active tenant", []domain.Event{created}, reactivate, nil, domain.ErrInvalidTransition},
		{"suspend after a reactivation", []domain.Event{created, suspended, reactivated}, suspend(""),
			[]domain.Event{tenant.Suspended{TenantID: id, SuspendedAt: now}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tn, err := tenant.Rehydrate(tt.given)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tt.when(tn)
			if !errors.Is(err, tt.wantErr) || !reflect.DeepEqual(got, tt.then) {
				t.Fatalf("got %#v, %v; want %#v, %v", got, err, tt.then, tt.wantErr)
			}
		})
	}
}

func TestSuspendRefusesOverlongReason(t *testing.T) {
	tn, _ := tenant.Rehydrate([]domain.Event{tenant.Created{TenantID: id, Name: "Acme", CreatedAt: t0}})
	_, err := tn.Suspend(strings.Repeat("x", tenant.MaxReasonLength+1), now)
	var ve *domain.ValidationError
	if !errors.As(err, &ve) || ve.Violations[0].Field != "reason" {
		t.Fatalf("Suspend(long reason) error = %v, want a validation error of reason", err)
	}
}

func TestRehydrateTracksStateAndVersion(t *testing.T) {
	t1 := t0.Add(time.Minute)
	tn, err := tenant.Rehydrate([]domain.Event{
		tenant.Created{TenantID: id, Name: "Acme", CreatedAt: t0},
		tenant.Suspended{TenantID: id, SuspendedAt: t1},
	})
	if err != nil {
		t.Fatal(err)
	}
	if tn.ID() != id || tn.Name() != "Acme" || tn.Status() != tenant.StatusSuspended ||
		tn.Version() != 2 || !tn.CreatedAt().Equal(t0) || !tn.UpdatedAt().Equal(t1) {
		t.Fatalf("rehydrated %+v", tn)
	}
	if _, err := tenant.Rehydrate(nil); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("Rehydrate(nil) error = %v, want ErrNotFound", err)
	}
}
