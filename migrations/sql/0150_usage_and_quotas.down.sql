drop table if exists usage_batches;
drop table if exists usage_counts;
alter table read_models.api_keys drop column if exists quota;
