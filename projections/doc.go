// Package projections builds the read models from recorded domain events.
//
// A projection is a Projector: a stable name, the aggregates whose domain
// topics it reads, and a Handle that applies one delivery. The logic of each
// read model is a pure evolve function (current view, event) -> next view;
// the store that implements the projection's port owns the transaction in
// which the view and the projection's checkpoint are written together.
//
// Every projection must be idempotent: Kafka and the outbox deliver at least
// once, so the same event can arrive again (a relay retry, a consumer
// restart). Views carry the stream version they were built from, and an event
// at or below it changes nothing. Checkpoints record where a projection is, for
// lag and replay; they are not what makes it idempotent, because a broker's
// offsets can start again (the embedded broker forgets everything on restart)
// while stream versions never do.
package projections
