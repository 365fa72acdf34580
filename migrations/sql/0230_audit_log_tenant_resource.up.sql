-- Audit log pages (services/control-plane/src/queries/audit-log.ts) filtered by resource type or resource
-- id had no index keyed on the tenant and the filter: over audit_log_tenant a page read, and discarded,
-- every newer row of the tenant (its flood of cache purges); over audit_log_resource, every row of that
-- type in every tenant. Keyed on the tenant and the filter, a page reads its own rows only.
create index audit_log_tenant_resource_type on read_models.audit_log (tenant_id, resource_type, position);
create index audit_log_tenant_resource_id on read_models.audit_log (tenant_id, resource_id, position);
