package main

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/adapters/auth"
)

func runToken(_ context.Context, env environment, args []string) error {
	var (
		role, tenant, user, secret string
		ttl                        time.Duration
	)
	fs := newFlagSet(env, "token", "token --role ROLE [--tenant ID] [--user ID] [--ttl DURATION]")
	b := newBinder(fs, env.getenv)
	fs.StringVar(&role, "role", "", "platform-admin, tenant-admin or user (required)")
	fs.StringVar(&tenant, "tenant", "", "tenant id (required for tenant-admin and user)")
	fs.StringVar(&user, "user", "", "the token's subject (default dev-<role>)")
	fs.DurationVar(&ttl, "ttl", 24*time.Hour, "how long the token is valid")
	b.string(&secret, "auth-jwt-secret", devJWTSecret, "HS256 secret, the same the platform runs with")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := b.err(); err != nil {
		return err
	}
	p := auth.Principal{Role: auth.Role(role), Subject: user}
	if p.Subject == "" {
		p.Subject = "dev-" + role
	}
	if tenant != "" {
		id, err := uuid.Parse(tenant)
		if err != nil {
			return fmt.Errorf("--tenant %q is not a UUID", tenant)
		}
		p.TenantID = id
	}
	if ttl <= 0 {
		return fmt.Errorf("--ttl must be positive")
	}
	a, err := auth.New([]byte(secret), time.Now)
	if err != nil {
		return err
	}
	tok, err := a.Issue(p, ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(env.stdout, tok)
	return nil
}
