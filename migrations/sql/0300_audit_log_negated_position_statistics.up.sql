-- Pages of a tenant's config events (services/control-plane/src/config-history/tenant-events.ts) bound
-- the log position as -position, the key of the partial index audit_log_tenant_config_events (migration
-- 0280). The planner reads no statistics of a partial index's expressions (selfuncs.c, examine_variable),
-- so it took any range of -position for 0.5% of the rows: a tenant with 50,000 config events in the
-- range counted as ~130, and unless the table's order happened to follow tenant_id, it read all of them
-- through a bitmap and sorted them for the first 1,000, on every page of a fold. With these statistics it
-- knows the range's rows and walks the index for the page alone.
create statistics read_models.audit_log_negated_position on (-position) from read_models.audit_log;
