drop index if exists read_models.audit_log_config_history;
create index audit_log_config_history on read_models.audit_log (tenant_id, (-position))
  where event_type in (
    'TenantCreated',
    'TenantUpdated',
    'CustomDomainVerified',
    'CustomDomainDeleted',
    'UserCreated',
    'UserDeleted',
    'OriginCreated',
    'OriginUpdated',
    'OriginDeleted',
    'RouteCreated',
    'RouteUpdated',
    'RouteDeleted',
    'ApiKeyIssued',
    'ApiKeyRotated',
    'ApiKeyRevoked',
    'ApiKeyQuotaChanged',
    'ConfigRolledBack'
  );
