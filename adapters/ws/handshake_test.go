package ws_test

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/adapters/auth"
	"github.com/incentives-platform/incentives/adapters/ws"
)

// jwtWith builds a token by hand, for algorithms and secrets the platform
// never issues: header {"alg": alg}, the claims, and sign's signature.
func jwtWith(t *testing.T, alg string, claims map[string]any, sign func(input []byte) []byte) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	input := enc(map[string]string{"alg": alg, "typ": "JWT"}) + "." + enc(claims)
	return input + "." + base64.RawURLEncoding.EncodeToString(sign([]byte(input)))
}

func userClaims(tenant uuid.UUID, exp time.Time) map[string]any {
	return map[string]any{"sub": "u1", "tenant_id": tenant.String(), "role": "user", "exp": exp.Unix(), "iat": time.Now().Unix()}
}

func hs256(secret string) func([]byte) []byte {
	return func(input []byte) []byte {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write(input)
		return m.Sum(nil)
	}
}

type problemBody struct {
	Type, Title, Detail, Instance string
	Status                        int
}

// Every refused handshake is answered before the upgrade with problem+json,
// and no token reaches the log.
func TestHandshakesRefusedBeforeTheUpgrade(t *testing.T) {
	t.Parallel()
	s := startServer(t, ws.Config{}, &history{})
	tenant := uuid.New()
	future := time.Now().Add(time.Hour)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rs256 := jwtWith(t, "RS256", userClaims(tenant, future), func(input []byte) []byte {
		sum := sha256.Sum256(input)
		sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		return sig
	})
	tokens := map[string]string{
		"forged":         jwtWith(t, "HS256", userClaims(tenant, future), hs256("another-secret-of-at-least-32-bytes!!")),
		"expired":        jwtWith(t, "HS256", userClaims(tenant, time.Now().Add(-time.Hour)), hs256(testSecret)),
		"alg none":       jwtWith(t, "none", userClaims(tenant, future), func([]byte) []byte { return nil }),
		"RS256":          rs256,
		"tenant admin":   s.token(auth.RoleTenantAdmin, tenant, "admin"),
		"platform admin": s.token(auth.RolePlatformAdmin, uuid.Nil, "root"),
		"valid":          s.token(auth.RoleUser, tenant, "u1"),
	}
	bearer := func(name string) http.Header { return http.Header{"Authorization": {"Bearer " + tokens[name]}} }
	for _, tc := range []struct {
		name   string
		header http.Header
		query  string
		status int
		typ    string
		says   string
	}{
		{"no token", nil, "", 401, "unauthenticated", "a valid user token is required"},
		{"empty bearer", http.Header{"Authorization": {"Bearer "}}, "", 401, "unauthenticated", "a valid user token is required"},
		{"basic auth", http.Header{"Authorization": {"Basic dTpw"}}, "", 401, "unauthenticated", "a valid user token is required"},
		{"garbage", http.Header{"Authorization": {"Bearer not.a.jwt"}}, "", 401, "unauthenticated", "not valid"},
		{"forged", bearer("forged"), "", 401, "unauthenticated", "not valid"},
		{"expired", bearer("expired"), "", 401, "unauthenticated", "expired"},
		{"alg none", bearer("alg none"), "", 401, "unauthenticated", "not valid"},
		{"RS256", bearer("RS256"), "", 401, "unauthenticated", "not valid"},
		{"forged in the query", nil, "access_token=" + tokens["forged"], 401, "unauthenticated", "not valid"},
		{"forged as subprotocol", http.Header{"Sec-WebSocket-Protocol": {"access_token, " + tokens["forged"]}}, "", 401, "unauthenticated", "not valid"},
		{"tenant admin", bearer("tenant admin"), "", 403, "forbidden", "role must be user"},
		{"platform admin", bearer("platform admin"), "", 403, "forbidden", "role must be user"},
		{"foreign origin", http.Header{"Authorization": {"Bearer " + tokens["valid"]}, "Origin": {"https://evil.example"}}, "", 403, "forbidden", "origin"},
		{"since neither id nor time", bearer("valid"), "since=yesterday", 400, "malformed-request", "since"},
		{"since the nil id", bearer("valid"), "since=" + uuid.Nil.String(), 400, "malformed-request", "since"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, resp, err := s.dialWith(nil, tc.header, tc.query)
			if err == nil {
				c.Close()
				t.Fatal("the handshake was accepted")
			}
			if resp == nil || resp.StatusCode != tc.status {
				t.Fatalf("answer %s, want %d", describe(resp), tc.status)
			}
			checkProblem(t, resp, tc.status, tc.typ, tc.says)
		})
	}
	logged := s.log.String()
	for name, tok := range tokens {
		sig := strings.Split(tok, ".")[2]
		if strings.Contains(logged, tok) || (sig != "" && strings.Contains(logged, sig)) {
			t.Errorf("the %s token is in the log:\n%s", name, logged)
		}
	}
	if n := s.srv.Stats().HandshakesRefused; n < 15 {
		t.Errorf("HandshakesRefused = %d, want at least 15", n)
	}
}

func checkProblem(t *testing.T, resp *http.Response, status int, typ, says string) {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q", ct)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var p problemBody
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("problem %q: %v", body, err)
	}
	if p.Status != status || p.Type != "urn:incentives:problem:"+typ || !strings.Contains(p.Detail, says) || p.Instance != "/ws" {
		t.Fatalf("problem %+v, want status %d, type %s, detail saying %q", p, status, typ, says)
	}
	if status == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatal("401 without WWW-Authenticate")
	}
}

