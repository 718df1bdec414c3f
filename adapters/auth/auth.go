// Package auth issues and verifies the platform's bearer tokens: HS256 JWTs
// carrying sub (the user or admin id), tenant_id and role. The HTTP API and
// the WebSocket endpoint verify them; `incentives token` issues them for
// development. Only HS256 is accepted, so a token signed with "none" or an
// asymmetric algorithm (the classic key-confusion attack) is refused.
//
// This package is the only one that imports golang-jwt.
package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// Role is what a token's holder may do.
type Role string

// Roles (DESIGN.md §10).
const (
	// RolePlatformAdmin runs the platform: every tenant, every route.
	RolePlatformAdmin Role = "platform-admin"
	// RoleTenantAdmin manages one tenant (tenant_id) and nothing else.
	RoleTenantAdmin Role = "tenant-admin"
	// RoleUser is an end user of one tenant, on its apps' WebSocket.
	RoleUser Role = "user"
)

// Valid reports whether r is one of the known roles.
func (r Role) Valid() bool {
	return r == RolePlatformAdmin || r == RoleTenantAdmin || r == RoleUser
}

// Principal is who a verified token speaks for.
type Principal struct {
	Subject  string
	TenantID uuid.UUID // uuid.Nil for a platform admin
	Role     Role
	// ExpiresAt is when the token stops being valid (set by Verify; Issue
	// takes a ttl instead): a connection that outlives its request, such as
	// a WebSocket, must end there.
	ExpiresAt time.Time
}

// Actor returns the principal as recorded in event metadata: "<role>:<subject>".
func (p Principal) Actor() string { return string(p.Role) + ":" + p.Subject }

// ErrInvalidToken is returned for every token that does not verify: bad
// signature, wrong algorithm, expired, malformed, or missing claims. The
// wrapped cause says which, for logs that never include the token itself.
var ErrInvalidToken = errors.New("invalid token")

// ErrTokenExpired is wrapped, with ErrInvalidToken, by Verify for a token
// that was valid once: clients should get a new one.
var ErrTokenExpired = errors.New("token expired")

// MinSecretLength is the shortest HS256 secret accepted (RFC 7518 §3.2).
const MinSecretLength = 32

// Authenticator issues and verifies tokens with one secret. It is safe for
// concurrent use.
type Authenticator struct {
	secret []byte
	now    func() time.Time
}

// New returns an authenticator for secret, which must be at least
// MinSecretLength bytes. now is the clock used to check expiry.
func New(secret []byte, now func() time.Time) (*Authenticator, error) {
	if len(secret) < MinSecretLength {
		return nil, fmt.Errorf("jwt secret must be at least %d bytes, got %d", MinSecretLength, len(secret))
	}
	if now == nil {
		return nil, errors.New("auth: nil clock")
	}
	return &Authenticator{secret: secret, now: now}, nil
}

type claims struct {
	TenantID string `json:"tenant_id,omitempty"`
	Role     Role   `json:"role"`
	jwt.RegisteredClaims
}

// Issue returns a token for p valid for ttl.
func (a *Authenticator) Issue(p Principal, ttl time.Duration) (string, error) {
	if err := validate(p); err != nil {
		return "", err
	}
	now := a.now()
	c := claims{Role: p.Role, RegisteredClaims: jwt.RegisteredClaims{
		Subject: p.Subject, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}}
	if p.TenantID != uuid.Nil {
		c.TenantID = p.TenantID.String()
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(a.secret)
}

// Verify returns the principal of a valid token, or an error wrapping ErrInvalidToken.
func (a *Authenticator) Verify(token string) (Principal, error) {
	var c claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return a.secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(a.now),
		jwt.WithLeeway(5*time.Second),
	)
	if errors.Is(err, jwt.ErrTokenExpired) {
		return Principal{}, fmt.Errorf("%w: %w", ErrInvalidToken, ErrTokenExpired)
	}
	if err != nil {
		return Principal{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	p := Principal{Subject: c.Subject, Role: c.Role}
	if c.ExpiresAt != nil {
		p.ExpiresAt = c.ExpiresAt.UTC()
	}
	if c.TenantID != "" {
		if p.TenantID, err = uuid.Parse(c.TenantID); err != nil {
			return Principal{}, fmt.Errorf("%w: tenant_id is not a UUID", ErrInvalidToken)
		}
	}
	if err := validate(p); err != nil {
		return Principal{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	return p, nil
}

func validate(p Principal) error {
	switch {
	case !p.Role.Valid():
		return fmt.Errorf("unknown role %q", p.Role)
	case p.Subject == "":
		return errors.New("sub is required")
	case p.Role != RolePlatformAdmin && p.TenantID == uuid.Nil:
		return fmt.Errorf("role %s needs a tenant_id", p.Role)
	}
	return nil
}
