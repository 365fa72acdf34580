drop index if exists read_models.audit_log_tenant_config_events;
