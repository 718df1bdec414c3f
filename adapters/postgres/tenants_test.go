package postgres_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/adapters/postgres"
	"github.com/incentives-platform/incentives/adapters/postgres/pgtest"
	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/limits"
	"github.com/incentives-platform/incentives/domain/tenant"
	"github.com/incentives-platform/incentives/projections"
)

func TestTenantsProjectionIsIdempotentAndCheckpointed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.MustOpen(t)
	p := projections.NewTenants(postgres.NewTenants(db))
	store := postgres.NewTenants(db)
	id := uuid.New()
	t0 := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	deliver := func(offset int64, version int64, e domain.Event, stream domain.StreamID) {
		t.Helper()
		err := p.Handle(ctx, projections.Delivery{
			Event:      domain.RecordedEvent{Stream: stream, Version: version, Event: e, Position: 100 + offset},
			Checkpoint: projections.Checkpoint{Projection: p.Name(), Topic: "ic.domain." + stream.Aggregate, Partition: 3, Offset: offset, Position: 100 + offset},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	deliver(0, 1, tenant.Created{TenantID: id, Name: "Acme", CreatedAt: t0}, tenant.Stream(id))
	deliver(1, 2, tenant.Suspended{TenantID: id, SuspendedAt: t0.Add(time.Minute)}, tenant.Stream(id))
	// The relay redelivers both after a crash.
	deliver(2, 1, tenant.Created{TenantID: id, Name: "Acme", CreatedAt: t0}, tenant.Stream(id))
	deliver(3, 2, tenant.Suspended{TenantID: id, SuspendedAt: t0.Add(time.Minute)}, tenant.Stream(id))

	got, err := store.Tenant(ctx, id)
	want := projections.TenantView{TenantID: id, Name: "Acme", Status: tenant.StatusSuspended, CreatedAt: t0, UpdatedAt: t0.Add(time.Minute), Version: 2}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Tenant = %+v, %v; want %+v", got, err, want)
	}
	cps, err := db.Checkpoints(ctx, p.Name())
	if err != nil || len(cps) != 1 || cps[0].Offset != 3 || cps[0].Position != 103 || cps[0].Partition != 3 {
		t.Fatalf("checkpoints = %+v, %v", cps, err)
	}

	perDay, total := int64(100), int64(0)
	caps := limits.Caps{PerDay: &perDay, PerWindow: &perDay, WindowDays: 7}
	deliver(4, 1, limits.Defined{TenantID: id, Tenant: caps, User: limits.Caps{Total: &total}, DefinedAt: t0}, limits.Stream(id))
	lv, err := store.Limits(ctx, id)
	if err != nil || !reflect.DeepEqual(lv.Tenant, caps) || lv.User.Total == nil || *lv.User.Total != 0 || lv.User.PerDay != nil || lv.Version != 1 {
		t.Fatalf("Limits = %+v, %v", lv, err)
	}

	if _, err := store.Tenant(ctx, uuid.New()); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("Tenant(unknown) error = %v, want ErrNotFound", err)
	}
	if _, err := store.Limits(ctx, uuid.New()); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("Limits(unknown) error = %v, want ErrNotFound", err)
	}
}

func TestListTenantsPages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.MustOpen(t)
	store := postgres.NewTenants(db)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ids []uuid.UUID
	for i := range 5 {
		id := uuid.New()
		ids = append(ids, id)
		err := store.UpdateTenant(ctx, projections.Checkpoint{Projection: "test"}, id, func(*projections.TenantView) *projections.TenantView {
			return &projections.TenantView{TenantID: id, Name: "T", Status: tenant.StatusActive, CreatedAt: t0.Add(time.Duration(i) * time.Hour), UpdatedAt: t0, Version: 1}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var seen []uuid.UUID
	key := projections.TenantKey{}
	for {
		page, err := store.ListTenants(ctx, key, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range page {
			seen = append(seen, v.TenantID)
		}
		if len(page) < 2 {
			break
		}
		last := page[len(page)-1]
		key = projections.TenantKey{CreatedAt: last.CreatedAt, ID: last.TenantID}
	}
	if !reflect.DeepEqual(seen, ids) {
		t.Fatalf("pages listed %v, want %v", seen, ids)
	}
}
