package ws_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"github.com/incentives-platform/incentives/adapters/auth"
	"github.com/incentives-platform/incentives/adapters/ws"
	"github.com/incentives-platform/incentives/domain/engine"
)

// Every connection of the user gets each notification once, in order; the
// user's namesake in another tenant and other users get none of them.
func TestDeliveryToEveryConnectionOfTheUserOnly(t *testing.T) {
	t.Parallel()
	s := startServer(t, ws.Config{}, nil)
	acme, globex := uuid.New(), uuid.New()
	tok := s.token(auth.RoleUser, acme, "u1")
	mine := []*websocket.Conn{
		s.dial(tok, ""),
		s.dial(tok, ""),
		func() *websocket.Conn {
			c, resp, err := s.dialWith(nil, http.Header{"Sec-WebSocket-Protocol": {"access_token, " + tok}}, "")
			if err != nil {
				t.Fatalf("%v (%s)", err, describe(resp))
			}
			return c
		}(),
	}
	colleague := s.dial(s.token(auth.RoleUser, acme, "u2"), "")
	namesake := s.dial(s.token(auth.RoleUser, globex, "u1"), "")
	waitFor(t, "five connections", func() bool { return s.srv.Connections() == 5 })

	a, b := newIncentive(acme, "u1", 0), newIncentive(acme, "u1", 1)
	s.srv.Deliver(a)
	s.srv.Deliver(a) // Kafka delivered it twice
	s.srv.Deliver(b)
	// Markers: the first frame the others get must be their own.
	forColleague, forNamesake := newIncentive(acme, "u2", 2), newIncentive(globex, "u1", 3)
	s.srv.Deliver(forColleague)
	s.srv.Deliver(forNamesake)

	for i, c := range mine {
		f := readFrame(t, c)
		want := ws.Frame{Type: "INCENTIVE_NOTIFICATION", IncentiveID: a.ID.String(), CampaignID: a.CampaignID.String(),
			Reward: ws.FrameReward{Type: "CASHBACK", Currency: "INR", Amount: "12.75"}, IssuedAt: "2026-06-27T12:34:56.789Z"}
		if f != want {
			t.Fatalf("connection %d: frame %+v, want %+v", i, f, want)
		}
		expectFrames(t, c, b)
	}
	expectFrames(t, colleague, forColleague)
	expectFrames(t, namesake, forNamesake)

	// Once more, so a late duplicate of a would show up before c.
	c := newIncentive(acme, "u1", 4)
	s.srv.Deliver(c)
	for _, conn := range mine {
		expectFrames(t, conn, c)
	}
	waitFor(t, "6 notifications, 11 frames counted", func() bool {
		st := s.srv.Stats()
		return st.Notifications == 6 && st.FramesSent == 3*3+2 && st.Connections == 5
	})
}

// The frame is the seed's JSON, with the amount as a decimal string.
func TestFrameJSON(t *testing.T) {
	t.Parallel()
	inc := newIncentive(uuid.New(), "u1", 0)
	b, err := json.Marshal(ws.NewFrame(inc))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"INCENTIVE_NOTIFICATION","incentiveId":"` + inc.ID.String() + `","campaignId":"` + inc.CampaignID.String() +
		`","reward":{"type":"CASHBACK","currency":"INR","amount":"12.75"},"issuedAt":"2026-06-27T12:34:56.789Z"}`
	if string(b) != want {
		t.Fatalf("frame\n%s\nwant\n%s", b, want)
	}
}

// A client that stops reading fills its queue and is closed with 1013,
// while another connection of the same user keeps receiving everything.
func TestSlowClientClosedWhileOthersKeepReceiving(t *testing.T) {
	t.Parallel()
	s := startServer(t, ws.Config{SendQueue: 8, WriteWait: 10 * time.Second}, nil)
	tenant := uuid.New()
	tok := s.token(auth.RoleUser, tenant, "u1")
	slow, resp, err := s.dialWith(smallReadBuffer(), http.Header{"Authorization": {"Bearer " + tok}}, "")
	if err != nil {
		t.Fatalf("%v (%s)", err, describe(resp))
	}
	fast := collect(s.dial(tok, ""))
	waitFor(t, "two connections", func() bool { return s.srv.Connections() == 2 })

	// Deliver until the slow client's socket buffers are full and its queue
	// overflows, a few at a time so the fast one's queue never does.
	var sent []engine.Incentive
	for i := 0; s.srv.Stats().SlowClientsClosed == 0; i++ {
		if i == 200_000 {
			t.Fatal("the slow client was never closed")
		}
		inc := newIncentive(tenant, "u1", i)
		sent = append(sent, inc)
		s.srv.Deliver(inc)
		if i%4 == 3 {
			fast.await(t, len(sent))
		}
	}
	// The other connection goes on.
	for i := range 20 {
		inc := newIncentive(tenant, "u1", len(sent))
		sent = append(sent, inc)
		s.srv.Deliver(inc)
		if i%4 == 3 {
			fast.await(t, len(sent))
		}
	}
	fast.await(t, len(sent))
	if !slices.Equal(fast.ids(), incentiveIDs(sent...)) {
		t.Fatal("the fast client's frames are not what was sent, in order")
	}

	// The slow client reads at last: what fit in the buffers, then 1013.
	received := 0
	_ = slow.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		_, _, err := slow.ReadMessage()
		if err == nil {
			received++
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != ws.CloseSlowClient || !strings.Contains(ce.Text, "too slowly") {
			t.Fatalf("after %d of %d frames the slow client read %v, want close 1013; stats %+v; log:\n%s", received, len(sent), err, s.srv.Stats(), s.log.String())
		}
		break
	}
	waitFor(t, "the slow connection gone", func() bool { return s.srv.Connections() == 1 })
	t.Logf("%d frames sent; the slow client read %d before its close", len(sent), received)
	if received >= len(sent) {
		t.Fatalf("the slow client read %d of %d frames", received, len(sent))
	}
}

