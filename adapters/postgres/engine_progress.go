package postgres

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	enginecmd "github.com/incentives-platform/incentives/commands/engine"
	"github.com/incentives-platform/incentives/domain/engine"
)

// Members implements commands/engine.BatchTx: one query for the batch,
// answered by cohort_member's primary key.
func (t *engineTx) Members(ctx context.Context, keys []enginecmd.MemberKey) (map[enginecmd.MemberKey]bool, error) {
	out := map[enginecmd.MemberKey]bool{}
	if len(keys) == 0 {
		return out, nil
	}
	gens := make([]uuid.UUID, len(keys))
	users := make([]string, len(keys))
	for i, k := range keys {
		gens[i], users[i] = k.Generation, k.UserID
	}
	err := t.pg(func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT m.generation, m.user_id FROM cohort_member m
			WHERE (m.generation, m.user_id) IN (SELECT * FROM unnest($1::uuid[], $2::text[]))`, gens, users)
		if err != nil {
			return err
		}
		var k enginecmd.MemberKey
		_, err = pgx.ForEachRow(rows, []any{&k.Generation, &k.UserID}, func() error {
			out[k] = true
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cohort members of %d users: %w", len(keys), err)
	}
	return out, nil
}

// progressKeys splits keys into the parallel arrays the queries unnest,
// once each, sorted: every batch then locks rows in the same order.
func progressKeys(keys []enginecmd.ProgressKey) ([]uuid.UUID, []string) {
	keys = slices.Clone(keys)
	slices.SortFunc(keys, compareProgressKeys)
	keys = slices.Compact(keys)
	campaigns := make([]uuid.UUID, len(keys))
	users := make([]string, len(keys))
	for i, k := range keys {
		campaigns[i], users[i] = k.CampaignID, k.UserID
	}
	return campaigns, users
}

func compareProgressKeys(a, b enginecmd.ProgressKey) int {
	if c := slices.Compare(a.CampaignID[:], b.CampaignID[:]); c != 0 {
		return c
	}
	return strings.Compare(a.UserID, b.UserID)
}

// lockProgressQuery locks and reads the progress rows of the given keys,
// in key order, so two batches wanting the same rows queue in one order.
const lockProgressQuery = readProgressQuery + `
	ORDER BY ua.campaign_id, ua.user_id
	FOR UPDATE OF ua`

const readProgressQuery = `
	SELECT ua.campaign_id, ua.user_id, ua.step_counts, ua.window_start, ua.completed_at, ua.version
	FROM user_aggregation ua
	JOIN unnest($1::uuid[], $2::text[]) AS k(campaign_id, user_id)
	  ON ua.campaign_id = k.campaign_id AND ua.user_id = k.user_id`

// LockProgress implements commands/engine.BatchTx.
//
// A key without a row cannot be locked by SELECT ... FOR UPDATE, and two
// batches could both read "no progress" for it and the later save would
// overwrite the earlier (it happens when a rebalance hands a partition on
// while its old owner is still writing). So the missing keys get an empty
// placeholder row, which the inserting batch holds until it commits; a
// batch that finds its insert beaten locks the winner's row instead. A
// placeholder (version 0) reads as no progress.
func (t *engineTx) LockProgress(ctx context.Context, keys []enginecmd.ProgressKey) (map[enginecmd.ProgressKey]enginecmd.StoredProgress, error) {
	out := map[enginecmd.ProgressKey]enginecmd.StoredProgress{}
	if len(keys) == 0 {
		return out, nil
	}
	campaigns, users := progressKeys(keys)
	err := t.pg(func(c *pgx.Conn) error {
		locked := map[enginecmd.ProgressKey]bool{}
		if err := readProgress(ctx, c, lockProgressQuery, campaigns, users, locked, out); err != nil {
			return err
		}
		if len(locked) == len(campaigns) {
			return nil
		}
		var missC []uuid.UUID
		var missU []string
		for i := range campaigns {
			if !locked[enginecmd.ProgressKey{CampaignID: campaigns[i], UserID: users[i]}] {
				missC, missU = append(missC, campaigns[i]), append(missU, users[i])
			}
		}
		// The tenant is the campaign's; the engine's campaigns come from
		// the same read model, so the join finds every one.
		rows, err := c.Query(ctx, `
			INSERT INTO user_aggregation (campaign_id, user_id, tenant_id, step_counts, version, updated_at)
			SELECT k.campaign_id, k.user_id, c.tenant_id, '{}', 0, now()
			FROM unnest($1::uuid[], $2::text[]) AS k(campaign_id, user_id)
			JOIN campaign c ON c.campaign_id = k.campaign_id
			ORDER BY k.campaign_id, k.user_id
			ON CONFLICT DO NOTHING
			RETURNING campaign_id, user_id`, missC, missU)
		if err != nil {
			return err
		}
		var k enginecmd.ProgressKey
		if _, err := pgx.ForEachRow(rows, []any{&k.CampaignID, &k.UserID}, func() error {
			locked[k] = true
			return nil
		}); err != nil {
			return err
		}
		var raceC []uuid.UUID
		var raceU []string
		for i := range missC {
			if !locked[enginecmd.ProgressKey{CampaignID: missC[i], UserID: missU[i]}] {
				raceC, raceU = append(raceC, missC[i]), append(raceU, missU[i])
			}
		}
		if len(raceC) == 0 {
			return nil
		}
		return readProgress(ctx, c, lockProgressQuery, raceC, raceU, locked, out)
	})
	if err != nil {
		return nil, fmt.Errorf("lock quest progress of %d keys: %w", len(keys), err)
	}
	return out, nil
}

// ReadProgress implements commands/engine.BatchTx: the rows of hot quests,
// read without a lock or a placeholder, since this batch writes them to
// Redis. What serialises two batches on one key is the action-event log
// (LogEvents): a batch reads progress only once every earlier batch holding
// the same events has committed or rolled back.
func (t *engineTx) ReadProgress(ctx context.Context, keys []enginecmd.ProgressKey) (map[enginecmd.ProgressKey]enginecmd.StoredProgress, error) {
	out := map[enginecmd.ProgressKey]enginecmd.StoredProgress{}
	if len(keys) == 0 {
		return out, nil
	}
	campaigns, users := progressKeys(keys)
	err := t.pg(func(c *pgx.Conn) error {
		return readProgress(ctx, c, readProgressQuery, campaigns, users, map[enginecmd.ProgressKey]bool{}, out)
	})
	if err != nil {
		return nil, fmt.Errorf("read quest progress of %d keys: %w", len(keys), err)
	}
	return out, nil
}

// DecisionsRecorded implements commands/engine.BatchTx.
func (t *engineTx) DecisionsRecorded(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]bool, error) {
	out := map[uuid.UUID]bool{}
	if len(ids) == 0 {
		return out, nil
	}
	err := t.pg(func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT decision_id FROM decision WHERE decision_id = ANY($1::uuid[])`, ids)
		if err != nil {
			return err
		}
		var id uuid.UUID
		_, err = pgx.ForEachRow(rows, []any{&id}, func() error {
			out[id] = true
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("look up %d decisions: %w", len(ids), err)
	}
	return out, nil
}

// readProgress locks and reads the rows of the keys, marking each found key
// locked and adding those with progress to out.
func readProgress(ctx context.Context, c *pgx.Conn, query string, campaigns []uuid.UUID, users []string,
	locked map[enginecmd.ProgressKey]bool, out map[enginecmd.ProgressKey]enginecmd.StoredProgress) error {
	rows, err := c.Query(ctx, query, campaigns, users)
	if err != nil {
		return err
	}
	var (
		p                      engine.QuestProgress
		counts                 []int32
		windowStart, completed pgtype.Timestamptz
		version                int64
	)
	_, err = pgx.ForEachRow(rows, []any{&p.CampaignID, &p.UserID, &counts, &windowStart, &completed, &version}, func() error {
		k := enginecmd.ProgressKey{CampaignID: p.CampaignID, UserID: p.UserID}
		locked[k] = true
		if version == 0 {
			return nil // a placeholder: no progress yet
		}
		q := engine.QuestProgress{CampaignID: p.CampaignID, UserID: p.UserID, Counts: make([]int, len(counts)),
			WindowStart: utcOrZero(windowStart), Completed: utcOrZero(completed)}
		for i, n := range counts {
			q.Counts[i] = int(n)
		}
		out[k] = enginecmd.StoredProgress{QuestProgress: q, Version: version}
		return nil
	})
	return err
}

func utcOrZero(t pgtype.Timestamptz) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}

