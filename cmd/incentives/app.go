package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"golang.org/x/sync/errgroup"

	"github.com/incentives-platform/incentives/adapters/auth"
	"github.com/incentives-platform/incentives/adapters/avro"
	httpapi "github.com/incentives-platform/incentives/adapters/http"
	"github.com/incentives-platform/incentives/adapters/jsonschema"
	"github.com/incentives-platform/incentives/adapters/kafka"
	"github.com/incentives-platform/incentives/adapters/metrics"
	"github.com/incentives-platform/incentives/adapters/postgres"
	"github.com/incentives-platform/incentives/adapters/redis"
	"github.com/incentives-platform/incentives/adapters/relay"
	"github.com/incentives-platform/incentives/commands"
	"github.com/incentives-platform/incentives/domain/campaign"
	"github.com/incentives-platform/incentives/domain/cohort"
	"github.com/incentives-platform/incentives/domain/incentive"
	"github.com/incentives-platform/incentives/domain/limits"
	"github.com/incentives-platform/incentives/domain/tenant"
	"github.com/incentives-platform/incentives/projections"
)

// domainAggregates are the aggregates whose events the platform publishes,
// each to ic.domain.<aggregate>.
var domainAggregates = []string{tenant.Aggregate, limits.Aggregate, campaign.Aggregate, cohort.Aggregate, incentive.Aggregate}

// App is one platform process: the roles of its Config, sharing one database
// pool, one Redis pool and one Kafka publisher. NewApp acquires everything,
// Run serves until its context ends and stops gracefully, Close releases.
type App struct {
	cfg     Config
	logger  *slog.Logger
	brokers []string
	closers []func() error

	broker    *kafka.Embedded
	db        *postgres.DB
	redis     *redis.Client
	metrics   *metrics.Metrics
	publisher message.Publisher

	commands commands.Application
	ender    *commands.CampaignEnder
	// recomputer runs cohort recomputation jobs (projector role).
	recomputer *commands.CohortRecomputer
	engine     *engineRole
	// ops serves /metrics and /healthz when no api role does.
	ops *opsServer
	dcm *dcmRole

	api      *httpapi.Server
	httpSrv  *http.Server
	httpLn   net.Listener
	router   *message.Router
	relay    *relay.Relay
	ready    chan struct{}
	runStart time.Time
}

// NewApp acquires what cfg's roles need. On error it releases what it got.
func NewApp(ctx context.Context, cfg Config, logger *slog.Logger) (_ *App, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, logger: logger, ready: make(chan struct{}), metrics: metrics.New()}
	defer func() {
		if err != nil {
			_ = a.Close()
		}
	}()
	if err := a.openKafka(ctx); err != nil {
		return nil, err
	}
	if err := a.openPostgres(ctx); err != nil {
		return nil, err
	}
	if cfg.hasRole(roleAPI) || cfg.hasRole(roleEngine) || cfg.hasRole(roleProjector) {
		if a.redis, err = redis.Open(ctx, cfg.RedisURL); err != nil {
			return nil, err
		}
		a.closers = append(a.closers, a.redis.Close)
	}
	registry, codec, err := avro.LoadPlatform()
	if err != nil {
		return nil, err
	}
	messages := kafka.DomainMessages{Codec: codec}
	// watermill narrates every subscription at info; that is debug detail here.
	wlog := watermill.NewSlogLoggerWithLevelMapping(logger.With("component", "watermill"),
		map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
	if a.publisher, err = kafka.NewPublisher(a.brokers, wlog); err != nil {
		return nil, err
	}
	a.closers = append(a.closers, a.publisher.Close)

	if cfg.hasRole(roleRelay) {
		if err := a.buildRelay(wlog); err != nil {
			return nil, err
		}
	}
	store, err := postgres.NewEventStore(a.db, postgres.EventStoreConfig{Codec: codec, Outbox: messages})
	if err != nil {
		return nil, err
	}
	if cfg.hasRole(roleAPI) || cfg.hasRole(roleProjector) {
		if err := a.buildCommands(store); err != nil {
			return nil, err
		}
	}
	if cfg.hasRole(roleEngine) {
		if err := a.buildEngine(registry, store); err != nil {
			return nil, err
		}
	}
	if cfg.hasRole(roleProjector) {
		if err := a.buildProjections(messages, wlog); err != nil {
			return nil, err
		}
	}
	if cfg.hasRole(roleAPI) {
		if err := a.buildAPI(); err != nil {
			return nil, err
		}
	}
	if cfg.hasRole(roleDCM) {
		if err := a.buildDCM(registry, wlog); err != nil {
			return nil, err
		}
	}
	if !cfg.hasRole(roleAPI) {
		if err := a.buildOps(); err != nil {
			return nil, err
		}
	}
	return a, nil
}

