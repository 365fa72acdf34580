-- Back to the snapshot projector's own checkpoint table: every checkpoint but the read models' moves
-- back into it.
create table snapshot_projector_checkpoint (
  name text primary key,
  position bigint not null,
  updated_at timestamptz not null default now()
);

insert into snapshot_projector_checkpoint (name, position, updated_at)
select name, position, updated_at from projection_checkpoints where name <> 'read_models';

delete from projection_checkpoints where name <> 'read_models';
