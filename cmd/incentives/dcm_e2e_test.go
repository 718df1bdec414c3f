package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/shopspring/decimal"

	"github.com/incentives-platform/incentives/adapters/auth"
	"github.com/incentives-platform/incentives/adapters/avro"
	"github.com/incentives-platform/incentives/adapters/kafka"
	"github.com/incentives-platform/incentives/adapters/kafka/kafkatest"
	"github.com/incentives-platform/incentives/adapters/ws"
	"github.com/incentives-platform/incentives/domain/engine"
	"github.com/incentives-platform/incentives/domain/rules"
)

// socket is a test client of a DCM instance.
type socket struct {
	t    *testing.T
	app  *App
	conn *websocket.Conn
}

// dialDCM opens a socket to the dcm role of app as the tenant's user, with
// query (since=...) if not empty.
func dialDCM(t *testing.T, app *App, a *auth.Authenticator, tenant uuid.UUID, user, query string) *socket {
	t.Helper()
	tok, err := a.Issue(auth.Principal{Subject: user, TenantID: tenant, Role: auth.RoleUser}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	u := "ws://" + app.WSAddr() + "/ws"
	if query != "" {
		u += "?" + query
	}
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	conn, resp, err := d.Dial(u, http.Header{"Authorization": {"Bearer " + tok}})
	if err != nil {
		status := "no response"
		if resp != nil {
			status = resp.Status
		}
		t.Fatalf("dial %s: %v (%s)", app.WSAddr(), err, status)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &socket{t: t, app: app, conn: conn}
}

func (s *socket) next() ws.Frame {
	s.t.Helper()
	if err := s.conn.SetReadDeadline(time.Now().Add(15 * time.Second)); err != nil {
		s.t.Fatal(err)
	}
	_, data, err := s.conn.ReadMessage()
	if err != nil {
		s.t.Fatalf("read frame: %v (the instance's counters: %+v)", err, s.app.dcm.server.Stats())
	}
	var f ws.Frame
	if err := json.Unmarshal(data, &f); err != nil {
		s.t.Fatalf("frame %q: %v", data, err)
	}
	return f
}

// expect reads len(want) frames and checks they are want's, in order.
func (s *socket) expect(want ...uuid.UUID) {
	s.t.Helper()
	for i, w := range want {
		if f := s.next(); f.IncentiveID != w.String() {
			s.t.Fatalf("frame %d of %d is %s, want %s", i+1, len(want), f.IncentiveID, w)
		}
	}
}

// issuer records incentives and publishes them as the engine does: the row
// is committed before the incentive reaches incentive-generated.
type issuer struct {
	t   *testing.T
	p   *testPlatform
	pub *kafka.IncentivePublisher
	n   int
}

func newIssuer(p *testPlatform, brokers []string) *issuer {
	reg, _, err := avro.LoadPlatform()
	if err != nil {
		p.t.Fatal(err)
	}
	pub, err := kafka.NewIncentivePublisher(kafka.IncentivePublisherConfig{Brokers: brokers, Registry: reg})
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(pub.Close)
	return &issuer{t: p.t, p: p, pub: pub}
}

func (is *issuer) issue(tenant uuid.UUID, user string) uuid.UUID {
	is.t.Helper()
	is.n++
	inc := engine.Incentive{ID: uuid.New(), DecisionID: uuid.New(), TenantID: tenant, CampaignID: uuid.New(), CampaignVersion: 1,
		UserID: user, SourceEventID: uuid.New(),
		Reward:   engine.Reward{Type: rules.RewardPoints, Currency: "POINTS", Amount: decimal.NewFromInt(10)},
		IssuedAt: time.Date(2026, 5, 1, 0, 0, is.n, 0, time.UTC)}
	if _, err := is.p.db.Pool.Exec(context.Background(), `
		INSERT INTO incentive (incentive_id, decision_id, tenant_id, campaign_id, campaign_version, user_id, source_event_id,
		                       type, reward_currency, reward_amount, issued_at)
		VALUES ($1, $2, $3, $4, 1, $5, $6, 'POINTS', 'POINTS', 10, $7)`,
		inc.ID, inc.DecisionID, inc.TenantID, inc.CampaignID, inc.UserID, inc.SourceEventID.String(), inc.IssuedAt); err != nil {
		is.t.Fatal(err)
	}
	is.publish(inc)
	return inc.ID
}

func (is *issuer) publish(inc engine.Incentive) {
	is.t.Helper()
	if err := is.pub.PublishIncentives(context.Background(), []engine.Incentive{inc}); err != nil {
		is.t.Fatal(err)
	}
}

// Two DCM processes on one broker, each in its own consumer group: a user
// with sockets on both gets every notification exactly once on each socket,
// a retried publish included; other users and tenants get none of them; and
// a socket that went away and comes back to the other instance with since
// gets what it missed, then live frames.
func TestDCMInstancesDeliverOncePerConnectionAndCatchUp(t *testing.T) {
	t.Parallel()
	broker := kafkatest.MustBroker(t)
	cfg := testConfig(t)
	cfg.KafkaBrokers, cfg.Roles = broker.Addr(), roleDCM
	a := startPlatform(t, cfg)
	b := startPlatform(t, cfg)
	if a.app.dcm.instance == b.app.dcm.instance {
		t.Fatalf("both instances are %q", a.app.dcm.instance)
	}
	is := newIssuer(a, broker.Brokers())
	acme, globex := uuid.New(), uuid.New()
	onA1 := dialDCM(t, a.app, a.auth, acme, "u1", "")
	onA2 := dialDCM(t, a.app, a.auth, acme, "u1", "")
	onB := dialDCM(t, b.app, b.auth, acme, "u1", "")
	colleague := dialDCM(t, b.app, b.auth, acme, "u2", "")
	namesake := dialDCM(t, a.app, a.auth, globex, "u1", "")
	eventually(t, "sockets registered", func() bool {
		return a.app.dcm.server.Connections() == 3 && b.app.dcm.server.Connections() == 2
	})

	var mine []uuid.UUID
	for i := range 5 {
		mine = append(mine, is.issue(acme, "u1"))
		if i == 2 {
			// A publish retried after a lost ack: the record again.
			is.publish(engine.Incentive{ID: mine[1], TenantID: acme, CampaignID: uuid.New(), UserID: "u1", SourceEventID: uuid.New(),
				Reward: engine.Reward{Type: rules.RewardPoints, Currency: "POINTS", Amount: decimal.NewFromInt(10)}, IssuedAt: time.Now().UTC()})
		}
	}
	theirs := is.issue(acme, "u2")
	namesakes := is.issue(globex, "u1")
	for _, s := range []*socket{onA1, onA2, onB} {
		s.expect(mine...)
	}
	colleague.expect(theirs)
	namesake.expect(namesakes)

	// onA1 goes away; three are issued meanwhile; it comes back to B.
	last := mine[len(mine)-1]
	if err := onA1.conn.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the socket gone", func() bool { return a.app.dcm.server.Connections() == 2 })
	missed := []uuid.UUID{is.issue(acme, "u1"), is.issue(acme, "u1"), is.issue(acme, "u1")}
	onA2.expect(missed...)
	onB.expect(missed...)
	back := dialDCM(t, b.app, b.auth, acme, "u1", "since="+last.String())
	back.expect(missed...)
	live := is.issue(acme, "u1")
	for _, s := range []*socket{back, onA2, onB} {
		s.expect(live)
	}
	// Nothing else was queued behind: the next frame everyone gets is the next one.
	marker := is.issue(acme, "u1")
	for _, s := range []*socket{back, onA2, onB} {
		s.expect(marker)
	}
	colleague.expect(is.issue(acme, "u2"))

	// A dcm-only process serves its probe and metrics beside the sockets.
	resp, err := http.Get("http://" + b.app.WSAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, line := range []string{"incentives_dcm_connections 3", "incentives_dcm_catchup_frames_total 3"} {
		if !strings.Contains(string(body), line+"\n") {
			t.Errorf("B's metrics lack %q", line)
		}
	}
	if resp, err := http.Get("http://" + b.app.WSAddr() + "/healthz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("healthz: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}

// The whole path: action events in tenant-events, the engine's incentives,
// the DCM's frames; a client that reconnects with since while more events
// are being decided gets every incentive once, in order.
func TestActionEventToWebSocketFrame(t *testing.T) {
	t.Parallel()
	p := startPlatform(t, testConfig(t))
	tenantID := p.newTenant("Acme")
	tenant := uuid.MustParse(tenantID)
	admin := p.token(auth.RoleTenantAdmin, tenant)
	if r := p.request("POST", "/api/v1/tenants/"+tenantID+"/user-limits", admin, `{"maxPerDay":100}`); r.status != http.StatusOK {
		t.Fatalf("user limits: %d %s", r.status, r.body)
	}
	campaign := p.activeCampaign(admin, `{"name":"Login points","type":"SIMPLE","rule":{"action":"LOGIN",
		"reward":{"type":"POINTS","currency":"POINTS","amount":"10"}}}`)
	p.waitForEngineCatalog(admin, tenantID, "LOGIN", 1)
	// waitForEngineCatalog knows the campaign is searchable; the engine may
	// still decide with a catalog that lacks the tenant. Probe until a LOGIN
	// is rewarded.
	eventually(t, "the engine rewarding a LOGIN of the tenant", func() bool {
		probe := newAction(tenantID, "probe", "LOGIN", "")
		produceActions(t, p.app.Brokers(), probe)
		var outcome string
		for range 100 {
			err := p.db.Pool.QueryRow(context.Background(), `SELECT outcome FROM decision WHERE source_event_id = $1`, probe.id).Scan(&outcome)
			if err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		return outcome == "ISSUED"
	})

	base := time.Now().UTC().Truncate(time.Millisecond).Add(-time.Minute)
	logins := make([]action, 10)
	for i := range logins {
		logins[i] = newAction(tenantID, "u1", "LOGIN", "")
		logins[i].at = base.Add(time.Duration(i) * time.Second)
	}
	// incentiveOf maps an event to its incentive, once the engine issued it.
	incentiveOf := func(ev action) uuid.UUID {
		t.Helper()
		var id uuid.UUID
		eventually(t, "the incentive of event "+ev.id.String(), func() bool {
			err := p.db.Pool.QueryRow(context.Background(), `SELECT incentive_id FROM incentive WHERE source_event_id = $1`,
				ev.id.String()).Scan(&id)
			return err == nil
		})
		return id
	}

	first := dialDCM(t, p.app, p.auth, tenant, "u1", "")
	produceActions(t, p.app.Brokers(), logins[:3]...)
	for _, ev := range logins[:3] {
		f := first.next()
		want := ws.Frame{Type: "INCENTIVE_NOTIFICATION", IncentiveID: incentiveOf(ev).String(), CampaignID: campaign,
			Reward: ws.FrameReward{Type: "POINTS", Currency: "POINTS", Amount: "10"}, IssuedAt: ev.at.Format(time.RFC3339Nano)}
		if f != want {
			t.Fatalf("frame %+v, want %+v", f, want)
		}
	}
	lastSeen := incentiveOf(logins[2])
	if err := first.conn.Close(); err != nil {
		t.Fatal(err)
	}

	// Offline: three more. Then, while the client reconnects, three more.
	produceActions(t, p.app.Brokers(), logins[3:6]...)
	for _, ev := range logins[3:6] {
		incentiveOf(ev)
	}
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for _, ev := range logins[6:9] {
			produceActions(t, p.app.Brokers(), ev)
		}
	}()
	again := dialDCM(t, p.app, p.auth, tenant, "u1", "since="+lastSeen.String())
	<-produced
	for _, ev := range logins[3:9] {
		again.expect(incentiveOf(ev))
	}
	produceActions(t, p.app.Brokers(), logins[9])
	again.expect(incentiveOf(logins[9]))

	// since a time: everything the platform issued at or after it. The last
	// login was decided alone, after the others had been delivered.
	var written time.Time
	if err := p.db.Pool.QueryRow(context.Background(), `SELECT recorded_at FROM incentive WHERE incentive_id = $1`,
		incentiveOf(logins[9])).Scan(&written); err != nil {
		t.Fatal(err)
	}
	byTime := dialDCM(t, p.app, p.auth, tenant, "u1", "since="+url.QueryEscape(written.UTC().Format(time.RFC3339Nano)))
	byTime.expect(incentiveOf(logins[9]))
}
