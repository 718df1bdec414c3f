// Package http is the platform's REST API on chi: JSON in and out, RFC 9457
// problem+json for every error, bearer-JWT authentication, request ids,
// access logs and metrics. Callers import it as httpapi.
//
// Errors become HTTP statuses in exactly one place (problem.go). Handlers
// decode and check their input, call a command or a query, and encode the
// result; they decide nothing the domain decides.
package http
