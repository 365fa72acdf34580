drop table if exists control_plane_idempotency_keys;
