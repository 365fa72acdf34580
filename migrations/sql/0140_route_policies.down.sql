delete from read_models.routes where origin_id is null;
alter table read_models.routes alter column origin_id set not null;
alter table read_models.routes drop column policies;
