package http

import "github.com/go-chi/chi/v5"

// RoutesForTest returns the router of a Server built around deps as New
// builds it, but without New's check that every dependency is there: enough
// to walk the routes, and to serve the requests that reach no missing
// dependency (the public endpoints, and anything the authentication refuses).
// Keep it in step with New.
func RoutesForTest(deps Deps) chi.Router {
	s := &Server{Deps: deps, logger: deps.Logger, draining: make(chan struct{})}
	s.cfg.setDefaults()
	return s.routes()
}
