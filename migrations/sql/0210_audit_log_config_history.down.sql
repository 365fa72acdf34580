drop index if exists read_models.audit_log_config_history;
