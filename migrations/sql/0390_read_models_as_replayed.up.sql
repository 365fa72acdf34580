-- Rows the read-model projector wrote otherwise than a replay writes them, made as a replay makes
-- them (projections/src/read-models/apply-events.ts): a key whose quota was removed in a batch of its
-- own held JSON's null where a replay holds none, and a resource recorded after its tenant's deletion
-- (earlier releases could record one) applied in a batch after the deletion's was left unmarked.
update read_models.api_keys set quota = null where quota = 'null'::jsonb;
update read_models.users set tenant_deleted = true
 where not tenant_deleted and tenant_id in (select id from read_models.tenants where deleted_at is not null);
update read_models.origins set tenant_deleted = true
 where not tenant_deleted and tenant_id in (select id from read_models.tenants where deleted_at is not null);
update read_models.routes set tenant_deleted = true
 where not tenant_deleted and tenant_id in (select id from read_models.tenants where deleted_at is not null);
update read_models.api_keys set tenant_deleted = true
 where not tenant_deleted and tenant_id in (select id from read_models.tenants where deleted_at is not null);
update read_models.certificates set tenant_deleted = true
 where not tenant_deleted and tenant_id in (select id from read_models.tenants where deleted_at is not null);
