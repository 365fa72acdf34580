drop table if exists snapshot_projector_checkpoint;
drop table if exists snapshot_state;
