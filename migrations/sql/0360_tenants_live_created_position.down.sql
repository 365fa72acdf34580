drop index if exists read_models.tenants_created_position;
create index tenants_created_position on read_models.tenants (created_position);
