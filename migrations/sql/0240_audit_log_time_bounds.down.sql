drop index if exists read_models.audit_log_late;
drop statistics if exists read_models.audit_log_lateness;
drop index if exists read_models.audit_log_tenant_late;
drop index if exists read_models.audit_log_occurred_high;
alter table read_models.audit_log drop column if exists occurred_high;
