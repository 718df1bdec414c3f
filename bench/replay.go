package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/incentives-platform/incentives/adapters/kafka"
	"github.com/incentives-platform/incentives/adapters/postgres"
	enginecmd "github.com/incentives-platform/incentives/commands/engine"
	"github.com/incentives-platform/incentives/domain/engine"
	"github.com/incentives-platform/incentives/domain/rules"
)

// The replay suite (issue #7): `incentives replay` of the incentives
// projection over 1,000,000 incentive.issued.v1 events, beside the raw
// sequential read rate of the same event store in the same run.
const (
	replayEvents     = 1_000_000
	replayTenants    = 10
	replayUsers      = 100_000 // across the tenants
	replayCampaigns  = 100     // across the tenants
	replayBatch      = 10_000  // incentives per engine Record transaction in the setup
	replayWriters    = 2       // setup transactions in flight
	replayPage       = 5_000   // ReadAllOf page, the replay's default BatchSize
	replayFlushEvery = 100_000 // the replay's default FlushEvery
	replayTarget     = 50_000  // events/s
	replayShare      = 0.30    // of the raw decode read
)

// replayFigures is what the suite measured, for the report.
type replayFigures struct {
	pgVersion          string
	setupTook          time.Duration
	vacuumTook         time.Duration
	events             int64
	tableBytes         int64
	decodeRead         readFigure
	sqlScan, sqlPaged  readFigure
	cold, warm         replayRun
	coldOutbox         int64
	warmOutbox         int64
	viewRows           int64
	profile            profileSummary
	profileErr         error
	profilePath        string
	cpuBefore, cpuMid  cpuSample
	cpuAfter           cpuSample
	readBefore, readAt cpuSample
}

type readFigure struct {
	events int64
	bytes  int64
	took   time.Duration
}

func (r readFigure) rate() float64 { return float64(r.events) / r.took.Seconds() }

// replayRun is one timed Replay and its phases, from its Progress calls.
type replayRun struct {
	total                           int64
	took                            time.Duration
	prepare, fold, index, swap      time.Duration // until the first "replaying", until "indexing", until "swapping", until "done"
	started, indexing, swapping, at time.Time
	// flush estimates the part of fold spent writing the shadow table:
	// the intervals between Progress calls that include a write (every
	// FlushEvery events, and the last), less a plain interval's median.
	flush   time.Duration
	flushes int
}

func (r replayRun) rate() float64 { return float64(r.total) / r.took.Seconds() }

