-- The attempt that holds an Idempotency-Key (services/control-plane/src/http/idempotency.ts):
--   attempt_id              a token of that one request, so its own claim sent again after a lost
--                           connection is recognised (and another request with the key is not);
--   attempt_request_id      its request id, the correlation_id of every event it appends;
--   attempt_after_position  the event-store position before it ran.
-- A key left in progress past its lock (the process died, or PostgreSQL went away while the attempt's
-- events were being committed, so its answer was lost) is taken over only when the event log holds no
-- event of that attempt after that position; otherwise the key answers 409 idempotency_answer_lost,
-- and the request is never applied twice. Rows written before this have none: taken over as before.
alter table control_plane_idempotency_keys
  add column attempt_id text,
  add column attempt_request_id text,
  add column attempt_after_position bigint;
