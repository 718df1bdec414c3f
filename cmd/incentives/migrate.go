package main

import (
	"context"
	"fmt"

	"github.com/incentives-platform/incentives/adapters/postgres"
)

func runMigrate(ctx context.Context, env environment, args []string) error {
	var cfg Config
	fs := newFlagSet(env, "migrate", "migrate [flags]")
	b := newBinder(fs, env.getenv)
	cfg.bindConnections(b)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := b.err(); err != nil {
		return err
	}
	logger := cfg.newLogger(env)
	if created, err := postgres.EnsureDatabase(ctx, cfg.DatabaseURL); err != nil {
		return err
	} else if created {
		logger.Info("database created")
	}
	db, err := postgres.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	applied, err := postgres.Migrate(ctx, db, logger)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "applied %d migrations %v\n", len(applied), applied)
	return nil
}
