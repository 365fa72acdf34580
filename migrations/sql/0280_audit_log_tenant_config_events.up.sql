-- A tenant's config at a position (GET …/config?at_position=, …/config/diff, a rollback's target, explain)
-- is folded from its events, found a page at a time through the audit log
-- (services/control-plane/src/config-history/tenant-events.ts). Filtered by resource type over
-- audit_log_tenant, or walking the primary key (the planner's choice once a tenant has many rows), a page
-- read, and discarded, every cache purge of the tenant in the range, and every other tenant's row too:
-- a tenant's 200,000 purges made each fold of it at an old position read 200,000-300,000 rows. This index
-- holds only the rows of the streams that shape a config (its predicate is the query's, word for word),
-- keyed on -position: no other index gives the page's order, so the planner cannot prefer one that reads
-- past other rows.
create index audit_log_tenant_config_events on read_models.audit_log (tenant_id, (-position))
  where resource_type not in ('cache', 'config');
