-- Poison events (projections/src/runner/quarantine.ts): an event a projection could not apply after
-- a few attempts is parked here instead of stopping the projection for every tenant, and so is every
-- later event of the same tenant, in that projection (its tenant is quarantined there). Written in the
-- transaction that advances the projection's checkpoint; a rebuild of the projection (read-model
-- replay, snapshot refold) replaces its rows.
create table projection_parked_events (
  -- The projection's row in projection_checkpoints (a replay parks under its rebuild schema's name
  -- until the swap).
  projection text not null,
  -- Global position of the parked event.
  position bigint not null,
  stream text not null,
  -- As the event carries it (metadata, else data); text, since a malformed event may carry anything.
  -- Null: an event of no tenant, parked alone.
  tenant_id text,
  event_type text not null,
  -- 'failed': the event itself failed (and quarantined its tenant, if it has one); 'quarantined':
  -- parked unapplied because its tenant already was.
  reason text not null check (reason in ('failed', 'quarantined')),
  -- The error (bounded), or since which position its tenant is quarantined.
  error text not null,
  parked_at timestamptz not null default now(),
  primary key (projection, position)
);

-- The quarantined tenants of a projection, read by every projector batch.
create index projection_parked_events_quarantines on projection_parked_events (projection)
  include (tenant_id, position) where reason = 'failed' and tenant_id is not null;
