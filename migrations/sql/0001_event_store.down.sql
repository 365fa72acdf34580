drop function if exists event_store_append(text, text, uuid[], text[], jsonb[], jsonb[], text[], text[]);
drop table if exists event_store_reservations;
drop table if exists event_store_events;
drop table if exists event_store_streams;
drop table if exists event_store_position;
