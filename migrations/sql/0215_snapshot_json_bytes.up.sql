-- The snapshot publisher (projections/src/snapshots/snapshot-publisher.ts) sends large snapshots one at a
-- time, beside the others. It told them apart by pg_column_size, the size as stored: jsonb compresses a
-- tenant's repeated route policies some 40×, so 10 MB of JSON was stored in under 256 KiB and published
-- with the small snapshots, 200 to a batch. Each row now records its snapshot's JSON bytes (what the
-- publisher stringifies and gzips), written with the snapshot.
alter table snapshot_state add column json_bytes bigint;
update snapshot_state set json_bytes = octet_length(snapshot::text) where snapshot is not null;
