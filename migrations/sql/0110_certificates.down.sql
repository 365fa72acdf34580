drop table if exists read_models.certificates;
