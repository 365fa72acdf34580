-- Usage and quotas: API keys carry a request quota (ApiKeyIssued.quota, ApiKeyQuotaChanged), and the
-- gateways' request counts land, aggregated per hour, in usage_counts.

alter table read_models.api_keys add column quota jsonb;

-- Requests per tenant, route, API key, user and status class, per UTC hour. Not a read model: the
-- counts come from the gateways (through Redis and the usage flusher), not from the event log, so it
-- lives outside read_models and a replay keeps it. '' stands for "none" (a public route has no key or
-- user) so every dimension can be part of the primary key the flusher adds into.
create table usage_counts (
  tenant_id uuid not null,
  hour timestamptz not null,
  route_id text not null,
  api_key_id text not null,
  user_id text not null,
  status_class text not null check (status_class in ('1xx', '2xx', '3xx', '4xx', '5xx')),
  requests bigint not null check (requests >= 0),
  primary key (tenant_id, hour, route_id, api_key_id, user_id, status_class)
);
create index usage_counts_api_key on usage_counts (api_key_id, hour) where api_key_id <> '';

-- Every gateway batch applied, by its id (replica id and a uuid), in the same transaction as its counts:
-- a batch is added once even when a flusher dies between committing and deleting it from Redis.
create table usage_batches (
  batch_id text primary key,
  requests bigint not null,
  applied_at timestamptz not null default now()
);
