package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/incentives-platform/incentives/adapters/redis"
)

// Defaults of DESIGN.md §10.
const (
	defaultDatabaseURL  = "postgres://postgres@127.0.0.1:5432/incentives?sslmode=disable"
	defaultRedisURL     = "redis://127.0.0.1:6379/0"
	defaultEmbeddedAddr = "127.0.0.1:9092"
	// devJWTSecret lets a fresh checkout work; serve warns while it is in use.
	devJWTSecret = "incentives-dev-secret-change-me-in-production"
	embedded     = "embedded"
)

// Roles a serve process can take.
const (
	roleAPI       = "api"
	roleProjector = "projector"
	roleRelay     = "relay"
	roleEngine    = "engine"
	roleDCM       = "dcm"
)

var allRoles = []string{roleAPI, roleEngine, roleProjector, roleRelay, roleDCM}

// Config is everything serve needs. Every field is an environment variable
// and a flag (bind); the defaults are DESIGN.md §10's.
type Config struct {
	// DatabaseURL is the PostgreSQL URL (DATABASE_URL).
	DatabaseURL string
	// RedisURL is the Redis URL (REDIS_URL).
	RedisURL string
	// KafkaBrokers is "embedded" (default: start the in-process broker) or a
	// comma-separated broker list (KAFKA_BROKERS).
	KafkaBrokers string
	// KafkaEmbeddedAddr is where the embedded broker listens (KAFKA_EMBEDDED_ADDR).
	KafkaEmbeddedAddr string
	// KafkaPartitions is the partition count of topics the platform creates.
	// Default 8 (KAFKA_PARTITIONS).
	KafkaPartitions int
	// HTTPAddr serves REST, /metrics, /healthz and /readyz. Default :8080 (HTTP_ADDR).
	HTTPAddr string
	// JWTSecret signs and verifies tokens, HS256, at least 32 bytes (AUTH_JWT_SECRET).
	JWTSecret string
	// Roles is the comma-separated roles to run. Default all (ROLES).
	Roles string
	// Migrate creates the database if missing and applies migrations before
	// starting (MIGRATE).
	Migrate bool
	// LogLevel is debug, info, warn or error. Default info (LOG_LEVEL).
	LogLevel string
	// LogFormat is text or json. Default text (LOG_FORMAT).
	LogFormat string
	// ShutdownTimeout bounds the graceful stop. Default 30s (SHUTDOWN_TIMEOUT).
	ShutdownTimeout time.Duration
	// DrainDelay is how long the API keeps serving, with /readyz answering
	// 503, before it stops accepting connections, so load balancers notice.
	// Default 0s; a few seconds behind a load balancer (SHUTDOWN_DRAIN_DELAY).
	DrainDelay time.Duration
	// OutboxKeep is how long relayed outbox rows are kept. Default 1h (OUTBOX_KEEP).
	OutboxKeep time.Duration
	// ReadWait bounds how long a read with X-Min-Version waits for its
	// projection. Default 5s (READ_WAIT).
	ReadWait time.Duration
	// TenantMaxPerDay is a new tenant's default GLOBAL daily cap (DEFAULT_TENANT_MAX_PER_DAY).
	TenantMaxPerDay int64
	// UserMaxPerDay is a new tenant's default USER daily cap (DEFAULT_USER_MAX_PER_DAY).
	UserMaxPerDay int64
	// CohortMaxBodyBytes caps the body of POST /api/v1/cohorts, which streams
	// up to a million user ids. Default 64 MiB (COHORT_MAX_BODY_BYTES).
	CohortMaxBodyBytes int64
	// CohortRecomputeEvery is how old a DYNAMIC cohort's members may get
	// before the projector role recomputes them; 0 turns the schedule off.
	// Default 1h (COHORT_RECOMPUTE_EVERY).
	CohortRecomputeEvery time.Duration
	// EngineMaxBatch is the most action events the engine decides in one
	// transaction. Default 5000 (ENGINE_MAX_BATCH).
	EngineMaxBatch int
	// EngineSessionTimeout is how long the engine's consumer group waits for
	// a silent member before moving its partitions: the pause a crashed
	// engine causes (a crash during a rebalance: up to three times this).
	// Default 10s; brokers refuse less than their
	// group.min.session.timeout.ms, 6s by default (ENGINE_SESSION_TIMEOUT).
	EngineSessionTimeout time.Duration
	// EngineCatalogRefresh is how often the engine reloads campaigns, tenants
	// and cohorts: how soon a change reaches it. Default 500ms (ENGINE_CATALOG_REFRESH).
	EngineCatalogRefresh time.Duration
	// HotCampaignEnabled turns on the hot-campaign filter (DESIGN.md §6,
	// hotCampaign.enabled): a count-min sketch of each tenant's campaign
	// traffic, and Redis for the quest progress of campaigns at or over the
	// threshold. Off, every quest's progress is in PostgreSQL; progress
	// Redis still holds moves there as users play. Default true
	// (HOT_CAMPAIGN_ENABLED).
	HotCampaignEnabled bool
	// HotCampaignThreshold is the matching events per window at which a
	// tenant's campaign is hot. Default 5000 (HOT_CAMPAIGN_THRESHOLD).
	HotCampaignThreshold int64
	// HotCampaignWindow is the sketch's window, whole seconds. Default 10m
	// (HOT_CAMPAIGN_WINDOW).
	HotCampaignWindow time.Duration
	// HotCampaignEpsilon and HotCampaignDelta bound the sketch's error: an
	// estimate exceeds the true count by more than ε × the window's events
	// with probability at most δ. Defaults 0.01 and 0.01, 272 × 5 counters
	// (HOT_CAMPAIGN_EPSILON, HOT_CAMPAIGN_DELTA). Every engine must use the
	// same values; change them only between windows.
	HotCampaignEpsilon, HotCampaignDelta float64
	// HotCampaignSampleEvery keeps exact shadow counts for one campaign in
	// this many, by hash of its id, to measure cms_false_positive_rate.
	// Default 16; 1: every campaign (HOT_CAMPAIGN_SAMPLE_EVERY).
	HotCampaignSampleEvery int
	// CampaignEndEvery is how often the projector role ends campaigns whose
	// endAt has passed. Default 5s (CAMPAIGN_END_EVERY).
	CampaignEndEvery time.Duration
	// WSAddr serves the dcm role's WebSocket endpoint /ws, its demo page
	// /ws/demo, /metrics and /healthz. Default :8081 (WS_ADDR).
	WSAddr string
	// WSAllowedOrigins is the comma-separated origins (scheme://host[:port],
	// or *) whose browser pages may open sockets besides pages of the
	// socket's own host. Default none (WS_ALLOWED_ORIGINS).
	WSAllowedOrigins string
	// WSMaxConnectionsPerUser caps one user's sockets on one DCM instance.
	// Default 8; 0 means the default (WS_MAX_CONNECTIONS_PER_USER).
	WSMaxConnectionsPerUser int
	// WSSendQueue is how many frames may wait for one socket before it is
	// closed as too slow (1013). Default 256; 0 means the default (WS_SEND_QUEUE).
	WSSendQueue int
	// DCMInstanceID names this DCM instance: its consumer group is
	// dcm.<id>. Default: the host name and a random suffix, new at every
	// start (DCM_INSTANCE_ID).
	DCMInstanceID string
}

