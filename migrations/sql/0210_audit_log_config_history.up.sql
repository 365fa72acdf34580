-- Config history pages (GET …/config/history, services/control-plane/src/config-history/config-history.ts)
-- list a tenant's config changes newest first. Filtered by event type over audit_log_tenant (or walking
-- the primary key backwards) a page read, and discarded, every other row newer than it: a tenant's
-- millions of cache purges made each page scan them all. This index holds only the config event types
-- (CONFIG_EVENT_TYPES there: the query's list must stay within these for the index to serve it, which
-- its integration test checks), keyed on -position: no other index gives the page's order, so the
-- planner cannot prefer one that reads past other rows.
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
