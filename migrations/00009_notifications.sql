-- The DCM's catch-up reads one user's incentives in the order the engine
-- wrote them (adapters/postgres/notifications.go), not by issued_at, which is
-- the time of the action and can be long past for a late event.

-- +goose Up
CREATE INDEX incentive_user_recorded_idx ON incentive (tenant_id, user_id, recorded_at, issued_at, incentive_id);

-- +goose Down
DROP INDEX incentive_user_recorded_idx;
