-- A platform admin's list of tenants (GET /api/v1/tenants without tenant_id,
-- services/control-plane/src/queries/read-model-store.ts) walks tenants in creation order and leaves out
-- deleted ones, whose rows are kept: through an index of every tenant, a page read each deleted tenant
-- between its cursor and the next live one, so 20,000 tenants created and deleted made the pages after
-- them read them all. The index holds live tenants only, as those of 0350 hold live tenants' resources.
drop index if exists read_models.tenants_created_position;
create index tenants_created_position on read_models.tenants (created_position) where deleted_at is null;
