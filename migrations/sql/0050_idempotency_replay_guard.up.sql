-- Who may see a stored Idempotency-Key answer again: the tenant it is about, and whether only platform
-- admins may (creating tenants). A replay re-checks the caller's access to that tenant first, because
-- the stored answer can hold an API key's plaintext. Rows stored before this have no tenant and are
-- replayed to platform admins only.
alter table control_plane_idempotency_keys
  add column replay_tenant_id text,
  add column replay_platform_admin_only boolean not null default false;
