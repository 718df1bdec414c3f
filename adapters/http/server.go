package http

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/adapters/auth"
	"github.com/incentives-platform/incentives/commands"
	"github.com/incentives-platform/incentives/projections"
)

// Config configures the API.
type Config struct {
	// MaxBodyBytes caps request bodies. Default 1 MiB.
	MaxBodyBytes int64
	// CohortMaxBodyBytes caps POST /cohorts bodies, which stream up to a
	// million user ids. Default 64 MiB.
	CohortMaxBodyBytes int64
	// ReadyTimeout bounds each readiness check. Default 2s.
	ReadyTimeout time.Duration
	// ReadWait bounds how long a read with X-Min-Version waits for its
	// projection to catch up. Default 5s.
	ReadWait time.Duration
	// Idempotency configures Idempotency-Key handling (idempotency.go).
	Idempotency IdempotencyConfig
}

func (c *Config) setDefaults() {
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.CohortMaxBodyBytes == 0 {
		c.CohortMaxBodyBytes = 64 << 20
	}
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = 2 * time.Second
	}
	if c.ReadWait == 0 {
		c.ReadWait = 5 * time.Second
	}
	c.Idempotency.setDefaults()
}

// TenantQueries reads the tenant read models. Errors: domain.ErrNotFound.
type TenantQueries interface {
	Tenant(ctx context.Context, id uuid.UUID) (projections.TenantView, error)
	ListTenants(ctx context.Context, after projections.TenantKey, limit int) ([]projections.TenantView, error)
	Limits(ctx context.Context, tenantID uuid.UUID) (projections.LimitsView, error)
}

// Verifier checks bearer tokens; errors wrap auth.ErrInvalidToken.
type Verifier interface {
	Verify(token string) (auth.Principal, error)
}

// Observer records each request's route, status and latency.
type Observer interface {
	ObserveRequest(method, route string, status int, took time.Duration)
}

// Check is one readiness check: a dependency that must answer.
type Check struct {
	Name  string
	Check func(context.Context) error
}

// Deps are what the API needs. All are required except Metrics.
type Deps struct {
	Commands commands.Application
	Tenants  TenantQueries
	// Campaigns serves campaign reads and the engine's campaign search.
	Campaigns CampaignQueries
	// Cohorts serves cohort and cohort job reads.
	Cohorts CohortQueries
	// Decisions serves the engine's decisions about a user.
	Decisions DecisionQueries
	Verifier  Verifier
	Observer  Observer
	// Idempotency remembers the answers of POSTs sent with an Idempotency-Key.
	Idempotency IdempotencyStore
	// Metrics serves /metrics; nil serves nothing there.
	Metrics http.Handler
	Checks  []Check
	Logger  *slog.Logger
}

// Validate reports every missing dependency.
func (d Deps) Validate() error {
	var errs []error
	if d.Commands.CreateTenant == nil {
		errs = append(errs, errors.New("http: Commands are required"))
	}
	if d.Campaigns == nil {
		errs = append(errs, errors.New("http: Campaigns queries are required"))
	}
	if d.Cohorts == nil || d.Commands.CreateCohort == nil {
		errs = append(errs, errors.New("http: Cohorts queries and cohort commands are required"))
	}
	if d.Decisions == nil {
		errs = append(errs, errors.New("http: Decisions queries are required"))
	}
	if d.Tenants == nil {
		errs = append(errs, errors.New("http: Tenants queries are required"))
	}
	if d.Verifier == nil {
		errs = append(errs, errors.New("http: Verifier is required"))
	}
	if d.Idempotency == nil {
		errs = append(errs, errors.New("http: Idempotency store is required"))
	}
	if d.Observer == nil {
		errs = append(errs, errors.New("http: Observer is required"))
	}
	if d.Logger == nil {
		errs = append(errs, errors.New("http: Logger is required"))
	}
	return errors.Join(errs...)
}

// Server is the REST API. It is safe for concurrent use.
type Server struct {
	cfg Config
	Deps
	logger   *slog.Logger
	router   chi.Router
	draining chan struct{}
}

// New returns the API's handler.
func New(cfg Config, deps Deps) (*Server, error) {
	cfg.setDefaults()
	if err := deps.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, Deps: deps, logger: deps.Logger, draining: make(chan struct{})}
	s.router = s.routes()
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

// Drain makes /readyz answer 503 from now on, so load balancers stop sending
// new requests while in-flight ones finish.
func (s *Server) Drain() {
	select {
	case <-s.draining:
	default:
		close(s.draining)
	}
}

func (s *Server) routes() chi.Router {
	r := chi.NewRouter()
	r.Use(s.requestID, s.accessLog, s.recoverer)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, &httpError{status: http.StatusNotFound, typ: typeNotFound, title: "Not found", detail: "no route " + r.URL.Path})
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, &httpError{status: http.StatusMethodNotAllowed, typ: typeMethodNotAllowed, title: "Method not allowed",
			detail: r.Method + " is not allowed on " + r.URL.Path})
	})
	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)
	r.Get("/openapi.json", s.openAPI)
	if s.Metrics != nil {
		r.Method(http.MethodGet, "/metrics", s.Metrics)
	}
	r.Route("/api/v1", func(r chi.Router) {
		r.Use(s.authenticate)
		r.Use(s.idempotency) // POSTs only; after authenticate, as keys are the caller's
		r.Post("/tenants", s.createTenant)
		r.Get("/tenants", s.listTenants)
		r.Get("/tenants/{tenantId}", s.getTenant)
		r.Post("/tenants/{tenantId}:suspend", s.suspendTenant)
		r.Post("/tenants/{tenantId}:reactivate", s.reactivateTenant)
		r.Get("/tenants/{tenantId}/limits", s.getLimits)
		r.Post("/tenants/{tenantId}/limits", s.setTenantLimits)
		r.Post("/tenants/{tenantId}/user-limits", s.setUserLimits)
		r.Get("/tenants/{tenantId}/users/{userId}/decisions", s.listUserDecisions)
		r.Get("/tenants/{tenantId}/campaigns", s.listCampaigns)
		r.Post("/campaigns", s.createCampaign)
		r.Get("/campaigns/search", s.searchCampaigns)
		r.Get("/campaigns/{campaignId}", s.getCampaign)
		r.Put("/campaigns/{campaignId}", s.updateCampaign)
		r.Post("/campaigns/{campaignId}:activate", s.activateCampaign)
		r.Post("/campaigns/{campaignId}:pause", s.pauseCampaign)
		r.Post("/cohorts", s.createCohort)
		r.Get("/cohorts/{cohortId}", s.getCohort)
		r.Post("/cohorts/{cohortId}:recompute", s.recomputeCohort)
		r.Get("/cohorts/{cohortId}/jobs/{jobId}", s.getCohortJob)
	})
	return r
}
