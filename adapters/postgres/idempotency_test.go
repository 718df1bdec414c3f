package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	httpapi "github.com/incentives-platform/incentives/adapters/http"
	"github.com/incentives-platform/incentives/adapters/postgres"
	"github.com/incentives-platform/incentives/adapters/postgres/pgtest"
)

func TestIdempotencyStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.MustOpen(t)
	store := postgres.NewIdempotency(db)
	t0 := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	claimAt := func(key httpapi.IdempotencyKey, at time.Time) httpapi.IdempotencyClaim {
		return httpapi.IdempotencyClaim{IdempotencyKey: key, Claim: uuid.New(), Now: at, LockedUntil: at.Add(time.Minute), ExpiresAt: at.Add(24 * time.Hour)}
	}
	mustClaim := func(c httpapi.IdempotencyClaim, want bool) httpapi.IdempotentRecord {
		t.Helper()
		rec, claimed, err := store.Claim(ctx, c)
		if err != nil || claimed != want {
			t.Fatalf("Claim(%s at %v) = %+v, %v, %v; want claimed %v", c.Key, c.Now, rec, claimed, err, want)
		}
		return rec
	}
	answer := httpapi.IdempotentRecord{RequestHash: []byte("0123456789abcdef0123456789abcdef"), RequestBytes: 17, Status: 201,
		Header: http.Header{"Content-Type": {"application/json"}, "Etag": {`"1"`}, "Location": {"/api/v1/tenants/x"}}, Body: []byte(`{"tenantId":"x"}` + "\n")}

	t.Run("claim, wait, complete, replay", func(t *testing.T) {
		key := httpapi.IdempotencyKey{Scope: "platform-admin:" + uuid.Nil.String() + ":ops", Key: "k-" + uuid.NewString()}
		first := claimAt(key, t0)
		mustClaim(first, true)
		if rec := mustClaim(claimAt(key, t0.Add(time.Second)), false); !rec.Pending {
			t.Fatalf("a claimed key reads %+v, want pending", rec)
		}
		// Another caller's key of the same name is its own.
		mustClaim(claimAt(httpapi.IdempotencyKey{Scope: "tenant-admin:" + uuid.NewString() + ":ana", Key: key.Key}, t0), true)

		if err := store.Complete(ctx, key, uuid.New(), answer); !errors.Is(err, httpapi.ErrIdempotencyClaimLost) {
			t.Fatalf("Complete by a request that holds no claim: %v", err)
		}
		if err := store.Complete(ctx, key, first.Claim, answer); err != nil {
			t.Fatal(err)
		}
		if err := store.Complete(ctx, key, first.Claim, answer); !errors.Is(err, httpapi.ErrIdempotencyClaimLost) {
			t.Fatalf("Complete twice: %v", err)
		}
		// A completed answer is not released by its request's late cleanup.
		if err := store.Release(ctx, key, first.Claim); err != nil {
			t.Fatal(err)
		}
		got := mustClaim(claimAt(key, t0.Add(23*time.Hour)), false)
		if !reflect.DeepEqual(got, answer) {
			t.Fatalf("replayed record %+v, want %+v", got, answer)
		}
		// After a day the key is forgotten and runs anew.
		mustClaim(claimAt(key, t0.Add(24*time.Hour)), true)
	})

	t.Run("released keys run again", func(t *testing.T) {
		key := httpapi.IdempotencyKey{Scope: "s", Key: "released"}
		c := claimAt(key, t0)
		mustClaim(c, true)
		if err := store.Release(ctx, key, uuid.New()); err != nil {
			t.Fatal(err)
		}
		mustClaim(claimAt(key, t0), false) // someone else's release changed nothing
		if err := store.Release(ctx, key, c.Claim); err != nil {
			t.Fatal(err)
		}
		mustClaim(claimAt(key, t0), true)
	})

	t.Run("an abandoned claim is taken over", func(t *testing.T) {
		key := httpapi.IdempotencyKey{Scope: "s", Key: "abandoned"}
		dead := claimAt(key, t0)
		mustClaim(dead, true)
		mustClaim(claimAt(key, dead.LockedUntil.Add(-time.Millisecond)), false)
		heir := claimAt(key, dead.LockedUntil)
		mustClaim(heir, true)
		if err := store.Complete(ctx, key, dead.Claim, answer); !errors.Is(err, httpapi.ErrIdempotencyClaimLost) {
			t.Fatalf("the abandoned request completing: %v", err)
		}
		if err := store.Release(ctx, key, dead.Claim); err != nil {
			t.Fatal(err)
		}
		if err := store.Complete(ctx, key, heir.Claim, answer); err != nil {
			t.Fatalf("the heir completing: %v", err)
		}
	})

	t.Run("concurrent claims: one wins", func(t *testing.T) {
		key := httpapi.IdempotencyKey{Scope: "s", Key: "raced"}
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			wins int
		)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rec, claimed, err := store.Claim(ctx, claimAt(key, t0))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					t.Error(err)
				case claimed:
					wins++
				case !rec.Pending:
					t.Errorf("a loser read %+v, want pending", rec)
				}
			}()
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("%d claims won, want 1", wins)
		}
	})
}

func TestIdempotencyStorePrunesExpiredKeysOnClaim(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.MustOpen(t)
	store := postgres.NewIdempotency(db)
	t0 := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	for i := range 150 {
		c := httpapi.IdempotencyClaim{IdempotencyKey: httpapi.IdempotencyKey{Scope: "s", Key: fmt.Sprint("old-", i)}, Claim: uuid.New(),
			Now: t0, LockedUntil: t0.Add(time.Minute), ExpiresAt: t0.Add(time.Hour)}
		if _, claimed, err := store.Claim(ctx, c); err != nil || !claimed {
			t.Fatalf("claim %d: %v %v", i, claimed, err)
		}
	}
	count := func() (n int) {
		t.Helper()
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM idempotency_key`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	later := t0.Add(2 * time.Hour)
	for i, want := range []int{51, 2} { // each new key deletes up to 100 expired ones
		c := httpapi.IdempotencyClaim{IdempotencyKey: httpapi.IdempotencyKey{Scope: "s", Key: fmt.Sprint("new-", i)}, Claim: uuid.New(),
			Now: later, LockedUntil: later.Add(time.Minute), ExpiresAt: later.Add(time.Hour)}
		if _, claimed, err := store.Claim(ctx, c); err != nil || !claimed {
			t.Fatalf("claim new-%d: %v %v", i, claimed, err)
		}
		if n := count(); n != want {
			t.Fatalf("after claiming new-%d the table holds %d keys, want %d", i, n, want)
		}
	}
}
