-- Idempotency-Key records of the control plane's POST commands: a retry with the same key returns the
-- first response and appends nothing. Scoped by the caller (Clerk user id); kept 24 hours.
create table control_plane_idempotency_keys (
  caller text not null,
  key text not null,
  -- sha256 of method, path and body: the same key with a different request is refused (422).
  request_hash text not null,
  state text not null check (state in ('in_progress', 'completed')),
  -- An in-progress claim older than this was abandoned (crashed process) and may be taken over.
  locked_until timestamptz not null,
  response_status integer,
  response_headers jsonb,
  response_body jsonb,
  created_at timestamptz not null default now(),
  primary key (caller, key)
);
create index control_plane_idempotency_keys_created_at on control_plane_idempotency_keys (created_at);
