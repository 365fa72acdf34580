-- A platform admin's list of every tenant's users, origins, routes, API keys or certificates (GET
-- /api/v1/<resources> without tenant_id, services/control-plane/src/queries/read-model-store.ts) walks
-- the created_position index (0310) and leaves out the rows of deleted tenants, which are kept: a page
-- read every row of a deleted tenant between its cursor and its last row, so a tenant that piled up
-- 100,000 revoked API keys (which TENANT_MAX_API_KEYS does not bound) and was deleted made the pages
-- after its keys read them all. The projector marks a deleted tenant's rows (TenantDeleted,
-- projections/src/read-models/apply-events.ts), and the index holds the rows of live tenants only.
alter table read_models.users add column tenant_deleted boolean not null default false;
alter table read_models.origins add column tenant_deleted boolean not null default false;
alter table read_models.routes add column tenant_deleted boolean not null default false;
alter table read_models.api_keys add column tenant_deleted boolean not null default false;
alter table read_models.certificates add column tenant_deleted boolean not null default false;
update read_models.users set tenant_deleted = true
 where tenant_id in (select id from read_models.tenants where deleted_at is not null);
update read_models.origins set tenant_deleted = true
 where tenant_id in (select id from read_models.tenants where deleted_at is not null);
update read_models.routes set tenant_deleted = true
 where tenant_id in (select id from read_models.tenants where deleted_at is not null);
update read_models.api_keys set tenant_deleted = true
 where tenant_id in (select id from read_models.tenants where deleted_at is not null);
update read_models.certificates set tenant_deleted = true
 where tenant_id in (select id from read_models.tenants where deleted_at is not null);
drop index if exists read_models.users_created_position;
drop index if exists read_models.origins_created_position;
drop index if exists read_models.routes_created_position;
drop index if exists read_models.api_keys_created_position;
drop index if exists read_models.certificates_created_position;
create index users_created_position on read_models.users (created_position) where not tenant_deleted;
create index origins_created_position on read_models.origins (created_position) where not tenant_deleted;
create index routes_created_position on read_models.routes (created_position) where not tenant_deleted;
create index api_keys_created_position on read_models.api_keys (created_position) where not tenant_deleted;
create index certificates_created_position on read_models.certificates (created_position) where not tenant_deleted;
