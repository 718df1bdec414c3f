-- What the campaign read model needs beyond the seed's indexes (00004):
-- keyset pagination of a tenant's campaign list, and the scan that ends
-- campaigns whose endAt has passed.

-- +goose Up
CREATE INDEX campaign_tenant_created_idx ON campaign (tenant_id, created_at, campaign_id);
CREATE INDEX campaign_due_to_end_idx ON campaign (end_at) WHERE status IN ('ACTIVE', 'PAUSED') AND end_at IS NOT NULL;

-- +goose Down
DROP INDEX campaign_due_to_end_idx;
DROP INDEX campaign_tenant_created_idx;