// bindConnections binds the settings every command that talks to the
// platform's services shares.
func (c *Config) bindConnections(b *binder) {
	b.string(&c.DatabaseURL, "database-url", defaultDatabaseURL, "PostgreSQL URL")
	b.string(&c.RedisURL, "redis-url", defaultRedisURL, "Redis URL")
	b.string(&c.KafkaBrokers, "kafka-brokers", embedded, `"embedded" to run the in-process broker, or host:port,... of a Kafka cluster`)
	b.string(&c.KafkaEmbeddedAddr, "kafka-embedded-addr", defaultEmbeddedAddr, "listen address of the embedded broker")
	b.string(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	b.string(&c.LogFormat, "log-format", "text", "text or json")
}

// bind binds every setting of serve.
func (c *Config) bind(b *binder) {
	c.bindConnections(b)
	b.int(&c.KafkaPartitions, "kafka-partitions", 8, "partitions of the topics the platform creates")
	b.string(&c.HTTPAddr, "http-addr", ":8080", "listen address of REST, /metrics, /healthz and /readyz")
	b.string(&c.JWTSecret, "auth-jwt-secret", devJWTSecret, "HS256 secret of bearer tokens, at least 32 bytes (the default is for development only)")
	b.string(&c.Roles, "roles", strings.Join(allRoles, ","), "comma-separated roles to run: "+strings.Join(allRoles, ", "))
	b.bool(&c.Migrate, "migrate", false, "create the database if missing and apply migrations before starting")
	b.duration(&c.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "how long a graceful stop may take")
	b.duration(&c.DrainDelay, "shutdown-drain-delay", 0, "on stop, how long to keep serving with /readyz at 503 before refusing connections")
	b.duration(&c.OutboxKeep, "outbox-keep", time.Hour, "how long relayed outbox rows are kept for inspection")
	b.duration(&c.ReadWait, "read-wait", 5*time.Second, "how long a read with X-Min-Version waits for its projection to catch up")
	b.int64(&c.TenantMaxPerDay, "default-tenant-max-per-day", 100_000, "daily reward cap of a new tenant (scope GLOBAL)")
	b.int64(&c.UserMaxPerDay, "default-user-max-per-day", 10, "daily reward cap per user of a new tenant (scope USER)")
	b.int64(&c.CohortMaxBodyBytes, "cohort-max-body-bytes", 64<<20, "largest body of POST /api/v1/cohorts (a streamed list of user ids)")
	b.duration(&c.CohortRecomputeEvery, "cohort-recompute-every", time.Hour, "recompute DYNAMIC cohorts whose members are older than this (0: never on a schedule)")
	b.int(&c.EngineMaxBatch, "engine-max-batch", 5000, "most action events the engine decides in one transaction")
	b.duration(&c.EngineSessionTimeout, "engine-session-timeout", 10*time.Second, "how long the engine's consumer group waits for a silent member before moving its partitions")
	b.duration(&c.EngineCatalogRefresh, "engine-catalog-refresh", 500*time.Millisecond, "how often the engine reloads campaigns, tenants and cohorts")
	b.bool(&c.HotCampaignEnabled, "hot-campaign-enabled", true, "hotCampaign.enabled: keep hot campaigns' quest progress in Redis, found by a count-min sketch")
	b.int64(&c.HotCampaignThreshold, "hot-campaign-threshold", 5000, "matching events per window at which a tenant's campaign is hot")
	b.duration(&c.HotCampaignWindow, "hot-campaign-window", 10*time.Minute, "the count-min sketch's window (whole seconds)")
	b.float64(&c.HotCampaignEpsilon, "hot-campaign-epsilon", 0.01, "the sketch's error bound ε, as a share of the window's events")
	b.float64(&c.HotCampaignDelta, "hot-campaign-delta", 0.01, "the probability δ that an estimate exceeds the error bound")
	b.int(&c.HotCampaignSampleEvery, "hot-campaign-sample-every", 16, "keep exact shadow counts for one campaign in this many, for cms_false_positive_rate")
	b.duration(&c.CampaignEndEvery, "campaign-end-every", 5*time.Second, "how often campaigns whose endAt has passed are ended")
	b.string(&c.WSAddr, "ws-addr", ":8081", "listen address of the WebSocket notifications (/ws), the demo page (/ws/demo), /metrics and /healthz (dcm role)")
	b.string(&c.WSAllowedOrigins, "ws-allowed-origins", "", "comma-separated origins (https://app.example.com, or *) whose pages may open sockets, besides the socket's own host")
	b.int(&c.WSMaxConnectionsPerUser, "ws-max-connections-per-user", 8, "most sockets one user may hold open on one DCM instance")
	b.int(&c.WSSendQueue, "ws-send-queue", 256, "frames that may wait for one socket before it is closed as too slow")
	b.string(&c.DCMInstanceID, "dcm-instance-id", "", "this DCM instance's name, in its consumer group dcm.<id> (default: host name and a random suffix)")
}

// Validate reports every problem of c.
func (c *Config) Validate() error {
	var errs []error
	for _, r := range c.roleList() {
		if !slices.Contains(allRoles, r) {
			errs = append(errs, fmt.Errorf("unknown role %q (roles: %s)", r, strings.Join(allRoles, ", ")))
		}
	}
	if len(c.roleList()) == 0 {
		errs = append(errs, errors.New("no roles to run"))
	}
	if len(c.JWTSecret) < 32 {
		errs = append(errs, errors.New("AUTH_JWT_SECRET must be at least 32 bytes"))
	}
	if c.ReadWait <= 0 {
		errs = append(errs, errors.New("READ_WAIT must be positive"))
	}
	if c.EngineMaxBatch < 1 {
		errs = append(errs, errors.New("ENGINE_MAX_BATCH must be at least 1"))
	}
	if c.EngineCatalogRefresh <= 0 {
		errs = append(errs, errors.New("ENGINE_CATALOG_REFRESH must be positive"))
	}
	if c.CampaignEndEvery <= 0 {
		errs = append(errs, errors.New("CAMPAIGN_END_EVERY must be positive"))
	}
	if c.CohortMaxBodyBytes < 0 || c.CohortRecomputeEvery < 0 {
		errs = append(errs, errors.New("COHORT_MAX_BODY_BYTES and COHORT_RECOMPUTE_EVERY must not be negative"))
	}
	if c.HotCampaignEnabled {
		if err := c.hotCampaigns().Validate(); err != nil {
			errs = append(errs, fmt.Errorf("hot campaigns (HOT_CAMPAIGN_*): %w", err))
		}
	}
	if c.KafkaPartitions < 1 {
		errs = append(errs, errors.New("KAFKA_PARTITIONS must be at least 1"))
	}
	if c.WSMaxConnectionsPerUser < 0 || c.WSSendQueue < 0 {
		errs = append(errs, errors.New("WS_MAX_CONNECTIONS_PER_USER and WS_SEND_QUEUE must not be negative"))
	}
	if c.TenantMaxPerDay < 0 || c.UserMaxPerDay < 0 {
		errs = append(errs, errors.New("default daily caps must not be negative"))
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("LOG_FORMAT %q: want text or json", c.LogFormat))
	}
	return errors.Join(errs...)
}

