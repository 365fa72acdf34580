import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  eventually,
  type GatewayReplica,
  type HttpResponse,
  sleep,
  startOrigin,
  stopAllServices,
  type TestOrigin,
  TestSystem,
} from './harness.js';

/**
 * Config propagation at system level: admin commands over HTTP reach every gateway replica through the event
 * store, the snapshot projector and Kafka — each a separate OS process. Times are measured and printed
 * precisely; the assertions on them are loose sanity bounds.
 */
const SWITCH_BOUND_MS = 5_000;

let system: TestSystem;
let originA: TestOrigin;
let originB: TestOrigin;
let replicas: GatewayReplica[] = [];
let tenantId = '';
let routeId = '';
let apiKeyId = '';
let apiKey = '';
let originBId = '';
const SUBDOMAIN = 'propagation';

beforeAll(async () => {
  system = await TestSystem.create();
  [originA, originB] = await Promise.all([startOrigin('origin-a'), startOrigin('origin-b')]);
  await system.startControlSide();
}, 180_000);

afterAll(async () => {
  await system?.close();
  await Promise.all([originA?.close(), originB?.close()]);
  await stopAllServices();
});

function originOf(response: HttpResponse): string | undefined {
  const header = response.headers['x-origin'];
  return typeof header === 'string' ? header : undefined;
}

async function publishedVersion(tenant: string): Promise<bigint> {
  const { rows } = await system.database.pool.query<{ published_version: string | null }>(
    'select published_version from snapshot_state where tenant_id = $1',
    [tenant],
  );
  return BigInt(rows[0]?.published_version ?? -1);
}

