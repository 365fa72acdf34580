import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { startRolloutHeartbeat } from '@vantageedge/shared/snapshot-bus/rollout-heartbeat';
import { TEST_INFRA, uniqueSuffix } from '@vantageedge/shared/testing/infrastructure';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import express from 'express';
import { Redis } from 'ioredis';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Caller } from '../auth/caller.js';
import { createErrorHandler } from '../http/errors.js';
import { parseWaitForRollout } from './parse-wait.js';
import { createRolloutRouter } from './rollout-router.js';
import { type RolloutStatus, waitForRollout } from './rollout-status.js';

let db: TestDatabase;
let redis: Redis;
let baseUrl: string;
let server: ReturnType<express.Express['listen']>;
const prefix = `ve-test-${uniqueSuffix()}:`;
const projection = `rollout_${uniqueSuffix()}`;
const visibleTenants = new Set<string>();

async function setTenantVersion(tenantId: string, version: bigint, deleted = false): Promise<void> {
  await db.pool.query(
    `insert into snapshot_state (tenant_id, version, status, snapshot, event_time)
     values ($1, $2, $3, $4, now())
     on conflict (tenant_id) do update set version = excluded.version, status = excluded.status, snapshot = excluded.snapshot`,
    [tenantId, version.toString(), deleted ? 'deleted' : 'live', deleted ? null : '{}'],
  );
  await db.pool.query(
    `insert into projection_checkpoints (name, position) values ($1, $2)
     on conflict (name) do update set position = greatest(projection_checkpoints.position, excluded.position)`,
    [projection, version.toString()],
  );
}

function replica(versions: Map<string, bigint>) {
  const replicaId = `gw-${randomUUID()}`;
  const heartbeat = startRolloutHeartbeat({
    redis,
    replicaId,
    prefix,
    appliedVersions: () => versions,
    intervalMs: 100,
  });
  return {
    replicaId,
    heartbeat,
    apply(tenantId: string, version: bigint) {
      versions.set(tenantId, version);
      heartbeat.applied(tenantId, version);
    },
    remove(tenantId: string) {
      versions.delete(tenantId);
      heartbeat.removed(tenantId);
    },
  };
}

async function get(path: string): Promise<{
  status: number;
  body: RolloutStatus & { error?: { code: string; details: Array<{ field: string }> } };
}> {
  const response = await fetch(`${baseUrl}${path}`);
  return { status: response.status, body: (await response.json()) as never };
}

