package auth_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/adapters/auth"
)

var (
	secret = []byte("0123456789abcdef0123456789abcdef")
	now    = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
)

func mustAuth(t *testing.T, s []byte, at time.Time) *auth.Authenticator {
	t.Helper()
	a, err := auth.New(s, func() time.Time { return at })
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestIssueAndVerify(t *testing.T) {
	a := mustAuth(t, secret, now)
	tenantID := uuid.New()
	for _, p := range []auth.Principal{
		{Subject: "ops", Role: auth.RolePlatformAdmin},
		{Subject: "alice", Role: auth.RoleTenantAdmin, TenantID: tenantID},
		{Subject: "user-17", Role: auth.RoleUser, TenantID: tenantID},
	} {
		tok, err := a.Issue(p, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		got, err := a.Verify(tok)
		if err != nil || !got.ExpiresAt.Equal(now.Add(time.Hour).Truncate(time.Second)) {
			t.Fatalf("Verify(Issue(%+v)) expires at %v (%v), want in an hour", p, got.ExpiresAt, err)
		}
		if got.ExpiresAt = (time.Time{}); got != p {
			t.Fatalf("Verify(Issue(%+v)) = %+v", p, got)
		}
	}
}

func TestVerifyRefuses(t *testing.T) {
	a := mustAuth(t, secret, now)
	valid, _ := a.Issue(auth.Principal{Subject: "ops", Role: auth.RolePlatformAdmin}, time.Hour)
	expired, _ := mustAuth(t, secret, now.Add(-2*time.Hour)).Issue(auth.Principal{Subject: "ops", Role: auth.RolePlatformAdmin}, time.Hour)
	forged, _ := mustAuth(t, []byte(strings.Repeat("x", 32)), now).Issue(auth.Principal{Subject: "ops", Role: auth.RolePlatformAdmin}, time.Hour)
	sign := func(method jwt.SigningMethod, key any, c jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(method, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	exp := now.Add(time.Hour).Unix()
	tests := map[string]string{
		"empty":                "",
		"garbage":              "not.a.token",
		"expired":              expired,
		"other secret":         forged,
		"tampered payload":     valid[:len(valid)-4] + "AAAA",
		"alg none":             sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwt.MapClaims{"sub": "ops", "role": "platform-admin", "exp": exp}),
		"HS512":                sign(jwt.SigningMethodHS512, secret, jwt.MapClaims{"sub": "ops", "role": "platform-admin", "exp": exp}),
		"no exp":               sign(jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "ops", "role": "platform-admin"}),
		"unknown role":         sign(jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "ops", "role": "root", "exp": exp}),
		"no subject":           sign(jwt.SigningMethodHS256, secret, jwt.MapClaims{"role": "platform-admin", "exp": exp}),
		"tenant-admin, no tid": sign(jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "a", "role": "tenant-admin", "exp": exp}),
		"tenant_id not a UUID": sign(jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "a", "role": "tenant-admin", "tenant_id": "acme", "exp": exp}),
		"not yet valid (nbf)":  sign(jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "ops", "role": "platform-admin", "exp": exp, "nbf": now.Add(time.Hour).Unix()}),
	}
	for name, tok := range tests {
		_, err := a.Verify(tok)
		if !errors.Is(err, auth.ErrInvalidToken) {
			t.Errorf("%s: Verify error = %v, want ErrInvalidToken", name, err)
		}
		if expiredErr := errors.Is(err, auth.ErrTokenExpired); expiredErr != (name == "expired") {
			t.Errorf("%s: errors.Is(err, ErrTokenExpired) = %v", name, expiredErr)
		}
	}
}

func TestNewRefusesShortSecrets(t *testing.T) {
	if _, err := auth.New([]byte("short"), time.Now); err == nil {
		t.Fatal("accepted a 5-byte secret")
	}
}
