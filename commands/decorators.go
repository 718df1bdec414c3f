package commands

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/incentives-platform/incentives/domain"
)

// Recorder receives one observation per handled command. Implementations must
// be safe for concurrent use.
type Recorder interface {
	ObserveCommand(command string, took time.Duration, outcome string)
}

// Outcomes a Recorder sees.
const (
	OutcomeOK       = "ok"
	OutcomeRejected = "rejected" // the domain refused it: bad input, conflict, not found
	OutcomeFailed   = "failed"   // something broke: the store, the network
)

// Outcome classifies a command's error.
func Outcome(err error) string {
	var ve *domain.ValidationError
	switch {
	case err == nil:
		return OutcomeOK
	case errors.As(err, &ve), errors.Is(err, domain.ErrNotFound), errors.Is(err, domain.ErrVersionConflict),
		errors.Is(err, domain.ErrInvalidTransition):
		return OutcomeRejected
	default:
		return OutcomeFailed
	}
}

// Decorate wraps h so every call is measured by rec and failures are logged.
// Rejections are the caller's business (the API answers them) and are not
// logged; successes are already in the caller's own access log.
func Decorate[C, R any](name string, h Handler[C, R], logger *slog.Logger, rec Recorder) Handler[C, R] {
	return decorated[C, R]{name: name, next: h, logger: logger, rec: rec}
}

type decorated[C, R any] struct {
	name   string
	next   Handler[C, R]
	logger *slog.Logger
	rec    Recorder
}

func (d decorated[C, R]) Handle(ctx context.Context, cmd C) (R, error) {
	start := time.Now()
	r, err := d.next.Handle(ctx, cmd)
	outcome := Outcome(err)
	d.rec.ObserveCommand(d.name, time.Since(start), outcome)
	if outcome == OutcomeFailed {
		d.logger.ErrorContext(ctx, "command failed", "command", d.name, "correlation_id", OriginFrom(ctx).CorrelationID, "err", err)
	}
	return r, err
}
