-- Read models of the control plane. Folded from the event log by the read-model projector
-- (projections/src/read-models); never written by commands. They live in their own schema so a replay
-- can rebuild them into a fresh schema (`create table ... (like read_models.x including all)`) and swap
-- it in with one rename. No unique or foreign keys besides the primary keys: the event store enforces
-- uniqueness, and a read model must never refuse an event (a released subdomain may be taken again
-- while the deleted tenant's row is kept).

create table if not exists projection_checkpoints (
  name text primary key,
  -- Global event position of the last event applied (exclusive start for the next read).
  position bigint not null,
  updated_at timestamptz not null default now()
);

create schema read_models;

create table read_models.tenants (
  id uuid primary key,
  name text not null,
  subdomain text not null,
  clerk_org_id text,
  settings jsonb not null,
  created_at timestamptz not null,
  updated_at timestamptz not null,
  deleted_at timestamptz,
  revision bigint not null,
  position bigint not null,
  -- Position of the creating event: the stable sort key of list pagination.
  created_position bigint not null
);
create index tenants_clerk_org_id on read_models.tenants (clerk_org_id) where deleted_at is null;
create index tenants_created_position on read_models.tenants (created_position);

create table read_models.users (
  id uuid primary key,
  tenant_id uuid not null,
  clerk_user_id text not null,
  email text not null,
  role text not null,
  created_at timestamptz not null,
  updated_at timestamptz not null,
  revision bigint not null,
  position bigint not null,
  created_position bigint not null
);
create index users_tenant on read_models.users (tenant_id, created_position);
create index users_clerk_user on read_models.users (clerk_user_id);

create table read_models.origins (
  id uuid primary key,
  tenant_id uuid not null,
  name text not null,
  url text not null,
  targets jsonb not null,
  health_check_path text not null,
  timeout_seconds integer not null,
  load_balancing jsonb not null,
  health_check jsonb not null,
  circuit_breaker jsonb not null,
  created_at timestamptz not null,
  updated_at timestamptz not null,
  revision bigint not null,
  position bigint not null,
  created_position bigint not null
);
create index origins_tenant on read_models.origins (tenant_id, created_position);

create table read_models.routes (
  id uuid primary key,
  tenant_id uuid not null,
  origin_id uuid not null,
  path_pattern text not null,
  methods jsonb not null,
  priority integer not null,
  auth_mode text not null,
  required_scopes jsonb not null,
  require_tenant_org boolean not null,
  strip_prefix text,
  rate_limit jsonb,
  cache_policy jsonb,
  created_at timestamptz not null,
  updated_at timestamptz not null,
  revision bigint not null,
  position bigint not null,
  created_position bigint not null
);
create index routes_tenant on read_models.routes (tenant_id, created_position);

create table read_models.api_keys (
  id uuid primary key,
  tenant_id uuid not null,
  name text not null,
  -- HMAC-SHA-256 of the plaintext: kept for lookups, never returned by the API nor copied to the audit log.
  key_hash text not null,
  key_prefix text not null,
  scopes jsonb not null,
  expires_at timestamptz,
  revoked_at timestamptz,
  revoke_reason text,
  replaced_by uuid,
  created_at timestamptz not null,
  updated_at timestamptz not null,
  revision bigint not null,
  position bigint not null,
  created_position bigint not null
);
create index api_keys_tenant on read_models.api_keys (tenant_id, created_position);
create index api_keys_key_hash on read_models.api_keys (key_hash);

-- Who did what to which resource, when: one row per event, its data minus secrets.
create table read_models.audit_log (
  position bigint primary key,
  event_id uuid not null,
  event_type text not null,
  stream text not null,
  stream_revision bigint not null,
  resource_type text not null,
  resource_id text not null,
  tenant_id uuid,
  actor text not null,
  correlation_id text not null,
  causation_id text,
  occurred_at timestamptz not null,
  data jsonb not null
);
create index audit_log_tenant on read_models.audit_log (tenant_id, position);
create index audit_log_resource on read_models.audit_log (resource_type, resource_id, position);
create index audit_log_actor on read_models.audit_log (actor, position);
create index audit_log_event_type on read_models.audit_log (event_type, position);
create index audit_log_occurred_at on read_models.audit_log (occurred_at);
