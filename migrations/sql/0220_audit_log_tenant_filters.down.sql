drop index if exists read_models.audit_log_tenant_actor;
drop index if exists read_models.audit_log_tenant_event_type;
