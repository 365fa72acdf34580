-- The attempt that holds an Idempotency-Key (services/control-plane/src/http/idempotency.ts):
--   attempt_id              a token of that one request, made by the server: its events carry it
--                           (metadata.idempotency_attempt), and its own claim sent again after a lost
--                           connection is recognised by it (another request with the key is not);
--   attempts                every attempt that held the key since it was claimed, the holder last;
--   attempt_after_position  the event-store position before the first of them ran.
-- A key left in progress past its lock (the process died, PostgreSQL went away while the attempt's
-- events were being committed so its answer was lost, or it still runs) is taken over by the next
-- request with the key, which then looks in the event log for events of the earlier attempts after
-- that position (by their attempt ids and caller, never by a client's X-Request-Id): events → the key
-- answers 409 idempotency_answer_lost; none → it runs. Rows written before this have none: taken over
-- as before.
alter table control_plane_idempotency_keys
  add column attempt_id text,
  add column attempts text[],
  add column attempt_after_position bigint;
create index control_plane_idempotency_keys_attempt on control_plane_idempotency_keys (attempt_id);

-- The fence that makes the takeover safe: an event appended under an attempt is stored only while that
-- attempt holds its key. A session whose client is gone (a proxy dropped it, the process died) may
-- still commit an append long after; once the key was taken over it cannot, and an append that got
-- here first holds the key's row until it commits, so the takeover (an update of that row) waits for
-- it and then finds its events. SQLSTATE VE423: the control plane answers 409 conflict.
create function control_plane_idempotency_fence() returns trigger
language plpgsql as $$
begin
  perform 1 from control_plane_idempotency_keys k
    where k.attempt_id = new.metadata ->> 'idempotency_attempt' and k.state = 'in_progress'
    for share;
  if not found then
    raise exception 'the Idempotency-Key attempt % no longer holds its key', new.metadata ->> 'idempotency_attempt'
      using errcode = 'VE423';
  end if;
  return new;
end;
$$;
create trigger control_plane_idempotency_fence before insert on event_store_events
  for each row when (new.metadata ? 'idempotency_attempt')
  execute function control_plane_idempotency_fence();
