-- Audit log pages (GET /api/v1/audit-log, services/control-plane/src/queries/audit-log.ts) read each of
-- the caller's tenants newest first. Filtered by event type or actor over audit_log_tenant, a page read,
-- and discarded, every newer row of the tenant; over audit_log_event_type or audit_log_actor, every
-- newer row of that type or actor in every tenant. Keyed on the tenant and the filter, a page reads its
-- own rows only.
create index audit_log_tenant_event_type on read_models.audit_log (tenant_id, event_type, position);
create index audit_log_tenant_actor on read_models.audit_log (tenant_id, actor, position);
