package commands

import (
	"log/slog"

	"github.com/incentives-platform/incentives/domain/campaign"
	"github.com/incentives-platform/incentives/domain/cohort"
	"github.com/incentives-platform/incentives/domain/limits"
	"github.com/incentives-platform/incentives/domain/tenant"
)

// Application is the table of contents of the write side: every command the
// platform handles, decorated once.
type Application struct {
	CreateTenant     Handler[CreateTenant, *tenant.Tenant]
	SuspendTenant    Handler[SuspendTenant, *tenant.Tenant]
	ReactivateTenant Handler[ReactivateTenant, *tenant.Tenant]
	SetTenantLimits  Handler[SetTenantLimits, *limits.Policy]
	SetUserLimits    Handler[SetUserLimits, *limits.Policy]
	CreateCampaign   Handler[CreateCampaign, *campaign.Campaign]
	UpdateCampaign   Handler[UpdateCampaign, *campaign.Campaign]
	ActivateCampaign Handler[ActivateCampaign, *campaign.Campaign]
	PauseCampaign    Handler[PauseCampaign, *campaign.Campaign]
	EndCampaign      Handler[EndCampaign, *campaign.Campaign]
	// The cohort commands are nil in an application built without
	// MemberSets and CohortJobs.
	CreateCohort                Handler[CreateCohort, *cohort.Cohort]
	RecomputeCohort             Handler[RecomputeCohort, CohortJob]
	CompleteCohortRecomputation Handler[CompleteCohortRecomputation, *cohort.Cohort]
}

// Dependencies are what the command handlers need.
type Dependencies struct {
	Store          EventStore
	Clock          Clock
	TenantDefaults TenantDefaults
	Logger         *slog.Logger
	Recorder       Recorder
	// RuleSchema checks campaign rules against the published schema.
	RuleSchema RuleSchema
	// MemberSets stores cohort member lists (cohort commands only).
	MemberSets MemberSets
	// CohortJobs queues cohort recomputations (cohort commands only).
	CohortJobs CohortJobQueue
}

// NewApplication builds every handler and decorates it with logging and metrics.
func NewApplication(d Dependencies) Application {
	return Application{
		CreateTenant:     Decorate("CreateTenant", NewCreateTenantHandler(d.Store, d.Clock, d.TenantDefaults), d.Logger, d.Recorder),
		SuspendTenant:    Decorate("SuspendTenant", NewSuspendTenantHandler(d.Store, d.Clock), d.Logger, d.Recorder),
		ReactivateTenant: Decorate("ReactivateTenant", NewReactivateTenantHandler(d.Store, d.Clock), d.Logger, d.Recorder),
		SetTenantLimits:  Decorate("SetTenantLimits", NewSetTenantLimitsHandler(d.Store, d.Clock), d.Logger, d.Recorder),
		SetUserLimits:    Decorate("SetUserLimits", NewSetUserLimitsHandler(d.Store, d.Clock), d.Logger, d.Recorder),
		CreateCampaign:   Decorate("CreateCampaign", NewCreateCampaignHandler(d.Store, d.Clock, d.RuleSchema), d.Logger, d.Recorder),
		UpdateCampaign:   Decorate("UpdateCampaign", NewUpdateCampaignHandler(d.Store, d.Clock, d.RuleSchema), d.Logger, d.Recorder),
		ActivateCampaign: Decorate("ActivateCampaign", NewActivateCampaignHandler(d.Store, d.Clock), d.Logger, d.Recorder),
		PauseCampaign:    Decorate("PauseCampaign", NewPauseCampaignHandler(d.Store, d.Clock), d.Logger, d.Recorder),
		EndCampaign:      Decorate("EndCampaign", NewEndCampaignHandler(d.Store, d.Clock), d.Logger, d.Recorder),
		CreateCohort: decorateIf(d.hasCohorts(), "CreateCohort", func() Handler[CreateCohort, *cohort.Cohort] {
			return NewCreateCohortHandler(d.Store, d.Clock, d.MemberSets, d.CohortJobs)
		}, d),
		RecomputeCohort: decorateIf(d.hasCohorts(), "RecomputeCohort", func() Handler[RecomputeCohort, CohortJob] {
			return NewRecomputeCohortHandler(d.Store, d.Clock, d.CohortJobs)
		}, d),
		CompleteCohortRecomputation: decorateIf(d.hasCohorts(), "CompleteCohortRecomputation", func() Handler[CompleteCohortRecomputation, *cohort.Cohort] {
			return NewCompleteCohortRecomputationHandler(d.Store, d.Clock)
		}, d),
	}
}
