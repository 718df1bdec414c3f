package commands

import (
	"fmt"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/domain"
)

// checkOwner enforces tenant isolation in commands on an existing resource.
// acting is the tenant the caller acts for (a command's TenantID), uuid.Nil for
// a platform admin, who may act on any tenant. A resource of another tenant is
// domain.ErrNotFound: its existence is not the caller's to know.
func checkOwner(acting, owner uuid.UUID, stream domain.StreamID) error {
	if acting != uuid.Nil && acting != owner {
		return fmt.Errorf("%s: %w", stream, domain.ErrNotFound)
	}
	return nil
}
