package postgres

import (
	"time"

	"github.com/google/uuid"
)

// SearchQuery exposes the engine's campaign search to the test that EXPLAINs it.
func SearchQuery(tenantID uuid.UUID, action string, now time.Time) (string, []any) {
	return searchQuery(tenantID, action, now)
}