func (a *App) openKafka(ctx context.Context) error {
	if a.brokers = a.cfg.brokerList(); a.brokers == nil {
		b, err := kafka.StartEmbedded(kafka.EmbeddedConfig{Addr: a.cfg.KafkaEmbeddedAddr, Partitions: a.cfg.KafkaPartitions})
		if err != nil {
			return err
		}
		a.broker, a.brokers = b, b.Brokers()
		a.closers = append(a.closers, func() error { b.Close(); return nil })
	}
	topics := []kafka.TopicSpec{
		{Name: kafka.TenantEventsTopic, Partitions: int32(a.cfg.KafkaPartitions)},
		{Name: kafka.IncentiveGeneratedTopic, Partitions: int32(a.cfg.KafkaPartitions)},
		{Name: kafka.IncentivesChangeTopic, Partitions: int32(a.cfg.KafkaPartitions)},
	}
	for _, agg := range domainAggregates {
		topics = append(topics, kafka.TopicSpec{Name: kafka.DomainTopic(agg), Partitions: int32(a.cfg.KafkaPartitions)})
	}
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := kafka.EnsureTopics(tctx, a.brokers, topics); err != nil {
		return fmt.Errorf("kafka at %s: %w", strings.Join(a.brokers, ","), err)
	}
	return nil
}

func (a *App) openPostgres(ctx context.Context) error {
	if a.cfg.Migrate {
		created, err := postgres.EnsureDatabase(ctx, a.cfg.DatabaseURL)
		if err != nil {
			return err
		}
		if created {
			a.logger.Info("database created")
		}
	}
	db, err := postgres.Open(ctx, a.cfg.DatabaseURL)
	if err != nil {
		if strings.Contains(err.Error(), "does not exist") {
			err = fmt.Errorf("%w (run `incentives migrate` or start with --migrate)", err)
		}
		return err
	}
	a.db = db
	a.closers = append(a.closers, db.Close)
	if a.cfg.Migrate {
		if _, err := postgres.Migrate(ctx, db, a.logger); err != nil {
			return err
		}
	}
	return nil
}

func (a *App) buildRelay(wlog watermill.LoggerAdapter) error {
	outbox, err := postgres.NewOutboxSubscriber(a.db, postgres.OutboxSubscriberConfig{}, wlog)
	if err != nil {
		return err
	}
	a.relay, err = relay.New(relay.Config{
		Outbox: outbox, Publisher: a.publisher, OutboxTopic: postgres.OutboxTopic,
		Pruner: a.db, Keep: a.cfg.OutboxKeep, Logger: a.logger.With("component", "relay"),
	})
	if err != nil {
		return err
	}
	a.metrics.GaugeFunc("incentives_outbox_backlog", "Outbox rows not yet relayed to Kafka.", func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		n, err := a.db.OutboxBacklog(ctx)
		if err != nil {
			return -1
		}
		return float64(n)
	})
	return nil
}

func (a *App) buildProjections(messages kafka.DomainMessages, wlog watermill.LoggerAdapter) error {
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: a.cfg.ShutdownTimeout}, wlog)
	if err != nil {
		return err
	}
	a.router = router
	campaigns := postgres.NewCampaigns(a.db)
	a.ender = commands.NewCampaignEnder(campaigns, a.commands.EndCampaign, commands.SystemClock{}, a.cfg.CampaignEndEvery,
		a.logger.With("component", "campaign-ender"))
	return kafka.AddProjections(router, kafka.ProjectionsConfig{Brokers: a.brokers, Messages: messages, DLQ: a.publisher, Logger: wlog},
		projections.NewTenants(postgres.NewTenants(a.db)), projections.NewCampaigns(campaigns),
		projections.NewCohorts(postgres.NewCohorts(a.db)),
		projections.NewIncentives(postgres.NewIncentiveViews(a.db, kafka.IncentiveChanges{Database: a.db.DatabaseName()})),
		projections.NewUserRewards(redis.NewUserRewards(a.redis)))
}

// buildCommands builds the write side, which the API serves and the
// projector's schedulers (ending campaigns) use.
func (a *App) buildCommands(store *postgres.EventStore) error {
	ruleSchema, err := jsonschema.LoadRuleSchema()
	if err != nil {
		return err
	}
	perTenant, perUser := a.cfg.TenantMaxPerDay, a.cfg.UserMaxPerDay
	defaults := commands.TenantDefaults{Tenant: limits.Caps{PerDay: &perTenant}, User: limits.Caps{PerDay: &perUser}}
	a.commands = commands.NewApplication(commands.Dependencies{
		Store: store, Clock: commands.SystemClock{}, TenantDefaults: defaults,
		Logger: a.logger.With("component", "commands"), Recorder: a.metrics, RuleSchema: ruleSchema,
		MemberSets: postgres.NewMemberSets(a.db), CohortJobs: postgres.NewCohortJobs(a.db),
	})
	return a.buildCohortRecomputer(store)
}

