package ws_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/adapters/auth"
	"github.com/incentives-platform/incentives/adapters/ws"
	"github.com/incentives-platform/incentives/domain/engine"
)

// A client reconnecting with since gets what it missed, then live frames:
// an incentive both read by the catch-up and delivered live meanwhile is
// sent once, and one published during the catch-up is not lost.
func TestCatchUpThenLiveWithNoGapAndNoDuplicate(t *testing.T) {
	t.Parallel()
	tenant := uuid.New()
	a, b, c := newIncentive(tenant, "u1", 0), newIncentive(tenant, "u1", 1), newIncentive(tenant, "u1", 2)
	h := &history{items: []engine.Incentive{a, b, c}, gate: make(chan struct{}), asked: make(chan string, 1)}
	s := startServer(t, ws.Config{}, h)
	conn := s.dial(s.token(auth.RoleUser, tenant, "u1"), "since="+a.ID.String())
	if q := <-h.asked; q != "after "+a.ID.String() {
		t.Fatalf("catch-up asked %q", q)
	}
	// While the catch-up reads: c (which it reads too) and d (committed
	// after its snapshot) arrive live.
	d := newIncentive(tenant, "u1", 3)
	s.srv.Deliver(c)
	s.srv.Deliver(d)
	close(h.gate)
	expectFrames(t, conn, b, c, d)

	// Kafka's late copy of c is dropped; the stream goes on.
	e := newIncentive(tenant, "u1", 4)
	s.srv.Deliver(c)
	s.srv.Deliver(e)
	expectFrames(t, conn, e)
	waitFor(t, "4 frames counted, 2 of them catch-up", func() bool {
		st := s.srv.Stats()
		return st.CatchUpFrames == 2 && st.FramesSent == 4
	})
}

func TestCatchUpSinceATime(t *testing.T) {
	t.Parallel()
	tenant := uuid.New()
	a, b, c := newIncentive(tenant, "u1", 0), newIncentive(tenant, "u1", 1), newIncentive(tenant, "u1", 1)
	h := &history{items: []engine.Incentive{a, b, c}, asked: make(chan string, 1)}
	s := startServer(t, ws.Config{}, h)
	since := b.IssuedAt.Format(time.RFC3339Nano)
	conn := s.dial(s.token(auth.RoleUser, tenant, "u1"), "since="+since)
	if q := <-h.asked; q != "since "+since {
		t.Fatalf("catch-up asked %q", q)
	}
	expectFrames(t, conn, b, c)

	// Another zone names the same instant; an unescaped + (a space in a
	// query) is forgiven.
	other := s.dial(s.token(auth.RoleUser, tenant, "u1"), "since="+b.IssuedAt.In(time.FixedZone("IST", 19800)).Format(time.RFC3339Nano))
	if q := <-h.asked; q != "since "+since {
		t.Fatalf("catch-up asked %q", q)
	}
	expectFrames(t, other, b, c)
}

// More missed than CatchUpLimit: that many in order, then 4000 naming the
// place to resume from; resuming there gets the rest.
func TestCatchUpInPages(t *testing.T) {
	t.Parallel()
	tenant := uuid.New()
	var items []engine.Incentive
	for i := range 6 {
		items = append(items, newIncentive(tenant, "u1", i))
	}
	s := startServer(t, ws.Config{CatchUpLimit: 2}, &history{items: items})
	tok := s.token(auth.RoleUser, tenant, "u1")
	since := items[0].ID
	var got []engine.Incentive
	for page := 0; ; page++ {
		conn := s.dial(tok, "since="+since.String())
		want := items[1+2*page : min(3+2*page, len(items))]
		expectFrames(t, conn, want...)
		got = append(got, want...)
		if len(got) == len(items)-1 {
			break
		}
		ce := expectClose(t, conn, ws.CloseCatchUpIncomplete)
		last := want[len(want)-1].ID
		if !strings.HasSuffix(ce.Text, "since="+last.String()) {
			t.Fatalf("close reason %q does not say since=%s", ce.Text, last)
		}
		since = last
	}
	if len(got) != 5 {
		t.Fatalf("caught up %d, want 5", len(got))
	}
}

// A catch-up that cannot be read closes with 1011: the client retries.
func TestCatchUpFailureClosesWith1011(t *testing.T) {
	t.Parallel()
	s := startServer(t, ws.Config{}, &history{err: errors.New("database down")})
	conn := s.dial(s.token(auth.RoleUser, uuid.New(), "u1"), "since="+uuid.NewString())
	expectClose(t, conn, ws.CloseInternalError)
	if !strings.Contains(s.log.String(), "database down") {
		t.Fatalf("the failure is not logged:\n%s", s.log.String())
	}
}

// An id that is not in the user's history replays nothing; live frames flow.
func TestCatchUpFromAnUnknownIDReplaysNothing(t *testing.T) {
	t.Parallel()
	tenant := uuid.New()
	s := startServer(t, ws.Config{}, &history{items: []engine.Incentive{newIncentive(tenant, "u1", 0)}})
	conn := s.dial(s.token(auth.RoleUser, tenant, "u1"), "since="+uuid.NewString())
	waitFor(t, "connected", func() bool { return s.srv.Connections() == 1 })
	live := newIncentive(tenant, "u1", 1)
	s.srv.Deliver(live)
	expectFrames(t, conn, live)
}

// Without a history, since is refused rather than ignored: ignoring it
// would be a silent gap.
func TestSinceWithoutHistoryIsRefused(t *testing.T) {
	t.Parallel()
	s := startServer(t, ws.Config{}, nil)
	tok := s.token(auth.RoleUser, uuid.New(), "u1")
	_, resp, err := s.dialWith(nil, map[string][]string{"Authorization": {"Bearer " + tok}}, "since="+uuid.NewString())
	if err == nil || resp == nil || resp.StatusCode != 400 {
		t.Fatalf("dial: %v (%s), want 400", err, describe(resp))
	}
	checkProblem(t, resp, 400, "malformed-request", "no history")
}