// hotCampaigns is the hot-campaign filter's configuration.
func (c *Config) hotCampaigns() redis.HotCampaignsConfig {
	return redis.HotCampaignsConfig{
		Sketch: redis.SketchConfig{Epsilon: c.HotCampaignEpsilon, Delta: c.HotCampaignDelta, Window: c.HotCampaignWindow,
			Retention: c.HotCampaignWindow, HotTTL: 2 * c.HotCampaignWindow, MaxItemsPerCall: 1000},
		Threshold: c.HotCampaignThreshold, SampleEvery: c.HotCampaignSampleEvery, Now: time.Now,
	}
}

// splitList reads a comma-separated setting: items trimmed, empty ones
// dropped.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func (c *Config) roleList() []string { return splitList(c.Roles) }

func (c *Config) hasRole(role string) bool { return slices.Contains(c.roleList(), role) }

// wsOrigins returns WS_ALLOWED_ORIGINS as a list.
func (c *Config) wsOrigins() []string { return splitList(c.WSAllowedOrigins) }

// brokerList returns the configured brokers, or nil for the embedded broker.
func (c *Config) brokerList() []string {
	if c.KafkaBrokers == "" || c.KafkaBrokers == embedded {
		return nil
	}
	return splitList(c.KafkaBrokers)
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("LOG_LEVEL %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// envName maps a flag name to its environment variable: kafka-brokers is KAFKA_BROKERS.
func envName(flagName string) string {
	return strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// binder binds flags whose defaults come from environment variables, and
// remembers environment values it could not parse.
type binder struct {
	fs     *flag.FlagSet
	getenv func(string) string
	errs   []error
}

func newBinder(fs *flag.FlagSet, getenv func(string) string) *binder {
	return &binder{fs: fs, getenv: getenv}
}

// err reports the environment variables that held unparseable values.
func (b *binder) err() error { return errors.Join(b.errs...) }

func (b *binder) env(name string, parse func(string) error) {
	if v := b.getenv(envName(name)); v != "" {
		if err := parse(v); err != nil {
			b.errs = append(b.errs, fmt.Errorf("%s=%q: %v", envName(name), v, err))
		}
	}
}

func (b *binder) string(p *string, name, def, usage string) {
	b.env(name, func(v string) error { def = v; return nil })
	b.fs.StringVar(p, name, def, usage+" ("+envName(name)+")")
}

func (b *binder) bool(p *bool, name string, def bool, usage string) {
	b.env(name, func(v string) (err error) { def, err = strconv.ParseBool(v); return })
	b.fs.BoolVar(p, name, def, usage+" ("+envName(name)+")")
}

func (b *binder) int(p *int, name string, def int, usage string) {
	b.env(name, func(v string) (err error) { def, err = strconv.Atoi(v); return })
	b.fs.IntVar(p, name, def, usage+" ("+envName(name)+")")
}

func (b *binder) int64(p *int64, name string, def int64, usage string) {
	b.env(name, func(v string) (err error) { def, err = strconv.ParseInt(v, 10, 64); return })
	b.fs.Int64Var(p, name, def, usage+" ("+envName(name)+")")
}

func (b *binder) float64(p *float64, name string, def float64, usage string) {
	b.env(name, func(v string) (err error) { def, err = strconv.ParseFloat(v, 64); return })
	b.fs.Float64Var(p, name, def, usage+" ("+envName(name)+")")
}

func (b *binder) duration(p *time.Duration, name string, def time.Duration, usage string) {
	b.env(name, func(v string) (err error) { def, err = time.ParseDuration(v); return })
	b.fs.DurationVar(p, name, def, usage+" ("+envName(name)+")")
}

// newLogger returns the process's logger; it is passed down, never global.
func (c *Config) newLogger(env environment) *slog.Logger {
	level, _ := parseLevel(c.LogLevel)
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(env.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(env.stderr, opts))
}
