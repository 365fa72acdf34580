import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { silentLogger } from '@vantageedge/shared/observability/logger';
import { createInMemorySnapshotBus } from '@vantageedge/shared/snapshot-bus/in-memory-snapshot-bus';
import { readReplicaVersions } from '@vantageedge/shared/snapshot-bus/rollout-registry';
import { eventually, sampleSnapshot, snapshotMessage } from '@vantageedge/shared/snapshot-bus/testing';
import { createTestRedis } from '@vantageedge/shared/testing/redis';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { startConfigPlane } from './config-plane.js';
import { RecordingSink } from './testing.js';

/** What a replica's config plane reports to rollout status (Redis heartbeats), through faults. */
const redis = createTestRedis('config-plane-rollout');
const dirs: string[] = [];

afterAll(async () => {
  await redis.cleanup();
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

describe('config plane rollout reports', () => {
  // Regression test: a tenant served from the snapshot file while the bus was unreachable, and found
  // deleted once the replica caught up (its tombstone compacted away), was dropped from the replica but
  // not from its heartbeat: rollout status showed the replica still serving the deleted tenant, for as
  // long as the replica lived, and a wait on the deletion never ended.
  it('stops reporting a tenant it served from the file once catching up shows it was deleted', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 've-config-plane-rollout-'));
    dirs.push(dir);
    const file = path.join(dir, 'snapshots');
    const bus = createInMemorySnapshotBus();
    const kept = randomUUID();
    const deletedMeanwhile = randomUUID();
    await bus.publish([
      snapshotMessage(sampleSnapshot(kept, 1n)),
      snapshotMessage(sampleSnapshot(deletedMeanwhile, 1n)),
    ]);
    const start = (prefix: string) =>
      startConfigPlane({
        bus,
        sink: new RecordingSink(),
        registry: new Registry(),
        logger: silentLogger,
        redis: redis.client,
        replicaId: `gw-${randomUUID()}`,
        rollout: { prefix, intervalMs: 100 },
        snapshotFile: file,
        snapshotFileDelayMs: 10,
      });
    const first = start(redis.key('first:'));
    await first.ready;
    await first.close();
    await bus.publish([{ kind: 'tombstone', tenantId: deletedMeanwhile, version: 2n }]);
    bus.log.compact({ dropTombstones: true });

    // Back with the bus unreachable: it serves (and reports) what its file holds.
    bus.log.setAvailable(false);
    const prefix = redis.key('second:');
    const plane = start(prefix);
    try {
      await plane.ready;
      expect(plane.status()).toMatchObject({ warmStarted: true, degraded: true });
      const reported = async () =>
        (await readReplicaVersions(redis.client, deletedMeanwhile, { prefix })).map(
          (replica) => replica.appliedVersion,
        );
      await expect.poll(reported).toEqual([1n]);

      bus.log.setAvailable(true);
      await eventually('caught up', () => plane.status().caughtUp && plane.status().tenants === 1);
      await expect.poll(reported, { timeout: 3_000 }).toEqual([null]);
    } finally {
      await plane.close();
    }
  });

  // What rollout status shows of a version a replica refuses: never "applied" (an operator waiting on
  // a revocation would trust it), the replica stays on the version it serves, not up to date.
  it('reports a version it could not apply as not applied, and the next one it applies', async () => {
    const bus = createInMemorySnapshotBus();
    const tenantId = randomUUID();
    await bus.publish([snapshotMessage(sampleSnapshot(tenantId, 1n))]);
    const sink = new RecordingSink();
    const prefix = redis.key('refused:');
    const plane = startConfigPlane({
      bus,
      sink,
      registry: new Registry(),
      logger: silentLogger,
      redis: redis.client,
      replicaId: `gw-${randomUUID()}`,
      rollout: { prefix, intervalMs: 100 },
    });
    const reported = async () =>
      (await readReplicaVersions(redis.client, tenantId, { prefix })).map(
        (replica) => replica.appliedVersion,
      );
    try {
      await plane.ready;
      await expect.poll(reported).toEqual([1n]);

      sink.failWith = new Error('route 1: invalid path_pattern');
      await bus.publish([snapshotMessage(sampleSnapshot(tenantId, 2n))]);
      await eventually('refused', () => plane.status().lastError !== null);
      expect(await reported()).toEqual([1n]);

      sink.failWith = null;
      await bus.publish([snapshotMessage(sampleSnapshot(tenantId, 3n))]);
      await expect.poll(reported).toEqual([3n]);
    } finally {
      await plane.close();
    }
  });
});
