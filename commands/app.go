package commands

import (
	"log/slog"

	"github.com/incentives-platform/incentives/domain/tenant"
)

// Application is the table of contents of the write side: every command the
// platform handles, decorated once.
type Application struct {
	CreateTenant     Handler[CreateTenant, *tenant.Tenant]
	SuspendTenant    Handler[SuspendTenant, *tenant.Tenant]
	ReactivateTenant Handler[ReactivateTenant, *tenant.Tenant]
}

// Dependencies are what the command handlers need.
type Dependencies struct {
	Store          EventStore
	Clock          Clock
	TenantDefaults TenantDefaults
	Logger         *slog.Logger
	Recorder       Recorder
}

// NewApplication builds every handler and decorates it with logging and metrics.
func NewApplication(d Dependencies) Application {
	return Application{
		CreateTenant:     Decorate("CreateTenant", NewCreateTenantHandler(d.Store, d.Clock, d.TenantDefaults), d.Logger, d.Recorder),
		SuspendTenant:    Decorate("SuspendTenant", NewSuspendTenantHandler(d.Store, d.Clock), d.Logger, d.Recorder),
		ReactivateTenant: Decorate("ReactivateTenant", NewReactivateTenantHandler(d.Store, d.Clock), d.Logger, d.Recorder),
	}
}
