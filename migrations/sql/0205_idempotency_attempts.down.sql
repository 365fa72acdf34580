drop trigger if exists control_plane_idempotency_fence on event_store_events;
drop function if exists control_plane_idempotency_fence();
drop index if exists control_plane_idempotency_keys_attempt;
alter table control_plane_idempotency_keys
  drop column if exists attempt_id,
  drop column if exists attempts,
  drop column if exists attempt_after_position;
