package main

import (
	"github.com/incentives-platform/incentives/adapters/postgres"
	"github.com/incentives-platform/incentives/commands"
)

// buildCohortRecomputer gives the projector role the cohort job runner and
// its schedule. They belong with the projections: both are background work
// on the database that scales out by running more projector processes, and
// the queue (SKIP LOCKED) lets any number of them share the jobs.
func (a *App) buildCohortRecomputer(store commands.EventStore) error {
	if !a.cfg.hasRole(roleProjector) {
		return nil
	}
	r, err := commands.NewCohortRecomputer(commands.CohortRecomputerConfig{
		Jobs: postgres.NewCohortJobs(a.db), Actions: postgres.NewActionLog(a.db), Members: postgres.NewMemberSets(a.db),
		Store: store, Complete: a.commands.CompleteCohortRecomputation, Recompute: a.commands.RecomputeCohort,
		Logger: a.logger.With("component", "cohort-recomputer"), Every: a.cfg.CohortRecomputeEvery,
	})
	if err != nil {
		return err
	}
	a.recomputer = r
	return nil
}
