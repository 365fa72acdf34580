alter table control_plane_idempotency_keys
  drop column if exists replay_tenant_id,
  drop column if exists replay_platform_admin_only;
