package commands_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/adapters/jsonschema"
	"github.com/incentives-platform/incentives/adapters/memstore"
	"github.com/incentives-platform/incentives/commands"
	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/limits"
	"github.com/incentives-platform/incentives/domain/tenant"
)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

type recorder struct {
	mu  sync.Mutex
	got []string
}

func (r *recorder) ObserveCommand(name string, _ time.Duration, outcome string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, name+":"+outcome)
}

var now = time.Date(2026, 11, 25, 9, 30, 0, 0, time.UTC)

var ruleSchema = func() *jsonschema.RuleSchema {
	s, err := jsonschema.LoadRuleSchema()
	if err != nil {
		panic(err)
	}
	return s
}()

func newApp(store commands.EventStore, rec commands.Recorder) commands.Application {
	return commands.NewApplication(commands.Dependencies{
		Store: store, Clock: fixedClock{now}, TenantDefaults: commands.DefaultTenantDefaults(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Recorder: rec, RuleSchema: ruleSchema,
	})
}

func TestCreateTenantRecordsTenantAndDefaultLimitsWithOrigin(t *testing.T) {
	store, rec := memstore.New(), &recorder{}
	app := newApp(store, rec)
	id := uuid.New()
	ctx := commands.WithOrigin(context.Background(), commands.Origin{Actor: "platform-admin:ops", CorrelationID: "req-7"})

	got, err := app.CreateTenant.Handle(ctx, commands.CreateTenant{TenantID: id, Name: "Acme"})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID() != id || got.Name() != "Acme" || got.Version() != 1 || got.Status() != tenant.StatusActive {
		t.Fatalf("created %+v", got)
	}
	wantMeta := domain.Metadata{TenantID: id, CorrelationID: "req-7", Actor: "platform-admin:ops"}
	tenantEvents, limitEvents := store.Recorded(tenant.Stream(id)), store.Recorded(limits.Stream(id))
	if len(tenantEvents) != 1 || len(limitEvents) != 1 || tenantEvents[0].Metadata != wantMeta || limitEvents[0].Metadata != wantMeta {
		t.Fatalf("recorded %+v and %+v", tenantEvents, limitEvents)
	}
	defaults := commands.DefaultTenantDefaults()
	if d := limitEvents[0].Event.(limits.Defined); !reflect.DeepEqual(d.Tenant, defaults.Tenant) || !reflect.DeepEqual(d.User, defaults.User) || !d.DefinedAt.Equal(now) {
		t.Fatalf("default limits %+v", d)
	}

	// Creating the same id again is a conflict and records nothing.
	if _, err := app.CreateTenant.Handle(ctx, commands.CreateTenant{TenantID: id, Name: "Again"}); !errors.Is(err, domain.ErrVersionConflict) {
		t.Fatalf("second create: %v, want ErrVersionConflict", err)
	}
	if _, err := app.CreateTenant.Handle(ctx, commands.CreateTenant{TenantID: uuid.New(), Name: ""}); err == nil {
		t.Fatal("created a tenant without a name")
	}
	if store.Count() != 2 {
		t.Fatalf("store holds %d events, want 2", store.Count())
	}
	if want := []string{"CreateTenant:ok", "CreateTenant:rejected", "CreateTenant:rejected"}; !reflect.DeepEqual(rec.got, want) {
		t.Fatalf("recorded outcomes %v, want %v", rec.got, want)
	}
}

func TestLifecycleHonoursIfMatch(t *testing.T) {
	store := memstore.New()
	app := newApp(store, &recorder{})
	ctx := context.Background()
	id := uuid.New()
	if _, err := app.CreateTenant.Handle(ctx, commands.CreateTenant{TenantID: id, Name: "Acme"}); err != nil {
		t.Fatal(err)
	}
	v := func(n int64) *int64 { return &n }
	if _, err := app.SuspendTenant.Handle(ctx, commands.SuspendTenant{TenantID: id, IfMatch: v(2)}); !errors.Is(err, domain.ErrVersionConflict) {
		t.Fatalf("suspend at a version the tenant never had: %v", err)
	}
	s, err := app.SuspendTenant.Handle(ctx, commands.SuspendTenant{TenantID: id, Reason: "audit", IfMatch: v(1)})
	if err != nil || s.Status() != tenant.StatusSuspended || s.Version() != 2 {
		t.Fatalf("suspend = %+v, %v", s, err)
	}
	if _, err := app.ReactivateTenant.Handle(ctx, commands.ReactivateTenant{TenantID: id, IfMatch: v(1)}); !errors.Is(err, domain.ErrVersionConflict) {
		t.Fatalf("reactivate with a stale version: %v", err)
	}
	if _, err := app.ReactivateTenant.Handle(ctx, commands.ReactivateTenant{TenantID: uuid.New()}); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("reactivate an unknown tenant: %v", err)
	}
}

// racingStore lets another writer win the first append of each stream.
type racingStore struct {
	*memstore.Store
	once  sync.Once
	rival func()
}

func (s *racingStore) Append(ctx context.Context, meta domain.Metadata, appends ...domain.StreamAppend) ([]domain.RecordedEvent, error) {
	s.once.Do(s.rival)
	return s.Store.Append(ctx, meta, appends...)
}

func TestUnpinnedCommandsRetryAfterLosingARace(t *testing.T) {
	ctx := context.Background()
	id := uuid.New()
	mem := memstore.New()
	if _, err := newApp(mem, &recorder{}).CreateTenant.Handle(ctx, commands.CreateTenant{TenantID: id, Name: "Acme"}); err != nil {
		t.Fatal(err)
	}
	// Between our load and our append, someone else suspends and reactivates.
	store := &racingStore{Store: mem}
	store.rival = func() {
		other := newApp(mem, &recorder{})
		if _, err := other.SuspendTenant.Handle(ctx, commands.SuspendTenant{TenantID: id}); err != nil {
			t.Fatal(err)
		}
		if _, err := other.ReactivateTenant.Handle(ctx, commands.ReactivateTenant{TenantID: id}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := newApp(store, &recorder{}).SuspendTenant.Handle(ctx, commands.SuspendTenant{TenantID: id, Reason: "mine"})
	if err != nil || got.Version() != 4 || got.Status() != tenant.StatusSuspended {
		t.Fatalf("suspend after losing a race = %+v, %v; want version 4, suspended", got, err)
	}
}

func TestOutcome(t *testing.T) {
	for err, want := range map[error]string{
		nil:                       commands.OutcomeOK,
		&domain.ValidationError{}: commands.OutcomeRejected,
		domain.ErrNotFound:        commands.OutcomeRejected,
		fmt.Errorf("x: %w", domain.ErrVersionConflict): commands.OutcomeRejected,
		domain.ErrInvalidTransition:                    commands.OutcomeRejected,
		errors.New("connection refused"):               commands.OutcomeFailed,
	} {
		if got := commands.Outcome(err); got != want {
			t.Errorf("Outcome(%v) = %s, want %s", err, got, want)
		}
	}
}
