-- Every projection's checkpoint in one table: the one projector runner (projections/src/runner) keeps
-- each projection's row in projection_checkpoints. The snapshot projector's checkpoint moves there
-- from its own table, so it resumes where it stopped (no refold, no republish).
insert into projection_checkpoints (name, position, updated_at)
select name, position, updated_at from snapshot_projector_checkpoint
on conflict (name) do update set position = excluded.position, updated_at = excluded.updated_at;

drop table snapshot_projector_checkpoint;
