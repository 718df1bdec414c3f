package main

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/schollz/progressbar/v3"

	"github.com/incentives-platform/incentives/adapters/avro"
	"github.com/incentives-platform/incentives/adapters/kafka"
	"github.com/incentives-platform/incentives/adapters/postgres"
	"github.com/incentives-platform/incentives/adapters/redis"
	"github.com/incentives-platform/incentives/projections"
)

// replayDeps is what building replay models needs.
type replayDeps struct {
	db    *postgres.DB
	redis func() (*redis.Client, error)
}

// replayable lists the projections `replay` rebuilds, in the order `all`
// runs them, with their replay models.
func replayable() []struct {
	name  string
	model func(replayDeps) *postgres.ReplayModel
} {
	return []struct {
		name  string
		model func(replayDeps) *postgres.ReplayModel
	}{
		{projections.TenantsName, func(replayDeps) *postgres.ReplayModel { return postgres.TenantsReplay() }},
		{projections.CampaignsName, func(replayDeps) *postgres.ReplayModel { return postgres.CampaignsReplay() }},
		{projections.CohortsName, func(replayDeps) *postgres.ReplayModel { return postgres.CohortsReplay() }},
		{projections.IncentivesName, func(d replayDeps) *postgres.ReplayModel {
			// The swap's change events are its own, not copies of the
			// live projection's: their ids say so.
			return postgres.IncentivesReplay(kafka.IncentiveChanges{Database: d.db.DatabaseName(), Origin: "replay/" + uuid.NewString()})
		}},
		{projections.UserRewardsName, userRewardsReplay},
	}
}

// userRewardsReplay is the replay model of the user-aggregation
// projection, whose read model is Redis: the fold is
// projections.UserRewardsRebuild, the shadow keys and the swap are
// redis.UserRewardsReplay's.
func userRewardsReplay(d replayDeps) *postgres.ReplayModel {
	fold := projections.NewUserRewardsRebuild()
	var (
		shadow  *redis.UserRewardsReplay
		fenced  = map[uuid.UUID]bool{}
		tenants []uuid.UUID
	)
	open := func() error {
		if shadow != nil {
			return nil
		}
		c, err := d.redis()
		if err != nil {
			return err
		}
		// Its own shadow keys: replays of other platforms sharing the
		// Redis have theirs.
		shadow = redis.NewUserRewardsReplayOf(c, d.db.DatabaseName())
		return nil
	}
	return &postgres.ReplayModel{
		Rebuild: fold,
		External: &postgres.ExternalShadow{
			Drop: func(ctx context.Context) error {
				if err := open(); err != nil {
					return err
				}
				return shadow.DropShadow(ctx)
			},
			Flush: func(ctx context.Context) error { return shadow.Write(ctx, fold.TakeDirty(), fold.TakeSeen()) },
			Fence: func(ctx context.Context) (bool, error) {
				live, err := shadow.Tenants(ctx)
				if err != nil {
					return false, err
				}
				var unknown []uuid.UUID
				for _, t := range live {
					if !fenced[t] {
						unknown = append(unknown, t)
					}
				}
				// Only this platform's tenants: a Redis shared with another
				// event store (a developer's, a test's) holds tenants this
				// replay must not touch.
				ours, err := d.db.KnownTenants(ctx, unknown)
				if err != nil {
					return false, err
				}
				fresh := map[uuid.UUID]bool{}
				for t := range ours {
					fresh[t] = true
				}
				for k := range fold.Totals {
					if !fenced[k.TenantID] {
						fresh[k.TenantID] = true
					}
				}
				// Every fenced tenant is fenced again: the fence is a lease.
				// The list grows before the call: a fence that fails part-way
				// is lifted from all it may have reached.
				for t := range fresh {
					tenants = append(tenants, t)
				}
				if err := shadow.Fence(ctx, tenants); err != nil {
					return false, err
				}
				for t := range fresh {
					fenced[t] = true
				}
				return len(fresh) > 0, nil
			},
			Swap:    func(ctx context.Context) error { return shadow.Swap(ctx, tenants) },
			Unfence: func(ctx context.Context) error { return shadow.Unfence(ctx, tenants) },
		},
	}
}

func replayNames() []string {
	var names []string
	for _, r := range replayable() {
		names = append(names, r.name)
	}
	return names
}

// checkReplayNames refuses names that are not projections.
func checkReplayNames(names string) error {
	_, err := replayModels(names, replayDeps{})
	return err
}

// replayModels returns the models of the projections named (a comma list,
// or all); with deps.db nil it only checks the names.
func replayModels(names string, deps replayDeps) ([]*postgres.ReplayModel, error) {
	var models []*postgres.ReplayModel
	want := map[string]bool{}
	for _, n := range splitList(names) {
		want[n] = true
	}
	if len(want) == 0 {
		return nil, fmt.Errorf("--projection: name a projection (%s) or all", strings.Join(replayNames(), ", "))
	}
	for n := range want {
		if n != "all" && !slices.Contains(replayNames(), n) {
			return nil, fmt.Errorf("--projection %q: no such projection (%s, or all)", n, strings.Join(replayNames(), ", "))
		}
	}
	for _, r := range replayable() {
		if (want["all"] || want[r.name]) && deps.db != nil {
			models = append(models, r.model(deps))
		}
	}
	return models, nil
}

