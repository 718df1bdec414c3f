package engine

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/domain/engine"
)

// Catalog is the engine's in-memory view of the campaigns, tenants and
// cohorts, refreshed from the read models every interval: campaign and
// cohort changes reach the engine within a refresh plus the projections'
// lag, and no event costs a query to find its campaigns. Safe for
// concurrent use; readers see one whole snapshot or the next, never a mix.
type Catalog struct {
	source CatalogSource
	every  time.Duration
	logger *slog.Logger
	snap   atomic.Pointer[catalogIndex]
	loaded chan struct{}
}

type tenantAction struct {
	tenant uuid.UUID
	action string
}

// catalogIndex is a Snapshot indexed for the hot path.
type catalogIndex struct {
	byAction map[tenantAction][]engine.Campaign
	tenants  map[uuid.UUID]TenantState
	cohorts  map[uuid.UUID]uuid.UUID
}

// NewCatalog returns a catalog refreshed from source every interval; it
// panics on a nil dependency or a non-positive interval.
func NewCatalog(source CatalogSource, every time.Duration, logger *slog.Logger) *Catalog {
	if source == nil || logger == nil || every <= 0 {
		panic("engine: NewCatalog needs a source, a logger and a positive interval")
	}
	c := &Catalog{source: source, every: every, logger: logger, loaded: make(chan struct{})}
	c.snap.Store(index(Snapshot{}))
	return c
}

func index(s Snapshot) *catalogIndex {
	idx := &catalogIndex{byAction: map[tenantAction][]engine.Campaign{}, tenants: s.Tenants, cohorts: s.CohortMembers}
	for _, c := range s.Campaigns {
		for _, a := range c.Rule.Actions() {
			k := tenantAction{c.TenantID, a}
			idx.byAction[k] = append(idx.byAction[k], c)
		}
	}
	return idx
}

// Refresh loads a new snapshot and swaps it in.
func (c *Catalog) Refresh(ctx context.Context) error {
	s, err := c.source.LoadSnapshot(ctx)
	if err != nil {
		return err
	}
	c.snap.Store(index(s))
	select {
	case <-c.loaded:
	default:
		close(c.loaded)
	}
	return nil
}

// Loaded is closed once the first snapshot is in: before it, the engine
// would see no campaigns and decide nothing.
func (c *Catalog) Loaded() <-chan struct{} { return c.loaded }

// Run refreshes every interval until ctx ends. A failed refresh keeps the
// last snapshot and is retried at the next tick.
func (c *Catalog) Run(ctx context.Context) error {
	t := time.NewTicker(c.every)
	defer t.Stop()
	failing := false
	for {
		err := c.Refresh(ctx)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			c.logger.WarnContext(ctx, "catalog refresh failed; deciding with the last snapshot", "err", err)
			failing = true
		case err == nil && failing:
			c.logger.InfoContext(ctx, "catalog refresh recovered")
			failing = false
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (c *Catalog) current() *catalogIndex { return c.snap.Load() }

// campaigns returns the active campaigns of tenant listening to action.
func (i *catalogIndex) campaigns(tenant uuid.UUID, action string) []engine.Campaign {
	return i.byAction[tenantAction{tenant, action}]
}
