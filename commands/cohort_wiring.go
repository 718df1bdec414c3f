package commands

// hasCohorts reports whether d can build the cohort commands. Applications
// that handle no cohorts (tests of other commands) leave their dependencies
// out and get no cohort handlers.
func (d Dependencies) hasCohorts() bool { return d.MemberSets != nil && d.CohortJobs != nil }

// decorateIf returns the decorated handler build makes, or nil unless ok.
func decorateIf[C, R any](ok bool, name string, build func() Handler[C, R], d Dependencies) Handler[C, R] {
	if !ok {
		return nil
	}
	return Decorate(name, build(), d.Logger, d.Recorder)
}
