-- Snapshot projector (projections/src/snapshots): each tenant's compiled gateway snapshot, folded
-- from the event log, and what of it the snapshot bus (Kafka) has acknowledged.
create table snapshot_state (
  tenant_id uuid primary key,
  -- Global event position of the newest event folded into this tenant's snapshot.
  version bigint not null,
  status text not null check (status in ('live', 'deleted')),
  -- The TenantSnapshot; null once the tenant is deleted (published as a tombstone).
  snapshot jsonb,
  event_time timestamptz not null,
  -- Newest version the bus acknowledged; below `version` means "publish again" (at least once).
  published_version bigint,
  -- A version the bus refused for good (e.g. too large) and why; retried only when the version changes.
  failed_version bigint,
  publish_error text,
  updated_at timestamptz not null default now(),
  check ((status = 'live') = (snapshot is not null))
);

create index snapshot_state_unpublished on snapshot_state (tenant_id)
  where published_version is null or published_version < version;

-- The projector's checkpoint, advanced in the same transaction as snapshot_state.
create table snapshot_projector_checkpoint (
  name text primary key,
  position bigint not null,
  updated_at timestamptz not null default now()
);
