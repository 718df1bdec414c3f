package memstore_test

import (
	"testing"

	"github.com/incentives-platform/incentives/adapters/eventstoretest"
	"github.com/incentives-platform/incentives/adapters/memstore"
	"github.com/incentives-platform/incentives/commands"
)

func TestConformance(t *testing.T) {
	eventstoretest.Run(t, func(*testing.T) commands.EventStore { return memstore.New() })
}