// A user token is accepted from each place a client can put it; the
// subprotocol is answered.
func TestTokenFromHeaderQueryOrSubprotocol(t *testing.T) {
	t.Parallel()
	s := startServer(t, ws.Config{}, nil)
	tok := s.token(auth.RoleUser, uuid.New(), "u1")
	for _, tc := range []struct {
		name     string
		header   http.Header
		query    string
		protocol string
	}{
		{"header", http.Header{"Authorization": {"Bearer " + tok}}, "", ""},
		{"lower-case scheme", http.Header{"Authorization": {"bearer " + tok}}, "", ""},
		{"query", nil, "access_token=" + tok, ""},
		{"subprotocol", http.Header{"Sec-WebSocket-Protocol": {"access_token, " + tok}}, "", "access_token"},
	} {
		c, resp, err := s.dialWith(nil, tc.header, tc.query)
		if err != nil {
			t.Fatalf("%s: %v (%s)", tc.name, err, describe(resp))
		}
		if c.Subprotocol() != tc.protocol {
			t.Errorf("%s: subprotocol %q, want %q", tc.name, c.Subprotocol(), tc.protocol)
		}
	}
	waitFor(t, "four connections", func() bool { return s.srv.Connections() == 4 })
}

func TestNotAWebSocketHandshake(t *testing.T) {
	t.Parallel()
	s := startServer(t, ws.Config{}, nil)
	for _, tc := range []struct {
		method string
		status int
		typ    string
	}{
		{"GET", http.StatusUpgradeRequired, "upgrade-required"},
		{"POST", http.StatusMethodNotAllowed, "method-not-allowed"},
	} {
		req, err := http.NewRequest(tc.method, s.http.URL+"/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		checkProblem(t, resp, tc.status, tc.typ, "")
		resp.Body.Close()
	}
}

// Pages from the socket's host and the configured origins may connect, any
// other origin may not; clients that send no Origin are not browsers.
func TestOrigins(t *testing.T) {
	t.Parallel()
	s := startServer(t, ws.Config{AllowedOrigins: []string{"https://App.example.com", "http://localhost:3000/"}}, nil)
	tok := s.token(auth.RoleUser, uuid.New(), "u1")
	host := strings.TrimPrefix(s.http.URL, "http://")
	for _, tc := range []struct {
		origin string
		ok     bool
	}{
		{"", true},
		{"http://" + host, true},
		{"https://app.example.com", true},
		{"http://localhost:3000", true},
		{"http://localhost:3001", false},
		{"https://app.example.com.evil.example", false},
		{"http://app.example.com", false},
		{"null", false},
	} {
		h := http.Header{"Authorization": {"Bearer " + tok}}
		if tc.origin != "" {
			h.Set("Origin", tc.origin)
		}
		c, resp, err := s.dialWith(nil, h, "")
		if ok := err == nil; ok != tc.ok {
			t.Errorf("origin %q: accepted %v, want %v (%s)", tc.origin, ok, tc.ok, describe(resp))
		}
		if c != nil {
			c.Close()
		}
	}

	anyOrigin := startServer(t, ws.Config{AllowedOrigins: []string{"*"}}, nil)
	h := http.Header{"Authorization": {"Bearer " + tok}, "Origin": {"https://anywhere.example"}}
	if _, resp, err := anyOrigin.dialWith(nil, h, ""); err != nil {
		t.Errorf(`with "*": %v (%s)`, err, describe(resp))
	}
}

// The cap counts one user's sockets on the instance; other users and
// tenants have their own.
func TestConnectionsPerUserAreCapped(t *testing.T) {
	t.Parallel()
	s := startServer(t, ws.Config{MaxConnectionsPerUser: 2}, nil)
	tenant := uuid.New()
	tok := s.token(auth.RoleUser, tenant, "u1")
	first := s.dial(tok, "")
	s.dial(tok, "")
	_, resp, err := s.dialWith(nil, http.Header{"Authorization": {"Bearer " + tok}}, "")
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third connection: %v (%s), want 429", err, describe(resp))
	}
	checkProblem(t, resp, http.StatusTooManyRequests, "too-many-connections", "as many")
	s.dial(s.token(auth.RoleUser, tenant, "u2"), "")
	s.dial(s.token(auth.RoleUser, uuid.New(), "u1"), "")

	first.Close()
	waitFor(t, "the first connection gone", func() bool { return s.srv.Connections() == 3 })
	s.dial(tok, "")
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	_, err := ws.New(ws.Config{SendQueue: -1, PingInterval: time.Minute, PongWait: 30 * time.Second,
		AllowedOrigins: []string{"app.example.com", "https://ok.example", "https://x.example/path"}}, ws.Deps{})
	for _, says := range []string{"SendQueue must not be negative", "PongWait (30s) must be longer than PingInterval (1m0s)",
		`"app.example.com"`, `"https://x.example/path"`, "Verifier is required", "Logger is required"} {
		if err == nil || !strings.Contains(err.Error(), says) {
			t.Errorf("New = %v, want it to say %s", err, says)
		}
	}
	if err != nil && strings.Contains(err.Error(), "ok.example") {
		t.Errorf("New refused a good origin: %v", err)
	}
}

func TestDemoPage(t *testing.T) {
	t.Parallel()
	s := startServer(t, ws.Config{}, nil)
	for _, path := range []string{"/ws/demo", "/ws/demo/", "/ws/demo/index.html"} {
		resp, err := http.Get(s.http.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
			!strings.Contains(strings.ToLower(string(body)), "<html") {
			t.Fatalf("GET %s: %d %s %.80q", path, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	}
	for _, path := range []string{"/ws/demo/nope.js", "/ws/demo/../config.go", "/elsewhere"} {
		resp, err := http.Get(s.http.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("GET %s: %d, want 404", path, resp.StatusCode)
		}
	}
}
