drop index if exists read_models.certificates_created_position;
drop index if exists read_models.api_keys_created_position;
drop index if exists read_models.routes_created_position;
drop index if exists read_models.origins_created_position;
drop index if exists read_models.users_created_position;
