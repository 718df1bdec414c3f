-- Hot campaigns keep quest progress in Redis, cold ones here (DESIGN.md §6),
-- and a campaign can turn hot or cold in the middle of a user's quest. The
-- version orders one key's writes across both stores: every write is one
-- more than the newest version either held, so the store with the higher
-- version holds the user's progress (commands/engine). 0 is no progress: a
-- placeholder row the engine inserted only to lock a key.

-- The default is 1, not 0: an engine not yet upgraded (a rolling upgrade)
-- writes rows without a version, and its progress must not read as a
-- placeholder. The upgraded engine writes placeholders with version 0.

-- +goose Up
ALTER TABLE user_aggregation ADD COLUMN version bigint NOT NULL DEFAULT 1;
UPDATE user_aggregation SET version = 0
WHERE cardinality(step_counts) = 0 AND window_start IS NULL AND completed_at IS NULL;

-- +goose Down
ALTER TABLE user_aggregation DROP COLUMN version;