// Idle connections are pinged; one that answers stays, one that does not
// (it never reads, so never sees the pings) is dropped after PongWait.
func TestPingKeepsAnsweringClientsAndDropsSilentOnes(t *testing.T) {
	t.Parallel()
	s := startServer(t, ws.Config{PingInterval: 50 * time.Millisecond, PongWait: 300 * time.Millisecond}, nil)
	tok := s.token(auth.RoleUser, uuid.New(), "u1")
	alive := s.dial(tok, "")
	var pings atomic.Int64
	alive.SetPingHandler(func(data string) error {
		pings.Add(1)
		return alive.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	readErr := make(chan error, 1)
	go func() {
		for {
			if _, _, err := alive.ReadMessage(); err != nil {
				readErr <- err
				return
			}
		}
	}()
	s.dial(tok, "") // never reads
	waitFor(t, "two connections", func() bool { return s.srv.Connections() == 2 })
	waitFor(t, "the silent connection dropped", func() bool { return s.srv.Connections() == 1 })
	time.Sleep(time.Second) // three PongWaits
	if s.srv.Connections() != 1 || pings.Load() < 10 {
		t.Fatalf("%d connections, %d pings answered; want the answering one kept and pinged every 50ms", s.srv.Connections(), pings.Load())
	}
	select {
	case err := <-readErr:
		t.Fatalf("the answering client was dropped: %v", err)
	default:
	}
}

// What clients send is read and dropped; too much at once closes with 1009.
func TestClientMessagesAreDiscarded(t *testing.T) {
	t.Parallel()
	s := startServer(t, ws.Config{ReadLimit: 64}, nil)
	tenant := uuid.New()
	c := s.dial(s.token(auth.RoleUser, tenant, "u1"), "")
	for range 10 {
		if err := c.WriteMessage(websocket.TextMessage, []byte(`{"hello":"server"}`)); err != nil {
			t.Fatal(err)
		}
	}
	inc := newIncentive(tenant, "u1", 0)
	waitFor(t, "connected", func() bool { return s.srv.Connections() == 1 })
	s.srv.Deliver(inc)
	expectFrames(t, c, inc)
	if err := c.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("x", 65))); err != nil {
		t.Fatal(err)
	}
	expectClose(t, c, websocket.CloseMessageTooBig)
	waitFor(t, "the connection gone", func() bool { return s.srv.Connections() == 0 })
}

// Close says 1001 to every client, waits for them to go, and refuses
// new handshakes.
func TestCloseSaysGoingAway(t *testing.T) {
	t.Parallel()
	s := startServer(t, ws.Config{}, nil)
	tok := s.token(auth.RoleUser, uuid.New(), "u1")
	clients := []*websocket.Conn{s.dial(tok, ""), s.dial(tok, "")}
	waitFor(t, "two connections", func() bool { return s.srv.Connections() == 2 })
	closed := make(chan error, 1)
	go func() { closed <- s.srv.Close() }()
	for _, c := range clients {
		expectClose(t, c, ws.CloseGoingAway)
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	if n := s.srv.Connections(); n != 0 {
		t.Fatalf("%d connections after Close", n)
	}
	_, resp, err := s.dialWith(nil, http.Header{"Authorization": {"Bearer " + tok}}, "")
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("handshake after Close: %v (%s), want 503", err, describe(resp))
	}
}

// A socket lasts no longer than the token it was opened with: when the
// token expires, the server closes it with 4001, and the client comes back
// with a new token.
func TestSocketClosesWhenItsTokenExpires(t *testing.T) {
	t.Parallel()
	s := startServer(t, ws.Config{}, nil)
	tok, err := s.auth.Issue(auth.Principal{Subject: "u1", TenantID: uuid.New(), Role: auth.RoleUser}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := s.dial(tok, "")
	ce := expectClose(t, c, ws.CloseTokenExpired)
	if !strings.Contains(ce.Text, "token expired") {
		t.Fatalf("close reason %q", ce.Text)
	}
}
