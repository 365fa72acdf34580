-- Tenant isolation: custom domains claimed and verified one by one, routes that explicitly open
-- themselves to any signed-in user, and gateway snapshots that carry the tenant's users, its verified
-- custom domains and its service accounts.

-- A tenant's custom domains (CustomDomainAdded / Verified / Removed). Uniqueness is the event
-- store's reservation `custom_domain:<domain>`; this table only serves the admin API's queries.
create table read_models.custom_domains (
  id uuid primary key,
  tenant_id uuid not null,
  domain text not null,
  status text not null check (status in ('pending', 'verified')),
  -- The value the TXT record _vantageedge-challenge.<domain> must hold (public: it goes into DNS).
  verification_token text not null,
  verified_at timestamptz,
  verification_method text check (verification_method in ('dns_txt', 'platform_admin')),
  created_at timestamptz not null,
  updated_at timestamptz not null,
  revision bigint not null,
  position bigint not null,
  created_position bigint not null
);
create index custom_domains_tenant on read_models.custom_domains (tenant_id, created_position);
create index custom_domains_domain on read_models.custom_domains (domain);

-- Routes recorded before this column existed never opted in.
alter table read_models.routes add column allow_any_authenticated_user boolean not null default false;

-- Re-fold every gateway snapshot from the log: snapshots now carry the tenant's users and verified
-- custom domains, and drop the retired settings (unverified custom_domains, unbound service_jwks).
-- The snapshot projector republishes every tenant when it starts from position 0.
-- (The checkpoint lives in snapshot_projector_checkpoint until 0060 moves it to projection_checkpoints.)
delete from snapshot_state;
do $$
begin
  if to_regclass('snapshot_projector_checkpoint') is not null then
    update snapshot_projector_checkpoint set position = 0, updated_at = now();
  end if;
  update projection_checkpoints set position = 0, updated_at = now() where name = 'gateway_snapshots';
end
$$;
