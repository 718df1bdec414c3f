package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/incentives-platform/incentives/commands"
)

var _ commands.MemberSets = (*MemberSets)(nil)

// MemberSets is the cohort_member table: cohort member sets, written once by
// generation and then only read (IsMember) and eventually deleted.
type MemberSets struct {
	db *DB
}

// NewMemberSets returns the member sets over db.
func NewMemberSets(db *DB) *MemberSets { return &MemberSets{db: db} }

// deleteChunk bounds the rows one delete statement removes, so deleting a
// million-member set never holds one long writing transaction (which would
// hold back every catch-up reader of the event store; see architecture.md).
const deleteChunk = 10_000

// Add implements commands.MemberSets. Each call is one COPY in its own short
// transaction: a slow client uploading a list never keeps a transaction
// open between batches. COPY cannot skip duplicates, so ids repeated within
// the batch are dropped first, and a batch repeating an id of an earlier
// one is inserted again, skipping what the set holds.
func (s *MemberSets) Add(ctx context.Context, generation uuid.UUID, userIDs []string) (int64, error) {
	ids := distinct(userIDs)
	if len(ids) == 0 {
		return 0, nil
	}
	n, err := s.db.Pool.CopyFrom(ctx, pgx.Identifier{"cohort_member"}, []string{"generation", "user_id"},
		pgx.CopyFromSlice(len(ids), func(i int) ([]any, error) { return []any{generation, ids[i]}, nil }))
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		tag, err := s.db.Pool.Exec(ctx, `INSERT INTO cohort_member (generation, user_id)
			SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING`, generation, ids)
		if err != nil {
			return 0, fmt.Errorf("add members to set %s: %w", generation, err)
		}
		return tag.RowsAffected(), nil
	}
	if err != nil {
		return 0, fmt.Errorf("copy members to set %s: %w", generation, err)
	}
	return n, nil
}

func distinct(ids []string) []string {
	seen := make(map[string]struct{}, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if _, dup := seen[id]; !dup {
			seen[id] = struct{}{}
			out = append(out, id)
		}
	}
	return out
}

// Delete implements commands.MemberSets, a chunk at a time.
func (s *MemberSets) Delete(ctx context.Context, generation uuid.UUID) error {
	for {
		tag, err := s.db.Pool.Exec(ctx, `DELETE FROM cohort_member WHERE generation = $1 AND user_id IN
			(SELECT user_id FROM cohort_member WHERE generation = $1 LIMIT $2)`, generation, deleteChunk)
		if err != nil {
			return fmt.Errorf("delete member set %s: %w", generation, err)
		}
		if tag.RowsAffected() < deleteChunk {
			return nil
		}
	}
}

// IsMember reports whether userID is in the member set generation.
func (s *MemberSets) IsMember(ctx context.Context, generation uuid.UUID, userID string) (bool, error) {
	var ok bool
	err := s.db.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM cohort_member WHERE generation = $1 AND user_id = $2)`,
		generation, userID).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("membership of %q in set %s: %w", userID, generation, err)
	}
	return ok, nil
}

// Size returns how many members the set generation holds.
func (s *MemberSets) Size(ctx context.Context, generation uuid.UUID) (int64, error) {
	var n int64
	err := s.db.Pool.QueryRow(ctx, `SELECT count(*) FROM cohort_member WHERE generation = $1`, generation).Scan(&n)
	return n, err
}
