package http

import (
	"context"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/commands"
	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/cohort"
	"github.com/incentives-platform/incentives/projections"
)

// CohortQueries reads cohorts and their recomputation jobs. Errors:
// domain.ErrNotFound.
type CohortQueries interface {
	Cohort(ctx context.Context, id uuid.UUID) (projections.CohortView, error)
	CohortJob(ctx context.Context, jobID uuid.UUID) (commands.CohortJob, error)
	// LastCohortJob returns the cohort's newest job; ok is false if it has none.
	LastCohortJob(ctx context.Context, cohortID uuid.UUID) (job commands.CohortJob, ok bool, err error)
}

// cohortUploadTimeout replaces the server's 30 s read and write timeouts for
// POST /cohorts: a 64 MiB list of ids takes longer than that to send over a
// modest link, and then a few seconds to store.
const cohortUploadTimeout = 90 * time.Second

// cohortDTO is a cohort as the API shows it.
type cohortDTO struct {
	CohortID    string        `json:"cohortId"`
	TenantID    string        `json:"tenantId"`
	Name        string        `json:"name"`
	Kind        string        `json:"kind"`
	Rule        *string       `json:"rule"`
	MemberCount int64         `json:"memberCount"`
	ComputedAt  *time.Time    `json:"computedAt"`
	CreatedAt   time.Time     `json:"createdAt"`
	Version     int64         `json:"version"`
	LastJob     *cohortJobDTO `json:"lastJob"`
}

// cohortJobDTO is a recomputation job as the API shows it.
type cohortJobDTO struct {
	JobID          string  `json:"jobId"`
	CohortID       string  `json:"cohortId"`
	Status         string  `json:"status"`
	ProcessedUsers int64   `json:"processedUsers"`
	TotalUsers     int64   `json:"totalUsers"`
	Progress       float64 `json:"progress"`
	MemberCount    *int64  `json:"memberCount"`
	// CohortVersion is the cohort's version with the job's members: read the
	// cohort with X-Min-Version set to it to see them.
	CohortVersion *int64     `json:"cohortVersion"`
	Error         *string    `json:"error"`
	CreatedAt     time.Time  `json:"createdAt"`
	StartedAt     *time.Time `json:"startedAt"`
	FinishedAt    *time.Time `json:"finishedAt"`
}

func optionalString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func cohortFromAggregate(c *cohort.Cohort, job *cohortJobDTO) cohortDTO {
	def := c.Definition()
	return cohortDTO{CohortID: c.ID().String(), TenantID: c.TenantID().String(), Name: def.Name, Kind: string(def.Kind),
		Rule: optionalString(def.Rule), MemberCount: c.Members().Count, ComputedAt: optionalTime(c.ComputedAt()),
		CreatedAt: c.CreatedAt(), Version: c.Version(), LastJob: job}
}

func cohortFromView(v projections.CohortView, job *cohortJobDTO) cohortDTO {
	return cohortDTO{CohortID: v.CohortID.String(), TenantID: v.TenantID.String(), Name: v.Name, Kind: string(v.Kind),
		Rule: optionalString(v.Rule), MemberCount: v.Members.Count, ComputedAt: optionalTime(v.ComputedAt),
		CreatedAt: v.CreatedAt, Version: v.Version, LastJob: job}
}

func cohortJobFrom(j commands.CohortJob) *cohortJobDTO {
	d := &cohortJobDTO{JobID: j.JobID.String(), CohortID: j.CohortID.String(), Status: string(j.Status),
		ProcessedUsers: j.ProcessedUsers, TotalUsers: j.TotalUsers, Progress: j.Progress(), Error: optionalString(j.Error),
		CreatedAt: j.CreatedAt, StartedAt: optionalTime(j.StartedAt), FinishedAt: optionalTime(j.FinishedAt)}
	if j.Status == commands.JobSucceeded {
		count, version := j.Members.Count, j.CohortVersion
		d.MemberCount, d.CohortVersion = &count, &version
	}
	return d
}

// lastCohortJob returns the cohort's newest job for rendering, or nil.
func (s *Server) lastCohortJob(ctx context.Context, cohortID uuid.UUID) (*cohortJobDTO, error) {
	j, ok, err := s.Cohorts.LastCohortJob(ctx, cohortID)
	if err != nil || !ok {
		return nil, err
	}
	return cohortJobFrom(j), nil
}

