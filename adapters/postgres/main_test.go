package postgres_test

import (
	"os"
	"testing"

	"github.com/incentives-platform/incentives/adapters/postgres/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }
