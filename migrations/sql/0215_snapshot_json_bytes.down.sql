alter table snapshot_state drop column if exists json_bytes;
