alter table read_models.origins drop column if exists tls;