func runReplay(ctx context.Context, o options) (_ string, err error) {
	bs, err := openStore(ctx)
	if err != nil {
		return "", err
	}
	defer func() {
		// The database is dropped even when the run was interrupted.
		if cerr := bs.close(); err == nil && cerr != nil {
			err = fmt.Errorf("cleanup: %w", cerr)
		}
	}()
	f := &replayFigures{}
	if err := bs.db.Pool.QueryRow(ctx, `SHOW server_version`).Scan(&f.pgVersion); err != nil {
		return "", err
	}
	f.pgVersion, _, _ = strings.Cut(f.pgVersion, " ")
	dbName := bs.db.DatabaseName()

	// 1. Setup: 1,000,000 IncentiveIssued events through the engine's own
	// write path (EngineStore.Record: decisions, incentives, the events and
	// their outbox rows, one transaction per batch).
	o.logger.Info("replay: setup", "events", replayEvents)
	start := time.Now()
	if err := writeIncentives(ctx, bs, o); err != nil {
		return "", fmt.Errorf("setup: %w", err)
	}
	f.setupTook = time.Since(start)
	// The outbox rows written with the events are not what is measured: the
	// relay would have drained them long before anyone replays.
	start = time.Now()
	if _, err := bs.db.Pool.Exec(ctx, `TRUNCATE watermill_outbox`); err != nil {
		return "", err
	}
	// As autovacuum would have long since: hint bits set and statistics
	// known, so whichever reader comes first does not pay for the writes.
	if _, err := bs.db.Pool.Exec(ctx, `VACUUM (ANALYZE) event_store`); err != nil {
		return "", err
	}
	f.vacuumTook = time.Since(start)
	if err := bs.db.Pool.QueryRow(ctx, `SELECT count(*), pg_total_relation_size('event_store') FROM event_store`).Scan(&f.events, &f.tableBytes); err != nil {
		return "", err
	}

	// 2. The raw sequential read rate: every event read and decoded by
	// ReadAllOf, as any catch-up reader reads them; then the same rows
	// without decoding, for context.
	o.logger.Info("replay: raw reads")
	f.readBefore = sampleCPU(dbName)
	if f.decodeRead, err = decodeRead(ctx, bs.store); err != nil {
		return "", err
	}
	f.readAt = sampleCPU(dbName)
	if f.sqlPaged, err = pagedScan(ctx, bs.db); err != nil {
		return "", err
	}
	if f.sqlScan, err = sqlScan(ctx, bs.db); err != nil {
		return "", err
	}

	for name, r := range map[string]readFigure{"decode read": f.decodeRead, "paged scan": f.sqlPaged, "scan": f.sqlScan} {
		if r.events != f.events {
			return "", fmt.Errorf("%s: read %d of %d events", name, r.events, f.events)
		}
	}

	// 3. The replay. The first fills the empty live table, so its swap
	// publishes a change event for every row; the second, the figure, finds
	// the live table holding what it rebuilt, as an operator's replay does.
	o.logger.Info("replay: first (cold) replay")
	if f.cold, err = timeReplay(ctx, bs, dbName); err != nil {
		return "", fmt.Errorf("first replay: %w", err)
	}
	if err := bs.db.Pool.QueryRow(ctx, `SELECT count(*) FROM watermill_outbox`).Scan(&f.coldOutbox); err != nil {
		return "", err
	}
	if _, err := bs.db.Pool.Exec(ctx, `TRUNCATE watermill_outbox`); err != nil {
		return "", err
	}
	if _, err := bs.db.Pool.Exec(ctx, `VACUUM (ANALYZE) incentive_view`); err != nil {
		return "", err
	}

	o.logger.Info("replay: second (warm) replay, profiled")
	f.profilePath = filepath.Join(os.TempDir(), fmt.Sprintf("incentives-bench-replay-%d.pprof", os.Getpid()))
	prof, err := os.Create(f.profilePath)
	if err != nil {
		return "", err
	}
	defer prof.Close()
	f.cpuBefore = sampleCPU(dbName)
	if err := pprof.StartCPUProfile(prof); err != nil {
		o.logger.Warn("no CPU profile", "err", err)
	}
	f.warm, err = timeReplay(ctx, bs, dbName, func(string) { f.cpuMid = sampleCPU(dbName) })
	pprof.StopCPUProfile()
	f.cpuAfter = sampleCPU(dbName)
	if err != nil {
		return "", fmt.Errorf("second replay: %w", err)
	}
	prof.Close()
	f.profile, f.profileErr = analyzeProfile(ctx, f.profilePath)
	fmt.Fprintf(os.Stderr, "bench: the replay's CPU profile is in %s (go tool pprof -http=: %[1]s)\n", f.profilePath)
	if err := bs.db.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM watermill_outbox), (SELECT count(*) FROM incentive_view)`).
		Scan(&f.warmOutbox, &f.viewRows); err != nil {
		return "", err
	}
	if f.viewRows != f.events {
		return "", fmt.Errorf("the replayed incentive_view holds %d rows for %d events", f.viewRows, f.events)
	}
	return replayReport(f), nil
}

// writeIncentives records replayEvents issued decisions with their
// incentives and IncentiveIssued events through EngineStore.Record, the
// engine's bulk path (one new stream per incentive, createStreamsTx), in
// batches of replayBatch, replayWriters at a time.
func writeIncentives(ctx context.Context, bs *benchStore, o options) error {
	es := postgres.NewEngineStore(bs.db, bs.store)
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 7))
	tenants := make([]uuid.UUID, replayTenants)
	for i := range tenants {
		tenants[i] = randomUUID(rng)
	}
	// Campaign c belongs to tenant c % replayTenants; user u to tenant
	// u % replayTenants, and earns in one of its tenant's campaigns.
	type campaign struct {
		id      uuid.UUID
		version int64
	}
	campaigns := make([]campaign, replayCampaigns)
	for i := range campaigns {
		campaigns[i] = campaign{id: randomUUID(rng), version: 1 + rng.Int64N(3)}
	}
	perTenant := replayCampaigns / replayTenants
	from := time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC)
	step := 90 * 24 * time.Hour / replayEvents // three months of incentives

	batches := make(chan int)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for w := range replayWriters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, uint64(100+w)))
			decisions := make([]enginecmd.RecordedDecision, 0, replayBatch)
			incentives := make([]engine.Incentive, 0, replayBatch)
			for first := range batches {
				decisions, incentives = decisions[:0], incentives[:0]
				for i := first; i < min(first+replayBatch, replayEvents); i++ {
					u := r.IntN(replayUsers)
					t := u % replayTenants
					c := campaigns[t+replayTenants*r.IntN(perTenant)]
					user := fmt.Sprintf("user-%06d", u)
					source := randomUUID(r)
					d := engine.Decision{
						ID: engine.DecisionID(c.id, user, source), TenantID: tenants[t], UserID: user,
						CampaignID: c.id, CampaignVer: c.version, SourceEventID: source, Outcome: engine.OutcomeIssued,
						Reward: &engine.Reward{Type: rules.RewardCashback, Currency: "INR",
							Amount: decimal.New(100+r.Int64N(99_900), -2)}, // 1.00 to 999.99
						DecidedAt: from.Add(time.Duration(i)*step + time.Duration(r.Int64N(int64(time.Minute)))).Truncate(time.Millisecond),
					}
					decisions = append(decisions, enginecmd.RecordedDecision{Decision: d})
					incentives = append(incentives, engine.NewIncentive(d))
				}
				err := recordBatch(ctx, es, decisions, incentives)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					cancel()
					return
				}
			}
		}()
	}
	last := time.Now()
feed:
	for first := 0; first < replayEvents; first += replayBatch {
		select {
		case batches <- first:
		case <-ctx.Done():
			break feed
		}
		if time.Since(last) > 10*time.Second {
			o.logger.Info("replay: setup", "written", first)
			last = time.Now()
		}
	}
	close(batches)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

func recordBatch(ctx context.Context, es *postgres.EngineStore, decisions []enginecmd.RecordedDecision, incentives []engine.Incentive) error {
	tx, err := es.Begin(ctx)
	if err != nil {
		return err
	}
	issued, err := tx.Record(ctx, decisions, incentives)
	if err == nil && len(issued) != len(incentives) {
		err = fmt.Errorf("record: %d of %d incentives issued", len(issued), len(incentives))
	}
	if err != nil {
		return errors.Join(err, tx.Rollback(ctx))
	}
	return tx.Commit(ctx)
}

func randomUUID(r *rand.Rand) uuid.UUID {
	var u uuid.UUID
	for i := range 2 {
		v := r.Uint64()
		for j := range 8 {
			u[i*8+j] = byte(v >> (8 * j))
		}
	}
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return u
}

// decodeRead reads the whole store with ReadAllOf in pages of replayPage,
// decoding every event: the raw sequential read rate.
func decodeRead(ctx context.Context, store *postgres.EventStore) (readFigure, error) {
	var (
		f      readFigure
		cursor postgres.Cursor
	)
	start := time.Now()
	for {
		events, next, more, err := store.ReadAllOf(ctx, cursor, replayPage, nil)
		if err != nil {
			return f, err
		}
		f.events += int64(len(events))
		cursor = next
		if !more {
			break
		}
	}
	f.took = time.Since(start)
	return f, nil
}

// readColumns are the columns ReadAllOf selects.
const readColumns = `transaction_id::text, position, event_id, aggregate, aggregate_id, version, event_type, payload, metadata, recorded_at`

// sqlScan streams every row of event_store in commit order in one query,
// the columns ReadAllOf reads, taking each row's bytes as the wire gives
// them: no scanning into Go values, no decoding.
func sqlScan(ctx context.Context, db *postgres.DB) (readFigure, error) {
	var f readFigure
	start := time.Now()
	rows, err := db.Pool.Query(ctx, `SELECT `+readColumns+` FROM event_store
		WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY transaction_id, position`)
	if err != nil {
		return f, err
	}
	defer rows.Close()
	for rows.Next() {
		for _, v := range rows.RawValues() {
			f.bytes += int64(len(v))
		}
		f.events++
	}
	if err := rows.Err(); err != nil {
		return f, err
	}
	f.took = time.Since(start)
	return f, nil
}

// pagedScan reads the store in the pages ReadAllOf reads (its query,
// keyset by (transaction_id, position), replayPage rows each), taking the
// raw bytes: ReadAllOf without its scanning and decoding.
func pagedScan(ctx context.Context, db *postgres.DB) (readFigure, error) {
	var (
		f    readFigure
		txID = "0"
		pos  int64
	)
	start := time.Now()
	for {
		rows, err := db.Pool.Query(ctx, `
			WITH page AS (
				SELECT transaction_id, position, event_id, aggregate, aggregate_id, version, event_type, payload, metadata, recorded_at
				FROM event_store
				WHERE (transaction_id, position) > ($1::text::xid8, $2)
				  AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
				ORDER BY transaction_id, position
				LIMIT $3)
			SELECT `+readColumns+` FROM page ORDER BY transaction_id, position`, txID, pos, replayPage)
		if err != nil {
			return f, err
		}
		n := 0
		var last [][]byte
		for rows.Next() {
			last = rows.RawValues()
			for _, v := range last {
				f.bytes += int64(len(v))
			}
			n++
			if n == replayPage {
				// The cursor of the page's last row, in text (the query's
				// first two columns; position is binary int8).
				txID = string(last[0])
				pos = int64(last[1][0])<<56 | int64(last[1][1])<<48 | int64(last[1][2])<<40 | int64(last[1][3])<<32 |
					int64(last[1][4])<<24 | int64(last[1][5])<<16 | int64(last[1][6])<<8 | int64(last[1][7])
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return f, err
		}
		f.events += int64(n)
		if n < replayPage {
			break
		}
	}
	f.took = time.Since(start)
	return f, nil
}

// timeReplay runs `incentives replay --projection incentives` (postgres.IncentivesReplay,
// the default options) and times it and its phases. onSwap, if given, runs
// when the swap begins.
func timeReplay(ctx context.Context, bs *benchStore, dbName string, onSwap ...func(string)) (replayRun, error) {
	var (
		r              replayRun
		last           time.Time
		lastRead       int64
		plain, written []time.Duration
	)
	model := postgres.IncentivesReplay(kafka.IncentiveChanges{Database: dbName, Origin: "replay/" + uuid.NewString()})
	// As `incentives replay` runs it (cmd/incentives/replay.go).
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	start := time.Now()
	err := bs.store.Replay(ctx, []*postgres.ReplayModel{model}, postgres.ReplayOptions{
		Progress: func(p postgres.ReplayProgress) {
			now := time.Now()
			switch p.Phase {
			case "replaying":
				if r.started.IsZero() {
					r.started = now
				} else if p.Read/replayFlushEvery != lastRead/replayFlushEvery {
					written = append(written, now.Sub(last))
				} else {
					plain = append(plain, now.Sub(last))
				}
				last, lastRead = now, p.Read
				r.total = p.Read
			case "indexing":
				r.indexing = now
			case "swapping":
				// The last read wrote the shadow too.
				if n := len(plain); n > 0 && p.Read%replayFlushEvery != 0 {
					written, plain = append(written, plain[n-1]), plain[:n-1]
				}
				r.swapping = now
				for _, f := range onSwap {
					f(p.Phase)
				}
			case "done":
				r.at = now
			}
		},
	})
	r.took = time.Since(start)
	if err != nil {
		return r, err
	}
	if r.started.IsZero() || r.indexing.IsZero() || r.swapping.IsZero() || r.at.IsZero() {
		return r, errors.New("replay: progress did not report every phase")
	}
	r.prepare, r.fold, r.index, r.swap = r.started.Sub(start), r.indexing.Sub(r.started), r.swapping.Sub(r.indexing), r.at.Sub(r.swapping)
	slices.Sort(plain)
	var median time.Duration
	if len(plain) > 0 {
		median = plain[len(plain)/2]
	}
	for _, d := range written {
		r.flush += max(0, d-median)
	}
	r.flushes = len(written)
	return r, nil
}

func replayReport(f *replayFigures) string {
	var s strings.Builder
	secs := func(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }
	raw := f.decodeRead.rate()
	warm, cold := f.warm.rate(), f.cold.rate()

	fmt.Fprintf(&s, "### Replay: rebuilding a read model from the event store (issue #7)\n\n")
	fmt.Fprintf(&s, "Measured %s on %s, PostgreSQL %s on the same machine (the bench process and the database share the %d cores); "+
		"`go run ./bench %s`.\n\n",
		time.Now().UTC().Format("2006-01-02"), machine(), f.pgVersion, runtime.NumCPU(), strings.Join(os.Args[1:], " "))
	fmt.Fprintf(&s, "The store: a fresh database holding %s `incentive.issued.v1` events (%d tenants, %s users, %d campaigns, "+
		"cashback amounts of 1.00 to 999.99 INR), one new stream each, written through the engine's own path "+
		"(`EngineStore.Record`: decisions, incentives, the events by `createStreamsTx` with their outbox rows; %s per transaction, "+
		"%d transactions in flight) in %s (%s; not timed below). The outbox rows were then truncated (the relay drains them long "+
		"before anyone replays) and `event_store` vacuumed and analyzed, as autovacuum would have, in %s. "+
		"`event_store` is %s with its indexes.\n\n",
		thousands(f.events), replayTenants, thousands(replayUsers), replayCampaigns, thousands(replayBatch), replayWriters,
		secs(f.setupTook), perSecond(float64(f.events)/f.setupTook.Seconds()), secs(f.vacuumTook), replayMiB(f.tableBytes))

	t := &table{header: []string{"reader of the same " + thousands(f.events) + " events", "time", "events/s", "of the raw decode read"}}
	t.add(fmt.Sprintf("raw decode read: `ReadAllOf(cursor, %s, nil)` until the end, every event decoded (payload and metadata): "+
		"what any catch-up reader pays", thousands(replayPage)),
		secs(f.decodeRead.took), perSecond(raw), "100%")
	t.add(fmt.Sprintf("raw SQL, `ReadAllOf`'s query and pages of %s, rows taken as raw bytes (no scan into Go values, no decoding)",
		thousands(replayPage)), secs(f.sqlPaged.took), perSecond(f.sqlPaged.rate()), pct(f.sqlPaged.rate(), raw))
	t.add(fmt.Sprintf("raw SQL, one streaming `SELECT` of the same columns in (transaction_id, position) order, raw bytes (%s on the wire)",
		replayMiB(f.sqlScan.bytes)), secs(f.sqlScan.took), perSecond(f.sqlScan.rate()), pct(f.sqlScan.rate(), raw))
	t.add("**replay**, the live `incentive_view` already holding the rows (an operator's replay): read, fold, `COPY` into the shadow, "+
		"swap (its change-event check finds every row identical and publishes nothing)",
		secs(f.warm.took), "**"+perSecond(warm)+"**", "**"+pct(warm, raw)+"**")
	t.add(fmt.Sprintf("replay, first run, the live `incentive_view` empty: the swap publishes a `db.incentives` change event per row "+
		"(%s outbox rows)", thousands(f.coldOutbox)), secs(f.cold.took), perSecond(cold), pct(cold, raw))
	s.WriteString(t.String())

	met := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**not met**"
	}
	fmt.Fprintf(&s, "\nTargets: ≥ %s events/s — %s (%s, %.1f× the target); ≥ %.0f%% of the raw decode read — %s (%s).\n\n",
		thousands(replayTarget), met(warm >= replayTarget), perSecond(warm), warm/replayTarget,
		100*replayShare, met(warm >= replayShare*raw), pct(warm, raw))

	fmt.Fprintf(&s, "What is timed: each row from its first call to its return. The replay is `store.Replay(ctx, "+
		"[]*postgres.ReplayModel{postgres.IncentivesReplay(kafka.IncentiveChanges{…})}, postgres.ReplayOptions{})`, as "+
		"`incentives replay --projection incentives` runs it (pages of %s, shadow rows written every 100,000 events with the resume point), "+
		"on the same store right after the reads; the rate is the %s events it folded over its whole time. ",
		thousands(replayPage), thousands(f.warm.total))
	fmt.Fprintf(&s, "Its phases, from `ReplayOptions.Progress`: set up the shadow schema and count %s; "+
		"read, fold and `COPY` into `replay_incentives.incentive_view` %s (%s); build the shadow's secondary index and "+
		"`ANALYZE` it, before any lock, %s; the swap %s (lock, catch up, the change-event "+
		"check: a join of the shadow with the live table, then drop and move). The first run: %s, %s, %s, %s; its swap holds `incentive_view` locked (ACCESS EXCLUSIVE) while `BeforeSwap` "+
		"writes the change events to the outbox (pages of 5,000 rows read, a thousand events per outbox `INSERT`). "+
		"Between the two runs the outbox was truncated and the new `incentive_view` vacuumed and analyzed. "+
		"The swapped-in table holds %s rows; after the second run the outbox holds %s.\n\n",
		secs(f.warm.prepare), secs(f.warm.fold), perSecond(float64(f.warm.total)/f.warm.fold.Seconds()), secs(f.warm.index), secs(f.warm.swap),
		secs(f.cold.prepare), secs(f.cold.fold), secs(f.cold.index), secs(f.cold.swap),
		thousands(f.viewRows), thousands(f.warmOutbox))

	fmt.Fprintf(&s, "Who used the cores: during the raw decode read, %s; during the replay's read and fold, %s; during its swap, %s.\n",
		cpuLine(f.readBefore, f.readAt), cpuLine(f.cpuBefore, f.cpuMid), cpuLine(f.cpuMid, f.cpuAfter))
	if f.profileErr != nil {
		fmt.Fprintf(&s, "\n(No CPU profile: %v.)\n", f.profileErr)
		return s.String()
	}
	s.WriteString(replayFindings(f))
	fmt.Fprintf(&s, "\nWhere the bench process's CPU goes in the replay (`runtime/pprof` over the second run, %.1f s of samples in %s; "+
		"*self* charges each sample to the first frame, leaf up, that is not Go plumbing):\n\n",
		f.profile.total.Seconds(), secs(f.warm.took))
	s.WriteString(profileTables(f.profile, f.warm.took, 12))
	return s.String()
}

