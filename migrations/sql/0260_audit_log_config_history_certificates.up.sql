-- A tenant's TLS certificates are part of the config its gateways serve (GET …/config lists them), so
-- their uploads, key reseals and deletions are config changes of GET …/config/history too: every
-- snapshot version a replica reports is an entry. The index of 0210 is rebuilt with their event types
-- (CONFIG_EVENT_TYPES in services/control-plane/src/config-history/config-history.ts).
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
    'CertificateUploaded',
    'CertificateKeyResealed',
    'CertificateDeleted',
    'ConfigRolledBack'
  );
