// Package commands is the platform's write side: one handler per command, each
// loading an aggregate's history, letting the domain decide, and appending the
// resulting events with optimistic concurrency. The engine that turns action
// events into rewards lives here too (as it arrives).
//
// Handlers are safe for concurrent use. They never log or measure their own
// outcome: logging and metrics are decorators applied once, in wiring
// (decorators.go). Who asked and why travels in the context (WithOrigin) and
// is recorded with every event.
//
// The interfaces handlers depend on (EventStore, Clock) are declared here, by
// their user; adapters implement them.
package commands
