alter table read_models.api_keys drop column if exists tags;