func (a *App) buildAPI() error {
	verifier, err := auth.New([]byte(a.cfg.JWTSecret), time.Now)
	if err != nil {
		return err
	}
	a.api, err = httpapi.New(httpapi.Config{ReadWait: a.cfg.ReadWait, CohortMaxBodyBytes: a.cfg.CohortMaxBodyBytes}, httpapi.Deps{
		Commands: a.commands, Tenants: postgres.NewTenants(a.db), Campaigns: postgres.NewCampaigns(a.db), Cohorts: postgres.NewCohortReads(a.db), Decisions: postgres.NewDecisions(a.db), Verifier: verifier, Observer: a.metrics,
		Metrics: a.metrics.Handler(), Logger: a.logger.With("component", "http"), Idempotency: postgres.NewIdempotency(a.db),
		Checks: []httpapi.Check{
			{Name: "postgres", Check: a.db.Ping},
			{Name: "redis", Check: a.redis.Ping},
			{Name: "kafka", Check: func(ctx context.Context) error { return kafka.Ping(ctx, a.brokers) }},
		},
	})
	if err != nil {
		return err
	}
	if a.httpLn, err = net.Listen("tcp", a.cfg.HTTPAddr); err != nil {
		return fmt.Errorf("listen on HTTP_ADDR %s: %w", a.cfg.HTTPAddr, err)
	}
	a.closers = append(a.closers, func() error {
		if err := a.httpLn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			return err
		}
		return nil
	})
	a.httpSrv = &http.Server{Handler: a.api, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(a.logger.Handler(), slog.LevelWarn)}
	return nil
}

// Run serves until ctx ends, then stops gracefully: /readyz turns 503,
// in-flight requests finish, the projections finish the message in hand and
// the relay the batch in hand. A role that fails stops the whole process.
func (a *App) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	var started []<-chan struct{}
	if a.relay != nil {
		g.Go(func() error { return a.relay.Run(gctx) })
		started = append(started, a.relay.Running())
	}
	if a.router != nil {
		g.Go(func() error { return a.router.Run(gctx) })
		started = append(started, a.router.Running())
	}
	if a.ender != nil {
		g.Go(func() error { return a.ender.Run(gctx) })
	}
	if a.ops != nil {
		g.Go(func() error { return a.ops.Run(gctx) })
	}
	if a.engine != nil {
		g.Go(func() error { return a.engine.catalog.Run(gctx) })
		g.Go(func() error {
			// Deciding before the first catalog load would decide nothing
			// for every event and log them as done.
			select {
			case <-a.engine.catalog.Loaded():
			case <-gctx.Done():
				return nil
			}
			return a.engine.consumer.Run(gctx)
		})
		g.Go(func() error { return a.engine.republisher.Run(gctx) })
		started = append(started, a.engine.catalog.Loaded())
	}
	if a.recomputer != nil {
		g.Go(func() error { return a.recomputer.Run(gctx) })
	}
	if a.dcm != nil {
		g.Go(func() error { return a.dcm.Run(gctx) })
		started = append(started, a.dcm.Ready())
	}
	if a.httpSrv != nil {
		g.Go(func() error {
			if err := a.httpSrv.Serve(a.httpLn); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("http: %w", err)
			}
			return nil
		})
		g.Go(func() error {
			<-gctx.Done()
			a.api.Drain()
			time.Sleep(a.cfg.DrainDelay)
			sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
			defer cancel()
			return a.httpSrv.Shutdown(sctx)
		})
	}
	go func() {
		for _, ch := range started {
			select {
			case <-ch:
			case <-gctx.Done():
				return
			}
		}
		close(a.ready)
	}()
	return g.Wait()
}

// Ready is closed once every role is running.
func (a *App) Ready() <-chan struct{} { return a.ready }

// HTTPAddr returns the address the API listens on.
func (a *App) HTTPAddr() string {
	if a.httpLn == nil {
		return ""
	}
	return a.httpLn.Addr().String()
}

// OpsAddr returns where a process without the api role serves /metrics.
func (a *App) OpsAddr() string {
	if a.ops == nil {
		return ""
	}
	return a.ops.ln.Addr().String()
}

// Brokers returns the Kafka brokers the app uses.
func (a *App) Brokers() []string { return a.brokers }

// Close releases everything NewApp acquired, newest first.
func (a *App) Close() error {
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		errs = append(errs, a.closers[i]())
	}
	a.closers = nil
	return errors.Join(errs...)
}
