alter table control_plane_idempotency_keys
  drop column if exists attempt_id,
  drop column if exists attempt_request_id,
  drop column if exists attempt_after_position;