func cohortID(r *http.Request) (uuid.UUID, error) {
	return parseUUID("cohortId", chi.URLParam(r, "cohortId"))
}

// createCohort streams the body into the CreateCohort command: the member
// ids go to storage a batch at a time while the body is still arriving.
func (s *Server) createCohort(w http.ResponseWriter, r *http.Request) {
	acting, err := actingTenant(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		s.writeError(w, r, &httpError{status: http.StatusUnsupportedMediaType, typ: typeUnsupportedMedia, title: "Unsupported media type",
			detail: "send the body as Content-Type: application/json"})
		return
	}
	rc := http.NewResponseController(w)
	// Not every writer supports deadlines (tests' recorders); the server's own do.
	_ = rc.SetReadDeadline(time.Now().Add(cohortUploadTimeout))
	_ = rc.SetWriteDeadline(time.Now().Add(cohortUploadTimeout + 10*time.Second))

	body := http.MaxBytesReader(w, r.Body, s.cfg.CohortMaxBodyBytes)
	in := newCohortBody(body, s.cfg.CohortMaxBodyBytes)
	c, err := s.Commands.CreateCohort.Handle(r.Context(), commands.CreateCohort{CohortID: newResourceID(r), TenantID: acting,
		Read: func(_ context.Context, add func([]string) error) (commands.CohortSpec, error) { return in.read(add) }})
	if err != nil {
		// A client still sending a refused list gets its answer instead of a
		// reset connection; MaxBytesReader bounds what this reads.
		_, _ = io.Copy(io.Discard, body)
		s.writeError(w, r, err)
		return
	}
	job, err := s.lastCohortJob(r.Context(), c.ID())
	if err != nil {
		s.logger.WarnContext(r.Context(), "read the first job of a new cohort", "cohort_id", c.ID(), "err", err)
	}
	w.Header().Set("Location", "/api/v1/cohorts/"+c.ID().String())
	s.writeVersioned(w, r, http.StatusCreated, c.Version(), cohortFromAggregate(c, job))
}

func (s *Server) getCohort(w http.ResponseWriter, r *http.Request) {
	acting, err := actingTenant(r)
	var id uuid.UUID
	if err == nil {
		id, err = cohortID(r)
	}
	var v projections.CohortView
	if err == nil {
		err = s.readAtLeast(r, func() (int64, error) {
			var err error
			if v, err = s.Cohorts.Cohort(r.Context(), id); err == nil {
				// Checked before waiting for a version: how far another
				// tenant's cohort has got is not the caller's to learn either.
				err = requireOwner(acting, v.TenantID)
			}
			return v.Version, err
		})
	}
	var job *cohortJobDTO
	if err == nil {
		job, err = s.lastCohortJob(r.Context(), id)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeVersioned(w, r, http.StatusOK, v.Version, cohortFromView(v, job))
}

func (s *Server) recomputeCohort(w http.ResponseWriter, r *http.Request) {
	acting, err := actingTenant(r)
	var id uuid.UUID
	if err == nil {
		id, err = cohortID(r)
	}
	if err == nil {
		var in struct{}
		err = s.decodeJSON(w, r, &in, true)
	}
	var job commands.CohortJob
	if err == nil {
		job, err = s.Commands.RecomputeCohort.Handle(r.Context(), commands.RecomputeCohort{CohortID: id, TenantID: acting})
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// A job is a process, not a versioned resource: no ETag. Its
	// cohortVersion, once it succeeds, is the version to read the cohort at.
	w.Header().Set("Location", "/api/v1/cohorts/"+id.String()+"/jobs/"+job.JobID.String())
	s.writeJSON(w, r, http.StatusAccepted, cohortJobFrom(job))
}

func (s *Server) getCohortJob(w http.ResponseWriter, r *http.Request) {
	acting, err := actingTenant(r)
	var id, jobID uuid.UUID
	if err == nil {
		id, err = cohortID(r)
	}
	if err == nil {
		jobID, err = parseUUID("jobId", chi.URLParam(r, "jobId"))
	}
	var job commands.CohortJob
	if err == nil {
		job, err = s.Cohorts.CohortJob(r.Context(), jobID)
	}
	if err == nil && job.CohortID != id {
		err = domain.ErrNotFound
	}
	if err == nil {
		err = requireOwner(acting, job.TenantID)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, cohortJobFrom(job))
}
