alter table read_models.routes drop column if exists tags;
alter table read_models.origins drop column if exists tags;
