-- Route policies: CORS, IP rules, header / path / query transforms, timeouts and retries, body and
-- header limits, traffic split, matching beyond path and method, fixed responses and redirects.
-- The read model keeps them as one document per route (the admin API presents each as a field).
alter table read_models.routes add column policies jsonb not null default '{}'::jsonb;

-- A route that answers itself (fixed_response, redirect) may name no origin.
alter table read_models.routes alter column origin_id drop not null;
