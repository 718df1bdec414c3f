package commands_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/adapters/memstore"
	"github.com/incentives-platform/incentives/commands"
	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/limits"
)

func TestSetLimits(t *testing.T) {
	ctx := commands.WithOrigin(context.Background(), commands.Origin{Actor: "tenant-admin:ana", CorrelationID: "req-9"})
	v := func(n int64) *int64 { return &n }
	store, rec := memstore.New(), &recorder{}
	app := newApp(store, rec)
	id := uuid.New()
	if _, err := app.CreateTenant.Handle(ctx, commands.CreateTenant{TenantID: id, Name: "Acme"}); err != nil {
		t.Fatal(err)
	}
	// A suspended tenant's limits can still be changed.
	if _, err := app.SuspendTenant.Handle(ctx, commands.SuspendTenant{TenantID: id}); err != nil {
		t.Fatal(err)
	}
	defaults := commands.DefaultTenantDefaults()

	global := limits.Caps{PerDay: v(500), PerWindow: v(2000), WindowDays: 7}
	p, err := app.SetTenantLimits.Handle(ctx, commands.SetTenantLimits{TenantID: id, Caps: global, IfMatch: v(1)})
	if err != nil || p.Version() != 2 || !p.Tenant().Equal(global) || !p.User().Equal(defaults.User) || !p.UpdatedAt().Equal(now) {
		t.Fatalf("SetTenantLimits = %+v, %v", p, err)
	}
	perUser := limits.Caps{Total: v(0)}
	p, err = app.SetUserLimits.Handle(ctx, commands.SetUserLimits{TenantID: id, Caps: perUser})
	if err != nil || p.Version() != 3 || !p.Tenant().Equal(global) || !p.User().Equal(perUser) {
		t.Fatalf("SetUserLimits = %+v, %v", p, err)
	}
	recorded := store.Recorded(limits.Stream(id))
	if len(recorded) != 3 || recorded[2].Metadata != (domain.Metadata{TenantID: id, CorrelationID: "req-9", Actor: "tenant-admin:ana"}) {
		t.Fatalf("recorded %+v", recorded)
	}
	if _, ok := recorded[1].Event.(limits.TenantSet); !ok {
		t.Fatalf("second event %T, want limits.TenantSet", recorded[1].Event)
	}

	count := store.Count()
	// The same caps again: nothing recorded, the current state answered, even
	// with If-Match at the current version.
	p, err = app.SetUserLimits.Handle(ctx, commands.SetUserLimits{TenantID: id, Caps: perUser, IfMatch: v(3)})
	if err != nil || p.Version() != 3 || !p.User().Equal(perUser) {
		t.Fatalf("SetUserLimits(same caps) = %+v, %v", p, err)
	}
	tests := []struct {
		name string
		run  func() error
		want func(error) bool
	}{
		{"stale If-Match", func() error {
			_, err := app.SetTenantLimits.Handle(ctx, commands.SetTenantLimits{TenantID: id, Caps: limits.Caps{}, IfMatch: v(2)})
			return err
		}, func(err error) bool { return errors.Is(err, domain.ErrVersionConflict) }},
		{"unknown tenant", func() error {
			_, err := app.SetUserLimits.Handle(ctx, commands.SetUserLimits{TenantID: uuid.New(), Caps: limits.Caps{}})
			return err
		}, func(err error) bool { return errors.Is(err, domain.ErrNotFound) }},
		{"unknown tenant with If-Match", func() error {
			_, err := app.SetTenantLimits.Handle(ctx, commands.SetTenantLimits{TenantID: uuid.New(), IfMatch: v(1)})
			return err
		}, func(err error) bool { return errors.Is(err, domain.ErrNotFound) }},
		{"negative cap", func() error {
			_, err := app.SetTenantLimits.Handle(ctx, commands.SetTenantLimits{TenantID: id, Caps: limits.Caps{PerDay: v(-1)}})
			return err
		}, func(err error) bool { var ve *domain.ValidationError; return errors.As(err, &ve) }},
	}
	for _, tt := range tests {
		if err := tt.run(); !tt.want(err) {
			t.Errorf("%s: error %v", tt.name, err)
		}
	}
	if store.Count() != count {
		t.Fatalf("refused and unchanged commands recorded %d events", store.Count()-count)
	}
}
