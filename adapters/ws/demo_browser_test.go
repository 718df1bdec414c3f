package ws_test

import (
	"bytes"
	"context"
	"image/png"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/incentives-platform/incentives/adapters/auth"
	"github.com/incentives-platform/incentives/adapters/ws"
	"github.com/incentives-platform/incentives/domain/engine"
	"github.com/incentives-platform/incentives/domain/rules"
)

// chromiumPath returns the browser the demo page's test drives: CHROMIUM_PATH,
// or Debian's /usr/bin/chromium. A missing browser fails the test: `make
// test` installs it (scripts/chromium.sh), and a skipped browser test would
// let the page break unnoticed.
func chromiumPath(t *testing.T) string {
	t.Helper()
	path := os.Getenv("CHROMIUM_PATH")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("no Chromium at %s (%v): run scripts/chromium.sh (make test does), or set CHROMIUM_PATH", path, err)
	}
	return path
}

// mustBrowser starts a headless Chromium for the test and returns a tab's
// context. The flags keep it off the network, which is closed here: no
// background requests, component updates, sync or QUIC.
func mustBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox, // root in a container has no user namespace for it
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(900, 1000),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelTab)
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// The demo page, in a real browser: it reads the token from the address
// (and takes it out of it), connects with the access_token subprotocol,
// lists the user's notifications as they are delivered and nobody else's,
// and keeps the last id as since when it disconnects.
func TestDemoPageInChromium(t *testing.T) {
	authn, err := auth.New([]byte(strings.Repeat("demo-page-test-secret-", 2)), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ws.New(ws.Config{}, ws.Deps{Verifier: authn, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	t.Cleanup(func() { _ = srv.Close() })

	tenant := uuid.New()
	token, err := authn.Issue(auth.Principal{Subject: "demo-user", TenantID: tenant, Role: auth.RoleUser}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ctx := mustBrowser(t)

	if err := chromedp.Do(ctx, chromedp.Navigate(hs.URL+"/ws/demo?token="+token)); err != nil {
		t.Fatal(err)
	}
	if got := demoRun(t, ctx, chromedp.Value(chromedp.ID("token"))); got != token {
		t.Fatalf("token field = %q, want the token from the address", got)
	}
	if got := demoRun(t, ctx, chromedp.Evaluate[string](`location.href`)); strings.Contains(got, token) {
		t.Fatalf("the token is still in the address bar: %s", got)
	}

	demoDo(t, ctx, chromedp.Click(chromedp.ID("connect")), chromedp.WaitVisible(chromedp.CSS(`#state[data-state="open"]`)))
	// The browser's open event may come before the server has registered
	// the socket for delivery.
	demoWait(t, "the server to hold the page's socket", func() bool { return srv.Connections() == 1 })

	campaign := uuid.New()
	notification := func(user, typ, currency, amount string) engine.Incentive {
		return engine.Incentive{ID: uuid.New(), TenantID: tenant, CampaignID: campaign, UserID: user, SourceEventID: uuid.New(),
			Reward:   engine.Reward{Type: rules.RewardType(typ), Currency: currency, Amount: decimal.RequireFromString(amount)},
			IssuedAt: time.Date(2026, 11, 26, 13, 0, 0, 0, time.UTC)}
	}
	cashback := notification("demo-user", "CASHBACK", "INR", "12.50")
	someoneElse := notification("another-user", "CASHBACK", "INR", "99")
	points := notification("demo-user", "POINTS", "POINTS", "200")
	for _, inc := range []engine.Incentive{cashback, someoneElse, points} {
		srv.Deliver(inc)
	}

	item := func(inc engine.Incentive) chromedp.CSS {
		return chromedp.CSS(`#notifications li[data-incentive-id="` + inc.ID.String() + `"]`)
	}
	demoDo(t, ctx, chromedp.WaitVisible(item(cashback)), chromedp.WaitVisible(item(points)))
	for _, c := range []struct {
		inc  engine.Incentive
		want []string
	}{
		{cashback, []string{"12.50 INR", "CASHBACK", campaign.String()}},
		{points, []string{"200 POINTS", campaign.String()}},
	} {
		text := demoRun(t, ctx, chromedp.Text(item(c.inc)))
		for _, w := range c.want {
			if !strings.Contains(text, w) {
				t.Errorf("notification %s reads %q, want it to contain %q", c.inc.ID, text, w)
			}
		}
	}
	if n := demoRun(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("#notifications li").length`)); n != 2 {
		t.Errorf("the page lists %d notifications, want 2 (another user's must not reach it)", n)
	}

	shot := demoRun(t, ctx, chromedp.FullScreenshot(100))
	cfg, err := png.DecodeConfig(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("the screenshot is not a PNG: %v", err)
	}
	if cfg.Width == 0 || cfg.Height == 0 {
		t.Fatalf("the screenshot is %dx%d", cfg.Width, cfg.Height)
	}
	// Kept with `go test -artifacts`; otherwise removed with the test.
	path := filepath.Join(t.ArtifactDir(), "ws-demo.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot (%dx%d): %s", cfg.Width, cfg.Height, path)

	demoDo(t, ctx, chromedp.Click(chromedp.ID("disconnect")), chromedp.WaitVisible(chromedp.CSS(`#state[data-state="closed"]`)))
	if got := demoRun(t, ctx, chromedp.Value(chromedp.ID("since"))); got != points.ID.String() {
		t.Errorf("since after disconnecting = %q, want the last incentive id %s", got, points.ID)
	}
	demoWait(t, "the server to let the socket go", func() bool { return srv.Connections() == 0 })

	// A refused handshake (401 before the upgrade) is all a browser sees as
	// 1006; the page says what to check.
	demoDo(t, ctx, chromedp.SetValue(chromedp.ID("token"), "not-a-token"), chromedp.Clear(chromedp.ID("since")),
		chromedp.Click(chromedp.ID("connect")), chromedp.WaitVisible(chromedp.CSS(`#state[data-state="closed"]`)))
	if got := demoRun(t, ctx, chromedp.Text(chromedp.ID("detail"))); !strings.Contains(got, "1006") || !strings.Contains(got, "token") {
		t.Errorf("after a refused token the page says %q, want close code 1006 and a hint at the token", got)
	}
}

func demoDo(t *testing.T, ctx context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatal(err)
	}
}

func demoRun[T any](t *testing.T, ctx context.Context, action chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, action)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func demoWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
