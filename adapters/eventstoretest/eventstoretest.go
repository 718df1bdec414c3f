// Package eventstoretest is the conformance suite every implementation of
// commands.EventStore must pass: the contract handlers rely on, checked the
// same way against each store.
package eventstoretest

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/commands"
	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/limits"
	"github.com/incentives-platform/incentives/domain/tenant"
)

var at = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func history(id uuid.UUID) []domain.Event {
	return []domain.Event{
		tenant.Created{TenantID: id, Name: "Acme", CreatedAt: at},
		tenant.Suspended{TenantID: id, Reason: "audit", SuspendedAt: at.Add(time.Minute)},
		tenant.Reactivated{TenantID: id, ReactivatedAt: at.Add(2 * time.Minute)},
	}
}

// Run runs the suite; open returns an empty store for one test.
func Run(t *testing.T, open func(t *testing.T) commands.EventStore) {
	ctx := context.Background()
	meta := domain.Metadata{CorrelationID: "req-1", Actor: "platform-admin:test"}

	t.Run("a missing stream is empty at version 0", func(t *testing.T) {
		events, version, err := open(t).Load(ctx, tenant.Stream(uuid.New()))
		if err != nil || len(events) != 0 || version != 0 {
			t.Fatalf("Load = %v, %d, %v; want nothing at version 0", events, version, err)
		}
	})

	t.Run("append then load returns the events in order", func(t *testing.T) {
		s, id := open(t), uuid.New()
		want := history(id)
		recs, err := s.Append(ctx, meta, domain.StreamAppend{Stream: tenant.Stream(id), Events: want[:1]})
		if err != nil {
			t.Fatal(err)
		}
		more, err := s.Append(ctx, meta, domain.StreamAppend{Stream: tenant.Stream(id), ExpectedVersion: 1, Events: want[1:]})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, more...)
		for i, r := range recs {
			v := int64(i + 1)
			if r.Version != v || r.Stream != tenant.Stream(id) || r.EventID != domain.EventID(r.Stream, v) || !reflect.DeepEqual(r.Event, want[i]) {
				t.Errorf("recorded[%d] = %+v", i, r)
			}
			if i > 0 && r.Position <= recs[i-1].Position {
				t.Errorf("positions not increasing within a stream: %d after %d", r.Position, recs[i-1].Position)
			}
		}
		got, version, err := s.Load(ctx, tenant.Stream(id))
		if err != nil || version != 3 || !reflect.DeepEqual(got, want) {
			t.Fatalf("Load = %v, %d, %v; want %v at version 3", got, version, err, want)
		}
	})

	t.Run("a stale or future expected version writes nothing", func(t *testing.T) {
		s, id := open(t), uuid.New()
		h := history(id)
		if _, err := s.Append(ctx, meta, domain.StreamAppend{Stream: tenant.Stream(id), Events: h[:2]}); err != nil {
			t.Fatal(err)
		}
		for _, expected := range []int64{0, 1, 3, 7} {
			_, err := s.Append(ctx, meta, domain.StreamAppend{Stream: tenant.Stream(id), ExpectedVersion: expected, Events: h[2:]})
			if !errors.Is(err, domain.ErrVersionConflict) {
				t.Errorf("Append at expected version %d (stream at 2): error = %v, want ErrVersionConflict", expected, err)
			}
		}
		if _, version, _ := s.Load(ctx, tenant.Stream(id)); version != 2 {
			t.Fatalf("version after refused appends = %d, want 2", version)
		}
	})

	t.Run("a multi-stream append is all or nothing", func(t *testing.T) {
		s, a, b := open(t), uuid.New(), uuid.New()
		if _, err := s.Append(ctx, meta, domain.StreamAppend{Stream: tenant.Stream(b), Events: history(b)[:1]}); err != nil {
			t.Fatal(err)
		}
		_, err := s.Append(ctx, meta,
			domain.StreamAppend{Stream: tenant.Stream(a), Events: history(a)[:1]},
			domain.StreamAppend{Stream: tenant.Stream(b), ExpectedVersion: 0, Events: history(b)[:1]},
		)
		if !errors.Is(err, domain.ErrVersionConflict) {
			t.Fatalf("error = %v, want ErrVersionConflict", err)
		}
		if _, version, _ := s.Load(ctx, tenant.Stream(a)); version != 0 {
			t.Fatalf("stream a has version %d after a refused atomic append, want 0", version)
		}
		recs, err := s.Append(ctx, meta,
			domain.StreamAppend{Stream: tenant.Stream(a), Events: history(a)[:1]},
			domain.StreamAppend{Stream: limits.Stream(a), Events: []domain.Event{limits.Defined{TenantID: a, DefinedAt: at}}},
		)
		if err != nil || len(recs) != 2 {
			t.Fatalf("two-stream append = %d events, %v", len(recs), err)
		}
	})

	t.Run("of concurrent writers at one version exactly one wins", func(t *testing.T) {
		s, id := open(t), uuid.New()
		if _, err := s.Append(ctx, meta, domain.StreamAppend{Stream: tenant.Stream(id), Events: history(id)[:1]}); err != nil {
			t.Fatal(err)
		}
		const writers = 8
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.Append(ctx, meta, domain.StreamAppend{Stream: tenant.Stream(id), ExpectedVersion: 1, Events: history(id)[1:2]})
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		wins := 0
		for err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, domain.ErrVersionConflict):
				t.Errorf("losing writer got %v, want ErrVersionConflict", err)
			}
		}
		if _, version, _ := s.Load(ctx, tenant.Stream(id)); wins != 1 || version != 2 {
			t.Fatalf("%d writers won and the stream is at version %d; want 1 and 2", wins, version)
		}
	})

	t.Run("an empty append records nothing", func(t *testing.T) {
		recs, err := open(t).Append(ctx, meta, domain.StreamAppend{Stream: tenant.Stream(uuid.New())})
		if err != nil || len(recs) != 0 {
			t.Fatalf("Append(no events) = %v, %v", recs, err)
		}
	})
}
