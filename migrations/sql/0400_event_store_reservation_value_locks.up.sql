-- Appends lock every value they release or claim (an advisory lock per value, whether or not a row
-- holds it yet) in one order before changing any row: no two appends deadlock over reservations.
-- Otherwise as 0380_event_store_reservation_lock_order.
create or replace function event_store_append(
  p_stream text,
  p_expected text,
  p_ids uuid[],
  p_types text[],
  p_data jsonb[],
  p_metadata jsonb[],
  p_claim text[],
  p_release text[]
) returns table (next_expected_revision bigint, last_position bigint)
language plpgsql as $$
declare
  v_count integer := cardinality(p_ids);
  v_revision bigint;
  v_actual bigint;
  v_claimed integer;
  v_value text;
  v_holder text;
  v_last bigint;
  v_key integer;
begin
  if v_count is null or v_count = 0 then
    raise exception 'event_store_append needs at least one event' using errcode = '22023';
  end if;

  if p_expected = 'no_stream' then
    insert into event_store_streams as s (stream, revision) values (p_stream, v_count - 1)
      on conflict (stream) do nothing
      returning s.revision into v_revision;
  elsif p_expected = 'any' then
    insert into event_store_streams as s (stream, revision) values (p_stream, v_count - 1)
      on conflict (stream) do update set revision = s.revision + v_count
      returning s.revision into v_revision;
  elsif p_expected = 'stream_exists' then
    update event_store_streams s set revision = s.revision + v_count
      where s.stream = p_stream
      returning s.revision into v_revision;
  else
    update event_store_streams s set revision = s.revision + v_count
      where s.stream = p_stream and s.revision = p_expected::bigint
      returning s.revision into v_revision;
  end if;

  if v_revision is null then
    select s.revision into v_actual from event_store_streams s where s.stream = p_stream;
    raise exception 'wrong expected revision on stream %', p_stream
      using errcode = 'VE409', detail = coalesce(v_actual::text, 'no_stream');
  end if;

  -- Every value the append releases or claims is locked first, held or free, in one order (the lock
  -- keys'), before any row is deleted or inserted. Locking only the rows that exist left a value claimed
  -- while nobody held it unlocked: an append waiting for another's uncommitted claim of it while holding
  -- a row that one reaches next ended as a deadlock (a 500) instead of a taken value (409). Two-key
  -- advisory locks of their own class: apart from the one-key locks of the migrator and from the
  -- config-change lock's class. Two values of one hash share a lock, which only serialises them.
  if cardinality(p_release) + cardinality(p_claim) > 0 then
    for v_key in
      select distinct hashtext(v.value) from unnest(p_release || p_claim) as v(value) order by 1
    loop
      perform pg_advisory_xact_lock(1447383635, v_key);
    end loop;
  end if;

  if cardinality(p_release) > 0 then
    delete from event_store_reservations r where r.value = any (p_release) and r.stream = p_stream;
  end if;

  if cardinality(p_claim) > 0 then
    -- Waits for a concurrent claimer of the same value to finish; the loser sees its row and
    -- claims nothing. Re-claiming a value this stream already holds is a no-op.
    with claimed as (
      insert into event_store_reservations as r (value, stream)
        select c.value, p_stream from unnest(p_claim) as c(value)
        on conflict (value) do update set stream = excluded.stream where r.stream = excluded.stream
        returning r.value
    )
    select count(*) into v_claimed from claimed;
    if v_claimed < cardinality(p_claim) then
      select r.value, r.stream into v_value, v_holder
        from event_store_reservations r
        where r.value = any (p_claim) and r.stream <> p_stream
        order by r.value limit 1;
      raise exception 'value % is already reserved', v_value
        using errcode = 'VE410', detail = v_value, hint = coalesce(v_holder, '');
    end if;
  end if;

  update event_store_position set value = value + v_count returning value into v_last;

  insert into event_store_events (position, id, stream, revision, type, data, metadata)
    select v_last - v_count + e.ord, e.id, p_stream, v_revision - v_count + e.ord, e.type, e.data, e.metadata
    from unnest(p_ids, p_types, p_data, p_metadata) with ordinality as e(id, type, data, metadata, ord);

  -- Delivered to LISTENers at commit; subscriptions treat it only as a wake-up.
  perform pg_notify('event_store_appended', v_last::text);

  return query select v_revision, v_last;
end;
$$;
