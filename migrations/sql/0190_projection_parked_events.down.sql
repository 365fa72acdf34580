drop table projection_parked_events;