describe('config propagation from the admin API to every gateway replica', () => {
  it('a replica started after the admin commands serves the tenant at once', async () => {
    tenantId = (
      await system.create('/api/v1/tenants', {
        name: 'Propagation Inc',
        subdomain: SUBDOMAIN,
        clerk_org_id: 'org_propagation',
      })
    ).id;
    const [a, b] = await Promise.all(
      [originA, originB].map((origin) =>
        system.create('/api/v1/origins', { tenant_id: tenantId, name: origin.name, url: origin.url }),
      ),
    );
    originBId = b!.id;
    routeId = (
      await system.create('/api/v1/routes', {
        tenant_id: tenantId,
        path_pattern: '/svc/*',
        origin_id: a!.id,
        auth_mode: 'public',
      })
    ).id;
    await system.create('/api/v1/routes', {
      tenant_id: tenantId,
      path_pattern: '/keyed/*',
      origin_id: a!.id,
      auth_mode: 'apikey_required',
    });
    const key = await system.admin('POST', '/api/v1/api-keys', {
      body: { tenant_id: tenantId, name: 'e2e-key', scopes: ['read'] },
    });
    expect(key.status, key.text).toBe(201);
    apiKeyId = key.body['id'] as string;
    apiKey = key.body['key'] as string;

    // Wait until the snapshot projector has published the tenant's snapshot with the last command...
    const lastPosition = BigInt(key.headers.get('x-event-position') ?? '0');
    await eventually(
      'the snapshot projector publishes the tenant',
      async () => {
        return (await publishedVersion(tenantId)) >= lastPosition;
      },
      { system },
    );

    // ...then start two replicas: once ready, their first requests are served.
    replicas = await system.startGateways(2);
    for (const replica of replicas) {
      const first = await replica.get(SUBDOMAIN, '/svc/hello');
      expect(first.status, `${replica.id}: ${first.body}\n${replica.service.tail()}`).toBe(200);
      expect(originOf(first)).toBe('origin-a');
      const keyed = await replica.get(SUBDOMAIN, '/keyed/x', { 'x-api-key': apiKey });
      expect(keyed.status, keyed.body).toBe(200);
    }
  }, 120_000);

  it('a route update switches both running replicas with no failed request in flight', async () => {
    expect(replicas).toHaveLength(2);
    const targetId = originBId;

    // A steady request loop against both replicas (2 concurrent clients each) during the update. Each
    // client keeps its own list: its requests are sequential, so once one was answered by B every later
    // one (sent after the replica had switched) must be too. Across the two clients of one replica the
    // order of answers says nothing: a request routed just before the switch may finish after one routed
    // just after it.
    type Sample = { at: number; status: number; origin: string | undefined; error?: string };
    const clients = replicas.flatMap((replica) =>
      [0, 1].map((index) => ({ replica, name: `${replica.id} client ${index}`, samples: [] as Sample[] })),
    );
    let running = true;
    const loops = clients.map(async ({ replica, samples }) => {
      while (running) {
        try {
          const response = await replica.get(SUBDOMAIN, '/svc/steady');
          samples.push({ at: performance.now(), status: response.status, origin: originOf(response) });
        } catch (error) {
          samples.push({ at: performance.now(), status: 0, origin: undefined, error: String(error) });
        }
      }
    });
    await sleep(300);
    const sentAt = performance.now();
    const patched = await system.admin('PATCH', `/api/v1/routes/${routeId}`, {
      body: { origin_id: targetId },
    });
    const acknowledgedAt = performance.now();
    expect(patched.status, patched.text).toBe(200);

    try {
      await eventually(
        'every client of both replicas is served by the updated route',
        async () => clients.every((client) => client.samples.some((s) => s.origin === 'origin-b')),
        { system, timeoutMs: 20_000 },
      );
      await sleep(300);
    } finally {
      running = false;
      await Promise.all(loops);
    }

    for (const replica of replicas) {
      const ofReplica = clients.filter((client) => client.replica === replica);
      for (const { name, samples } of ofReplica) {
        const failed = samples.filter((s) => s.status !== 200);
        expect(failed, `${name}: failed requests during the update`).toEqual([]);
        const firstB = samples.findIndex((s) => s.origin === 'origin-b');
        // The switch is clean: before it only A, after it only B.
        expect(
          samples.slice(0, firstB).every((s) => s.origin === 'origin-a'),
          name,
        ).toBe(true);
        expect(
          samples.slice(firstB).every((s) => s.origin === 'origin-b'),
          name,
        ).toBe(true);
      }
      const switchedAt = Math.min(
        ...ofReplica.map(({ samples }) => (samples.find((s) => s.origin === 'origin-b') as Sample).at),
      );
      const requests = ofReplica.reduce((sum, { samples }) => sum + samples.length, 0);
      const switchMs = switchedAt - sentAt;
      console.info(
        `[e2e] route update → ${replica.id} switched ${switchMs.toFixed(1)} ms after the PATCH was sent ` +
          `(${(switchedAt - acknowledgedAt).toFixed(1)} ms after its 200; ${requests} requests, 0 failed)`,
      );
      expect(switchMs).toBeLessThan(SWITCH_BOUND_MS);
    }
  }, 60_000);

  it('a revoked API key stops working on every replica', async () => {
    for (const replica of replicas) {
      expect((await replica.get(SUBDOMAIN, '/keyed/x', { 'x-api-key': apiKey })).status).toBe(200);
    }
    const sentAt = performance.now();
    const revoked = await system.admin('POST', `/api/v1/api-keys/${apiKeyId}/revoke`, {
      body: { reason: 'e2e: leaked' },
    });
    expect(revoked.status, revoked.text).toBe(200);
    const times = await Promise.all(
      replicas.map(async (replica) => {
        await eventually(
          `${replica.id} rejects the revoked key`,
          async () => (await replica.get(SUBDOMAIN, '/keyed/x', { 'x-api-key': apiKey })).status === 401,
          { system, timeoutMs: 20_000, intervalMs: 5 },
        );
        return { id: replica.id, ms: performance.now() - sentAt };
      }),
    );
    for (const { id, ms } of times) {
      console.info(`[e2e] API key revoked → ${id} answers 401 after ${ms.toFixed(1)} ms`);
      expect(ms).toBeLessThan(SWITCH_BOUND_MS);
    }
    // And it stays revoked.
    for (const replica of replicas) {
      expect((await replica.get(SUBDOMAIN, '/keyed/x', { 'x-api-key': apiKey })).status).toBe(401);
    }
  }, 60_000);

  it('deleting the tenant makes both replicas answer 404 for its host', async () => {
    for (const replica of replicas) expect((await replica.get(SUBDOMAIN, '/svc/x')).status).toBe(200);
    const sentAt = performance.now();
    const deleted = await system.admin('DELETE', `/api/v1/tenants/${tenantId}`);
    expect(deleted.status, deleted.text).toBe(204);
    const times = await Promise.all(
      replicas.map(async (replica) => {
        await eventually(
          `${replica.id} forgets the deleted tenant`,
          async () => (await replica.get(SUBDOMAIN, '/svc/x')).status === 404,
          { system, timeoutMs: 20_000, intervalMs: 5 },
        );
        return { id: replica.id, ms: performance.now() - sentAt };
      }),
    );
    for (const { id, ms } of times) {
      console.info(`[e2e] tenant deleted → ${id} answers 404 after ${ms.toFixed(1)} ms`);
      expect(ms).toBeLessThan(SWITCH_BOUND_MS);
    }
    for (const replica of replicas) {
      expect((await replica.get(SUBDOMAIN, '/svc/x')).status).toBe(404);
      expect((await replica.get(SUBDOMAIN, '/keyed/x', { 'x-api-key': apiKey })).status).toBe(404);
    }
  }, 60_000);
});
