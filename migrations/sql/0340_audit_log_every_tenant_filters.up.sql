-- A platform admin's audit log pages over every tenant (GET /api/v1/audit-log without tenant_id,
-- services/control-plane/src/queries/audit-log.ts) filtered by a resource type alone, a resource id
-- alone, or an actor and an event or resource type had no index keyed on the filters and the position,
-- and, keyed on the position, the primary key gives the page's order: the planner, taking a filter's rows
-- for spread evenly over the log, walked it backwards past every newer row to find the page's rows, or
-- read and sorted every row of the filter. A tenant's 200,000 cache purges made "the tenant events",
-- "resource 7" or "which routes did this automation change" read the whole log. These pages are read in
-- the order of -position, which only the indexes keyed on their filters give (those of 0020 are rebuilt
-- so), so each reads its own rows only, as the indexes of 0220, 0230 and 0290 do within a tenant.
drop index if exists read_models.audit_log_resource;
drop index if exists read_models.audit_log_actor;
drop index if exists read_models.audit_log_event_type;
create index audit_log_resource on read_models.audit_log (resource_type, resource_id, (-position));
create index audit_log_actor on read_models.audit_log (actor, (-position));
create index audit_log_event_type on read_models.audit_log (event_type, (-position));
create index audit_log_resource_type on read_models.audit_log (resource_type, (-position));
create index audit_log_resource_id on read_models.audit_log (resource_id, (-position));
create index audit_log_actor_event_type on read_models.audit_log (actor, event_type, (-position));
create index audit_log_actor_resource_type on read_models.audit_log (actor, resource_type, (-position));
-- Taking an actor's rows and an event or resource type's for independent, the planner walks one filter's
-- index and checks the other on each row when the pair matches few rows: an automation's flood of cache
-- purges was read to find the route changes it made, which are none. The common pairs tell it better.
create statistics read_models.audit_log_actor_event_type_pairs (mcv) on actor, event_type from read_models.audit_log;
create statistics read_models.audit_log_actor_resource_type_pairs (mcv) on actor, resource_type from read_models.audit_log;