func replayMiB(b int64) string { return fmt.Sprintf("%s MiB", thousands((b+1<<19)>>20)) }

// replayFindings says where the replay's time goes, from its phases, the
// CPU shares and its profile.
func replayFindings(f *replayFigures) string {
	const (
		own    = "github.com/incentives-platform/incentives/adapters/"
		replay = own + "postgres.(*EventStore).Replay"
	)
	cpu := func(fn string) float64 { return f.profile.funcs[fn].Seconds() }
	secs := func(x float64) string { return fmt.Sprintf("%.1f s", x) }
	w := f.warm
	read := w.fold - w.flush
	var s strings.Builder
	fmt.Fprintf(&s, "\nWhere the replay's %.1f s go. Folding takes %s of the fold phase (%s); the folding goroutine "+
		"waits on writes of the shadow (a `COPY` of the new rows and the resume point, %d times) about %s, while the next "+
		"pages are read and decoded; the swap %s. ",
		w.took.Seconds(), secs(read.Seconds()), perSecond(float64(w.total)/read.Seconds()), w.flushes, secs(w.flush.Seconds()),
		secs(w.swap.Seconds()))
	fmt.Fprintf(&s, "The replay overlaps its steps: one goroutine queries the pages, two decode them, and the fold "+
		"and the shadow writes take them in commit order; secondary indexes of the shadow are built once at the end, and "+
		"metadata, which no projection reads, is not decoded. The replay's own goroutine was on CPU %s of the %s (pgx's "+
		"`COPY` encoder %s; Go's background GC %s); over the fold phase the bench process used %s cores and PostgreSQL %s, of %d. ",
		secs(cpu(replay)), secs(w.took.Seconds()), secs(cpu("github.com/jackc/pgx/v5.(*copyFrom).buildCopyBuf")),
		secs(cpu("runtime.gcBgMarkWorker")), cores(f.cpuBefore, f.cpuMid, false), cores(f.cpuBefore, f.cpuMid, true), runtime.NumCPU())
	fmt.Fprintf(&s, "Of the bench process's CPU: decoding the payloads (`EventCodec.DecodeJSON`, goavro's generic "+
		"`NativeFromTextual`) %s — which is why even the raw decode read runs at %s of the same pages undecoded; the fold "+
		"(`applyAll`) %s; `COPY` encoding %s; background GC %s (the live heap holds every view until the swap; "+
		"`incentives replay` runs with GOGC 400, as here).\n",
		pctOf(cpu(own+"avro.(*EventCodec).DecodeJSON"), f.profile.total.Seconds()),
		pct(f.decodeRead.rate(), f.sqlPaged.rate()),
		pctOf(cpu(own+"postgres.applyAll"), f.profile.total.Seconds()),
		pctOf(cpu("github.com/jackc/pgx/v5.(*copyFrom).buildCopyBuf"), f.profile.total.Seconds()),
		pctOf(cpu("runtime.gcBgMarkWorker"), f.profile.total.Seconds()))
	return s.String()
}

// cores is the bench process's (or PostgreSQL's) CPU between two samples,
// in cores.
func cores(a, b cpuSample, postgres bool) string {
	if !a.ok || !b.ok {
		return "?"
	}
	ticks := b.self - a.self
	if postgres {
		ticks = b.postgres - a.postgres
	}
	return fmt.Sprintf("%.2f", float64(ticks)/clockTicks/b.at.Sub(a.at).Seconds())
}

func pctOf(a, b float64) string { return fmt.Sprintf("%.0f%%", 100*a/b) }
