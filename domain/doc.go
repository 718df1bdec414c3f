// Package domain holds what the incentives platform knows and decides: the
// aggregates (one sub-package each), their events, and the errors their
// decisions return.
//
// # Rules of this package tree
//
// Nothing here does I/O or imports an adapter or a framework. Time and ids come
// in as arguments (there is no time.Now or uuid.New below domain/), so every
// decision is a pure function of its inputs and replays the same way forever.
// Events are plain structs named by a stable, versioned EventType string
// ("tenant.created.v1") declared next to them; the adapters map them to their
// wire and storage forms.
//
// An aggregate follows decide-then-apply: a command method checks the rules and
// returns the events it would record (or a documented error), and Apply changes
// state from one event without failing. Rehydrating from history runs the same
// Apply, so what was decided once is what replay rebuilds.
package domain
