-- Audit log pages filtered by an actor and by an event or resource type (GET /api/v1/audit-log?actor=…
-- &event_type=… or &resource_type=…) went through one filter's index and checked the other on every row:
-- a tenant's automation that requests 200,000 cache purges made "which routes did it change" read all of
-- them, or every other actor's route changes, to find a page of rows, or none. Keyed on the tenant and
-- both filters, such a page reads its own rows only. The other pairs read about a page through the indexes
-- there are: an event type belongs to one resource type, and a resource id is as selective as a pair.
create index audit_log_tenant_actor_event_type on read_models.audit_log (tenant_id, actor, event_type, position);
create index audit_log_tenant_actor_resource_type on read_models.audit_log (tenant_id, actor, resource_type, position);