func runReplay(ctx context.Context, env environment, args []string) error {
	var (
		cfg        Config
		projection string
		from       int64
		since      string
		restart    bool
	)
	fs := newFlagSet(env, "replay", "replay [--projection NAME|all] [--from POSITION | --since TIME] [flags]")
	b := newBinder(fs, env.getenv)
	cfg.bindConnections(b)
	fs.StringVar(&projection, "projection", "all", "the projection to rebuild ("+strings.Join(replayNames(), ", ")+"; comma-separated, or all)")
	fs.Int64Var(&from, "from", 0, "start at this event-store position (in commit order); the rebuilt read model holds what the events from there build")
	fs.StringVar(&since, "since", "", "start at the first event recorded at or after this RFC 3339 time")
	fs.BoolVar(&restart, "restart", false, "drop an interrupted replay's shadow tables and start over, instead of resuming it")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := b.err(); err != nil {
		return err
	}
	opt := postgres.ReplayOptions{From: from, Restart: restart}
	if since != "" {
		t, err := time.Parse(time.RFC3339Nano, since)
		if err != nil {
			fmt.Fprintf(env.stderr, "--since %q: want an RFC 3339 time (2026-11-26T10:00:00Z)\n", since)
			return errUsage
		}
		opt.Since = t
	}
	if from < 0 || (from != 0 && !opt.Since.IsZero()) {
		fmt.Fprintln(env.stderr, "--from must be a positive position, and --from and --since are exclusive")
		return errUsage
	}
	if err := checkReplayNames(projection); err != nil {
		fmt.Fprintln(env.stderr, err)
		return errUsage
	}
	logger := cfg.newLogger(env)
	db, err := postgres.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	var rc *redis.Client
	defer func() {
		if rc != nil {
			_ = rc.Close()
		}
	}()
	models, err := replayModels(projection, replayDeps{db: db, redis: func() (*redis.Client, error) {
		if rc == nil {
			c, err := redis.Open(ctx, cfg.RedisURL)
			if err != nil {
				return nil, err
			}
			rc = c
		}
		return rc, nil
	}})
	if err != nil {
		return err
	}
	_, codec, err := avro.LoadPlatform()
	if err != nil {
		return err
	}
	store, err := postgres.NewEventStore(db, postgres.EventStoreConfig{Codec: codec, Outbox: kafka.DomainMessages{Codec: codec}})
	if err != nil {
		return err
	}
	var names []string
	for _, m := range models {
		names = append(names, m.Rebuild.Name())
	}
	// The replay holds every view in memory until the swap: a larger heap
	// between collections trades memory the machine has for CPU it lacks
	// (garbage collection was a quarter of the replay's CPU).
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	start := time.Now()
	show := newReplayProgress(env, strings.Join(names, ", "), start)
	opt.Progress = show.update
	err = store.Replay(ctx, models, opt)
	show.stop()
	if err != nil {
		return err
	}
	logger.Info("replay done", "projections", names, "events", show.read(), "took", time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(env.stdout, "replayed %s: %d events in %s; the rebuilt tables are live\n",
		strings.Join(names, ", "), show.read(), time.Since(start).Round(time.Millisecond))
	return nil
}

// replayProgress shows a replay's progress: a bar with events/s and the
// time left on a terminal, a log line every few seconds otherwise.
type replayProgress struct {
	mu      sync.Mutex
	w       io.Writer
	bar     *progressbar.ProgressBar
	what    string
	start   time.Time
	last    time.Time
	current postgres.ReplayProgress
}

func newReplayProgress(env environment, what string, start time.Time) *replayProgress {
	p := &replayProgress{w: env.stderr, what: what, start: start}
	if isTerminal(env.stderr) {
		p.w = env.stderr
		p.bar = progressbar.NewOptions64(-1,
			progressbar.OptionSetWriter(env.stderr),
			progressbar.OptionSetDescription("replay "+what),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("events"),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionFullWidth(),
			progressbar.OptionSetPredictTime(true),
		)
	}
	return p
}

func (p *replayProgress) update(r postgres.ReplayProgress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	first := p.current.Phase == ""
	p.current = r
	if p.bar != nil {
		if first && r.Total > 0 {
			p.bar.ChangeMax64(r.Total)
		}
		if r.Phase != "replaying" {
			p.bar.Describe(fmt.Sprintf("replay %s: %s", p.what, r.Phase))
		}
		_ = p.bar.Set64(r.Read)
		return
	}
	now := time.Now()
	if !first && r.Phase == "replaying" && now.Sub(p.last) < 5*time.Second {
		return
	}
	p.last = now
	elapsed := now.Sub(p.start)
	rate := float64(r.Read) / max(elapsed.Seconds(), 0.001)
	eta := "unknown"
	if rate > 0 && r.Total >= r.Read {
		eta = (time.Duration(float64(r.Total-r.Read)/rate) * time.Second).Round(time.Second).String()
	}
	fmt.Fprintf(p.w, "replay %s: %s, %d of %d events, %.0f events/s, %s left\n", p.what, r.Phase, r.Read, r.Total, rate, eta)
}

func (p *replayProgress) read() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.current.Read
}

func (p *replayProgress) stop() {
	if p.bar != nil {
		_ = p.bar.Finish()
		fmt.Fprintln(p.w)
	}
}
