package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"github.com/incentives-platform/incentives/adapters/postgres/pgtest"
)

// runAsBinaryEnv makes the test binary act as the incentives binary, so tests
// can start, kill and restart real platform processes without building one.
const runAsBinaryEnv = "INCENTIVES_TEST_RUN_AS_BINARY"

func TestMain(m *testing.M) {
	if os.Getenv(runAsBinaryEnv) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
		stop()
		os.Exit(code)
	}
	os.Exit(pgtest.Run(m))
}
