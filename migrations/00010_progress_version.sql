-- Hot campaigns keep quest progress in Redis, cold ones here (DESIGN.md §6),
-- and a campaign can turn hot or cold in the middle of a user's quest. The
-- version orders one key's writes across both stores: every write is one
-- more than the newest version either held, so the store with the higher
-- version holds the user's progress (commands/engine). 0 is no progress: a
-- placeholder row the engine inserted only to lock a key.

-- +goose Up
ALTER TABLE user_aggregation ADD COLUMN version bigint NOT NULL DEFAULT 0;
UPDATE user_aggregation SET version = 1
WHERE cardinality(step_counts) > 0 OR window_start IS NOT NULL OR completed_at IS NOT NULL;

-- +goose Down
ALTER TABLE user_aggregation DROP COLUMN version;
