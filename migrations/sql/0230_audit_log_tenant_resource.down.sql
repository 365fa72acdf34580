drop index if exists read_models.audit_log_tenant_resource_id;
drop index if exists read_models.audit_log_tenant_resource_type;
