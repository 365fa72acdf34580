-- An audit log page filtered by an event type and a resource type (GET /api/v1/audit-log, of one tenant,
-- several, or every tenant: services/control-plane/src/queries/audit-log.ts) walked the index of one of
-- the two and checked the other on each row: a pair no row has, such as RouteCreated and api_key, read
-- every row of the type, and a tenant's 200,000 cache purges were read to answer that it purged no route.
-- Keyed on both, a page reads its own rows only, and a pair no row has reads none.
create index audit_log_event_resource_type on read_models.audit_log (event_type, resource_type, (-position));
create index audit_log_tenant_event_resource_type
  on read_models.audit_log (tenant_id, event_type, resource_type, position);
-- Taking the two for independent, the planner expects a pair of common types to have many rows, and may
-- rather walk one type's index in the page's order: the common pairs tell it better.
create statistics read_models.audit_log_event_resource_type_pairs (mcv)
  on event_type, resource_type from read_models.audit_log;