func nullTimestamptz(t time.Time) pgtype.Timestamptz {
	return pgtype.Timestamptz{Time: t, Valid: !t.IsZero()}
}

// intArray writes counts as an int[] literal: the progress of a batch goes
// to Postgres as parallel arrays, and a text literal is the simplest way to
// pass one array per row.
func intArray(counts []int) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, n := range counts {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(n))
	}
	b.WriteByte('}')
	return b.String()
}

// SaveProgress implements commands/engine.BatchTx: one upsert for the
// batch, in key order. A key saved twice keeps its last progress.
func (t *engineTx) SaveProgress(ctx context.Context, progress []enginecmd.StoredProgress) error {
	if len(progress) == 0 {
		return nil
	}
	last := make(map[enginecmd.ProgressKey]int, len(progress))
	for i, p := range progress {
		last[enginecmd.ProgressKey{CampaignID: p.CampaignID, UserID: p.UserID}] = i
	}
	keys := make([]enginecmd.ProgressKey, 0, len(last))
	for k := range last {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareProgressKeys)
	n := len(keys)
	var (
		campaigns            = make([]uuid.UUID, n)
		users, counts        = make([]string, n), make([]string, n)
		windows, completions = make([]pgtype.Timestamptz, n), make([]pgtype.Timestamptz, n)
		versions             = make([]int64, n)
	)
	for i, k := range keys {
		p := progress[last[k]]
		campaigns[i], users[i], counts[i] = p.CampaignID, p.UserID, intArray(p.Counts)
		windows[i], completions[i] = nullTimestamptz(p.WindowStart), nullTimestamptz(p.Completed)
		versions[i] = p.Version
	}
	var saved int64
	err := t.pg(func(c *pgx.Conn) error {
		tag, err := c.Exec(ctx, `
			INSERT INTO user_aggregation (campaign_id, user_id, tenant_id, step_counts, window_start, completed_at, version, updated_at)
			SELECT k.campaign_id, k.user_id, c.tenant_id, k.counts::int[], k.window_start, k.completed_at, k.version, now()
			FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::bigint[])
			     WITH ORDINALITY AS k(campaign_id, user_id, counts, window_start, completed_at, version, ord)
			JOIN campaign c ON c.campaign_id = k.campaign_id
			ORDER BY k.ord
			ON CONFLICT (campaign_id, user_id) DO UPDATE
			SET step_counts = excluded.step_counts, window_start = excluded.window_start,
			    completed_at = excluded.completed_at, version = excluded.version, updated_at = excluded.updated_at`,
			campaigns, users, counts, windows, completions, versions)
		saved = tag.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("save quest progress of %d keys: %w", n, err)
	}
	if saved != int64(n) {
		// Only a campaign missing from the read model loses its row in the
		// join; the engine's campaigns come from it, so this is a bug.
		return fmt.Errorf("save quest progress: %d of %d keys saved (campaign missing from the read model?)", saved, n)
	}
	return nil
}
