-- A platform admin's list of every tenant's users, origins, routes, API keys or certificates (GET
-- /api/v1/<resources> without tenant_id, services/control-plane/src/queries/read-model-store.ts) is a page
-- in creation order. Only (tenant_id, created_position) indexes existed, so each page read and sorted
-- every row of the table: every tenant's revoked API keys (which TENANT_MAX_API_KEYS does not bound) and
-- the rows of deleted tenants included. Keyed on created_position, a page walks the index for its rows.
create index users_created_position on read_models.users (created_position);
create index origins_created_position on read_models.origins (created_position);
create index routes_created_position on read_models.routes (created_position);
create index api_keys_created_position on read_models.api_keys (created_position);
create index certificates_created_position on read_models.certificates (created_position);
