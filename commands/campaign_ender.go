package commands

import (
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/incentives-platform/incentives/domain/campaign"
)

// DueCampaigns finds campaigns whose endAt has passed but which are still
// ACTIVE or PAUSED. Implementations must be safe for concurrent use.
type DueCampaigns interface {
	DueToEnd(ctx context.Context, now time.Time, limit int) ([]uuid.UUID, error)
}

// CampaignEnder ends campaigns once their endAt passes (DRAFT → ACTIVE ⇄
// PAUSED → ENDED "by itself"). It polls the campaign read model and sends
// EndCampaign for each due campaign. Several processes may run one: the
// command decides from the event stream, so a campaign two of them end at
// once is ended once, and the loser's append is a version conflict it
// retries into a no-op.
//
// Ending is bookkeeping, not a guard: the engine never rewards outside
// [startAt, endAt) whatever the status says, so the poll interval only
// delays when the status reads ENDED.
type CampaignEnder struct {
	due    DueCampaigns
	end    Handler[EndCampaign, *campaign.Campaign]
	clock  Clock
	every  time.Duration
	logger *slog.Logger
}

// NewCampaignEnder returns an ender polling every interval; it panics on a
// nil dependency or a non-positive interval.
func NewCampaignEnder(due DueCampaigns, end Handler[EndCampaign, *campaign.Campaign], clock Clock, every time.Duration, logger *slog.Logger) *CampaignEnder {
	if due == nil || end == nil || clock == nil || logger == nil || every <= 0 {
		panic("commands: NewCampaignEnder needs its dependencies and a positive interval")
	}
	return &CampaignEnder{due: due, end: end, clock: clock, every: every, logger: logger}
}

// endBatch bounds one pass; a longer backlog is taken on the next.
const endBatch = 500

// Run ends due campaigns every interval until ctx ends.
func (e *CampaignEnder) Run(ctx context.Context) error {
	t := time.NewTicker(e.every)
	defer t.Stop()
	for {
		if _, err := e.EndDue(ctx); err != nil && ctx.Err() == nil {
			e.logger.WarnContext(ctx, "ending due campaigns failed; will retry", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// EndDue ends the campaigns due now and returns how many it ended.
func (e *CampaignEnder) EndDue(ctx context.Context) (int, error) {
	ids, err := e.due.DueToEnd(ctx, e.clock.Now(), endBatch)
	if err != nil {
		return 0, err
	}
	ctx = WithOrigin(ctx, Origin{Actor: "system:campaign-ender"})
	ended := 0
	for _, id := range ids {
		c, err := e.end.Handle(ctx, EndCampaign{CampaignID: id})
		if err != nil {
			return ended, err
		}
		if c.Status() == campaign.StatusEnded {
			ended++
		}
	}
	return ended, nil
}
