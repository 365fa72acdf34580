drop schema if exists read_models cascade;
delete from projection_checkpoints where name = 'read_models';
