alter table read_models.routes drop column if exists allow_any_authenticated_user;
drop table if exists read_models.custom_domains;
