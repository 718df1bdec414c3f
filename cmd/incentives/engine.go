package main

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/adapters/avro"
	"github.com/incentives-platform/incentives/adapters/kafka"
	"github.com/incentives-platform/incentives/adapters/postgres"
	"github.com/incentives-platform/incentives/adapters/redis"
	engineapp "github.com/incentives-platform/incentives/commands/engine"
	"github.com/incentives-platform/incentives/domain/engine"
)

// engineRole is the `engine` role: the catalog it decides with, the batch
// consumer of tenant-events, and the republisher of incentives committed
// but not yet published.
type engineRole struct {
	catalog     *engineapp.Catalog
	consumer    *kafka.EngineConsumer
	republisher *engineapp.Republisher
}

// republish settings: how often to look, and how long an incentive may stay
// unpublished before it counts as lost by a dead process rather than in the
// hands of a live one.
const (
	republishEvery = 5 * time.Second
	republishGrace = 30 * time.Second
)

func (a *App) buildEngine(registry *avro.Registry, store *postgres.EventStore) error {
	limiter, err := redis.NewLimiter(a.redis, redis.LimiterConfig{})
	if err != nil {
		return err
	}
	logger := a.logger.With("component", "engine")
	catalog := engineapp.NewCatalog(postgres.NewEngineCatalog(a.db, logger), a.cfg.EngineCatalogRefresh, logger)
	hot, err := a.hotFilter()
	if err != nil {
		return err
	}
	decide := engineapp.New(postgres.NewEngineStore(a.db, store), catalog, redis.EngineLimits{Limiter: limiter},
		engineapp.WithHotProgress(hot, redis.NewHotProgress(a.redis)), engineapp.WithLogger(logger))
	publisher, err := kafka.NewIncentivePublisher(kafka.IncentivePublisherConfig{Brokers: a.brokers, Registry: registry})
	if err != nil {
		return err
	}
	a.closers = append(a.closers, func() error { publisher.Close(); return nil })
	published := postgres.NewPublishLog(a.db)
	consumer, err := kafka.NewEngineConsumer(kafka.EngineConsumerConfig{
		Brokers: a.brokers, Registry: registry, Logger: logger, Observer: a.metrics,
		MaxPollRecords: a.cfg.EngineMaxBatch, SessionTimeout: a.cfg.EngineSessionTimeout,
		Handler: decide.Process, Publisher: publisher,
		AfterPublish: func(ctx context.Context, incentives []engine.Incentive) error {
			return published.MarkPublished(ctx, incentiveIDs(incentives), time.Now())
		},
	})
	if err != nil {
		return fmt.Errorf("engine consumer: %w", err)
	}
	a.engine = &engineRole{
		catalog: catalog, consumer: consumer,
		republisher: engineapp.NewRepublisher(published, publisher, time.Now, republishEvery, republishGrace, logger),
	}
	return nil
}

func incentiveIDs(incentives []engine.Incentive) []uuid.UUID {
	ids := make([]uuid.UUID, len(incentives))
	for i, in := range incentives {
		ids[i] = in.ID
	}
	return ids
}

// hotFilter returns the hot-campaign filter and registers its metrics, or
// nil when HOT_CAMPAIGN_ENABLED is off. Off, the engine still reads the
// progress Redis holds and moves it to the database as users play.
func (a *App) hotFilter() (engineapp.HotFilter, error) {
	if !a.cfg.HotCampaignEnabled {
		return nil, nil
	}
	h, err := redis.NewHotCampaigns(a.redis, a.cfg.hotCampaigns())
	if err != nil {
		return nil, err
	}
	a.metrics.GaugeFunc("campaign_hot_ratio",
		"Share of the campaigns this engine saw in the current sketch window that are hot (their quest progress in Redis).", h.HotRatio)
	a.metrics.GaugeFunc("cms_false_positive_rate",
		"Of the sampled campaigns below the hot threshold by their exact shadow counts this window, the share the count-min sketch estimates at or over it.",
		h.FalsePositiveRate)
	a.metrics.GaugeFunc("cms_memory_bytes",
		"Redis memory of the current window's count-min sketches of the tenants this engine saw (MEMORY USAGE), read at scrape.", func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			n, err := h.SketchMemory(ctx)
			if err != nil {
				return math.NaN()
			}
			return float64(n)
		})
	return h, nil
}