async function eventuallyStatus(
  tenantId: string,
  check: (status: RolloutStatus) => boolean,
): Promise<RolloutStatus> {
  const deadline = Date.now() + 10_000;
  while (true) {
    const { body } = await get(`/api/v1/tenants/${tenantId}/rollout`);
    if (check(body)) return body;
    if (Date.now() > deadline) throw new Error(`rollout never matched: ${JSON.stringify(body)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

beforeAll(async () => {
  db = await createTestDatabase();
  redis = new Redis(TEST_INFRA.redisUrl);
  const app = express();
  const caller: Caller = { userId: 'user_1', isPlatformAdmin: false, orgId: null, orgRole: null };
  app.use((_req, res, next) => {
    res.locals['caller'] = caller;
    next();
  });
  app.use(
    createRolloutRouter({
      pool: db.pool,
      redis,
      prefix,
      projection,
      authorizer: { access: async (_caller, tenantId) => (visibleTenants.has(tenantId) ? 'read' : 'none') },
    }),
  );
  app.use(createErrorHandler());
  server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server?.close();
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis?.disconnect();
  await db?.drop();
});

describe('rollout status', () => {
  it('lists live replicas with their applied version and says when the change is live everywhere', async () => {
    const tenantId = randomUUID();
    visibleTenants.add(tenantId);
    await setTenantVersion(tenantId, 40n);
    const a = replica(new Map([[tenantId, 40n]]));
    const b = replica(new Map([[tenantId, 31n]]));
    const lagging = await eventuallyStatus(
      tenantId,
      (s) => s.replicas.filter((r) => [a.replicaId, b.replicaId].includes(r.replica_id)).length === 2,
    );
    expect(lagging).toMatchObject({
      tenant_id: tenantId,
      target_version: '40',
      deleted: false,
      live_everywhere: false,
    });
    expect(lagging.replicas.find((r) => r.replica_id === b.replicaId)).toMatchObject({
      applied_version: '31',
      up_to_date: false,
    });

    b.apply(tenantId, 40n);
    const live = await eventuallyStatus(tenantId, (s) => s.live_everywhere);
    expect(live.replicas.every((r) => r.applied_version === '40')).toBe(true);

    // A replica that shuts down leaves the list at once.
    await b.heartbeat.stop();
    await a.heartbeat.stop();
    const gone = await eventuallyStatus(
      tenantId,
      (s) => !s.replicas.some((r) => r.replica_id === b.replicaId),
    );
    expect(gone.replicas.map((r) => r.replica_id)).not.toContain(a.replicaId);
  });

  it('waits for a change: 200 once every replica has it, 202 with the status when time runs out', async () => {
    const tenantId = randomUUID();
    visibleTenants.add(tenantId);
    await setTenantVersion(tenantId, 50n);
    const a = replica(new Map([[tenantId, 50n]]));
    const b = replica(new Map([[tenantId, 50n]]));
    await eventuallyStatus(tenantId, (s) => s.replicas.length >= 2 && s.live_everywhere);

    await setTenantVersion(tenantId, 60n);
    const timedOut = await get(`/api/v1/tenants/${tenantId}/rollout?wait_for_rollout=200ms&min_position=60`);
    expect(timedOut.status).toBe(202);
    expect(timedOut.body).toMatchObject({ target_version: '60', live_everywhere: false });

    const waiting = get(`/api/v1/tenants/${tenantId}/rollout?wait_for_rollout=5s&min_position=60`);
    a.apply(tenantId, 60n);
    b.apply(tenantId, 60n);
    const done = await waiting;
    expect(done.status).toBe(200);
    expect(done.body.live_everywhere).toBe(true);
    await a.heartbeat.stop();
    await b.heartbeat.stop();
  });

  it('counts a deleted tenant as rolled out on replicas that dropped it', async () => {
    const tenantId = randomUUID();
    visibleTenants.add(tenantId);
    const a = replica(new Map([[tenantId, 70n]]));
    await setTenantVersion(tenantId, 71n, true);
    const pending = await eventuallyStatus(tenantId, (s) =>
      s.replicas.some((r) => r.replica_id === a.replicaId),
    );
    expect(pending).toMatchObject({ deleted: true, live_everywhere: false });
    a.remove(tenantId);
    const done = await eventuallyStatus(tenantId, (s) => s.live_everywhere);
    expect(done.replicas.find((r) => r.replica_id === a.replicaId)).toMatchObject({
      applied_version: null,
      up_to_date: true,
    });
    await a.heartbeat.stop();
  });

  it('never calls a change live by pairing the old version with the new checkpoint of a commit between its reads', async () => {
    const tenantId = randomUUID();
    visibleTenants.add(tenantId);
    await setTenantVersion(tenantId, 80n);
    const a = replica(new Map([[tenantId, 80n]]));
    await eventuallyStatus(tenantId, (s) => s.replicas.some((r) => r.replica_id === a.replicaId));

    // The snapshot projector commits version 90 (and its checkpoint) just after the status first reads
    // the tenant's version; a checkpoint read that has not run yet by then runs after the commit.
    let versionReadStarted = false;
    let markCommitted!: () => void;
    const committed = new Promise<void>((resolve) => {
      markCommitted = resolve;
    });
    const racingPool = {
      async query(text: string, values?: unknown[]) {
        if (text.includes('from snapshot_state') && !versionReadStarted) {
          versionReadStarted = true;
          const result = await db.pool.query(text, values);
          await setTenantVersion(tenantId, 90n);
          markCommitted();
          return result;
        }
        if (text.includes('projection_checkpoints') && versionReadStarted) await committed;
        return db.pool.query(text, values);
      },
    };
    const result = await waitForRollout(
      { pool: racingPool as unknown as pg.Pool, redis, prefix, projection },
      { tenantId, minPosition: 90n, timeoutMs: 300 },
    );
    // The replica still has 80: the change is not live anywhere.
    expect(result.done).toBe(false);
    expect(result.status).toMatchObject({ target_version: '90', live_everywhere: false });
    await a.heartbeat.stop();
  });

  it('never calls a change live when the heartbeats of its replicas could not be read', async () => {
    // Regression (e2e/scale-out.cluster.test.ts, flaky on a loaded CI machine): the replica list was read
    // but the read of their hashes timed out (REDIS_COMMAND_TIMEOUT_MS, 50 ms by default); each failed
    // read counted as "replica not live", no replica was left, and live_everywhere was vacuously true:
    // X-Rollout: complete while every replica still served the old config.
    const tenantId = randomUUID();
    visibleTenants.add(tenantId);
    await setTenantVersion(tenantId, 100n);
    const a = replica(new Map([[tenantId, 100n]]));
    await eventuallyStatus(tenantId, (s) => s.replicas.some((r) => r.replica_id === a.replicaId));
    await setTenantVersion(tenantId, 110n);

    // Redis answers the replica list, then stalls for longer than the command timeout once.
    const slow = new Redis(TEST_INFRA.redisUrl, { commandTimeout: 50, maxRetriesPerRequest: 1 });
    await slow.ping();
    let stalled = false;
    const stallingRedis = new Proxy(slow, {
      get(target, property, receiver) {
        if (property === 'pipeline' && !stalled) {
          stalled = true;
          target.stream.pause();
          setTimeout(() => target.stream.resume(), 150);
        }
        const value = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    try {
      const result = await waitForRollout(
        { pool: db.pool, redis: stallingRedis, prefix, projection },
        { tenantId, minPosition: 110n, timeoutMs: 500 },
      );
      expect(stalled).toBe(true);
      // The replica still has 100: the change is not live anywhere.
      expect(result.done).toBe(false);
      expect(result.status).toMatchObject({ target_version: '110', live_everywhere: false });
    } finally {
      slow.disconnect();
      await a.heartbeat.stop();
    }
  });

  it('calls a change live once its tenant’s version holds it, before the checkpoint passes it', async () => {
    // The snapshot projector stores a tenant beside a large one ahead of the large one's batch: its
    // version is in (and published) while the checkpoint is still before it.
    const tenantId = randomUUID();
    const behind = `rollout_behind_${uniqueSuffix()}`;
    await db.pool.query('insert into projection_checkpoints (name, position) values ($1, 100)', [behind]);
    await db.pool.query(
      `insert into snapshot_state (tenant_id, version, status, snapshot, event_time)
       values ($1, 130, 'live', '{}', now())`,
      [tenantId],
    );
    const a = replica(new Map([[tenantId, 130n]]));
    try {
      const result = await waitForRollout(
        { pool: db.pool, redis, prefix, projection: behind },
        { tenantId, minPosition: 130n, timeoutMs: 2_000 },
      );
      expect(result.done).toBe(true);
      expect(result.status).toMatchObject({ target_version: '130', projected_position: '100' });
    } finally {
      await a.heartbeat.stop();
    }
  });

  it("shares one look at a tenant's rollout between every request waiting for it", async () => {
    // Regression: each waiter polled on its own (two PostgreSQL queries and a Redis pipeline every 25 ms
    // for up to 60 s), so one tenant's admins holding many waits multiplied the load on the pool every
    // tenant shares.
    const tenantId = randomUUID();
    visibleTenants.add(tenantId);
    await setTenantVersion(tenantId, 120n);
    const a = replica(new Map([[tenantId, 110n]]));
    await eventuallyStatus(tenantId, (s) => s.replicas.some((r) => r.replica_id === a.replicaId));
    let versionReads = 0;
    const countingPool = {
      query(text: string, values?: unknown[]) {
        if (text.includes('from snapshot_state')) versionReads++;
        return db.pool.query(text, values);
      },
    };
    const deps = { pool: countingPool as unknown as pg.Pool, redis, prefix, projection };
    const wait = () => waitForRollout(deps, { tenantId, minPosition: 120n, timeoutMs: 400 });
    try {
      expect((await wait()).done).toBe(false);
      const alone = versionReads;
      versionReads = 0;
      const results = await Promise.all(Array.from({ length: 20 }, wait));
      expect(results.every((result) => !result.done && result.status?.target_version === '120')).toBe(true);
      expect(versionReads).toBeLessThan(alone * 3);
    } finally {
      await a.heartbeat.stop();
    }
  });

  it('answers bad input with 400 naming the field, and hides tenants the caller cannot see', async () => {
    const badId = await get('/api/v1/tenants/not-a-uuid/rollout');
    expect(badId.status).toBe(400);
    expect(badId.body.error).toMatchObject({ code: 'validation_failed', details: [{ field: 'id' }] });
    const tenantId = randomUUID();
    visibleTenants.add(tenantId);
    await setTenantVersion(tenantId, 5n);
    const badWait = await get(`/api/v1/tenants/${tenantId}/rollout?wait_for_rollout=soon`);
    expect(badWait.status).toBe(400);
    expect(badWait.body.error?.details[0]?.field).toBe('wait_for_rollout');
    const misspelt = await get(`/api/v1/tenants/${tenantId}/rollout?wait=5s`);
    expect(misspelt.status).toBe(400);
    expect(misspelt.body.error).toMatchObject({
      code: 'validation_failed',
      details: [{ field: 'wait', issue: 'is not a known query parameter' }],
    });
    const hidden = randomUUID();
    await setTenantVersion(hidden, 6n);
    expect((await get(`/api/v1/tenants/${hidden}/rollout`)).status).toBe(404);
    const unknown = randomUUID();
    visibleTenants.add(unknown);
    expect((await get(`/api/v1/tenants/${unknown}/rollout`)).status).toBe(404);
  });

  it('says why the newest version was not published, and a wait for it answers 202 at once', async () => {
    // Regression: a snapshot the projector refused (too large for the bus, or for gateways to inflate)
    // showed only live_everywhere: false, and a wait_for_rollout ran its whole time out.
    const tenantId = randomUUID();
    visibleTenants.add(tenantId);
    await setTenantVersion(tenantId, 70n);
    const r = replica(new Map([[tenantId, 70n]]));
    const published = await eventuallyStatus(tenantId, (s) =>
      s.replicas.some((x) => x.replica_id === r.replicaId),
    );
    expect(published.publish_error).toBeNull();

    const error = 'snapshot of tenant … is 35704118 bytes of JSON, over the 33554432-byte limit';
    await setTenantVersion(tenantId, 80n);
    await db.pool.query(
      'update snapshot_state set failed_version = version, publish_error = $2 where tenant_id = $1',
      [tenantId, error],
    );
    const refused = await get(`/api/v1/tenants/${tenantId}/rollout`);
    expect(refused.status).toBe(200);
    expect(refused.body).toMatchObject({
      target_version: '80',
      live_everywhere: false,
      publish_error: error,
    });

    const started = Date.now();
    const waited = await get(`/api/v1/tenants/${tenantId}/rollout?wait_for_rollout=10s&min_position=80`);
    expect(waited.status).toBe(202);
    expect(waited.body.publish_error).toBe(error);
    expect(Date.now() - started).toBeLessThan(3000);

    // The next change is a new version: the old refusal is not its error.
    await setTenantVersion(tenantId, 90n);
    expect((await get(`/api/v1/tenants/${tenantId}/rollout`)).body.publish_error).toBeNull();
    await r.heartbeat.stop();
  });
});

describe('wait_for_rollout parsing', () => {
  it('accepts seconds and milliseconds up to a minute', () => {
    expect(parseWaitForRollout('5s')).toEqual({ ok: true, ms: 5000 });
    expect(parseWaitForRollout('250ms')).toEqual({ ok: true, ms: 250 });
    expect(parseWaitForRollout('1.5')).toEqual({ ok: true, ms: 1500 });
    expect(parseWaitForRollout('61s')).toMatchObject({ ok: false });
    expect(parseWaitForRollout('-1s')).toMatchObject({ ok: false });
  });
});
