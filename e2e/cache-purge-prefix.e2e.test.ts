import type http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storedInRedis } from './cache-store.js';
import {
  eventually,
  type GatewayReplica,
  startOrigin,
  stopAllServices,
  type TestOrigin,
  TestSystem,
} from './harness.js';
import { whenServedEverywhere } from './served-version.js';

/**
 * Purge by URL prefix through the real processes: the admin API (control plane), the purge over Redis,
 * and two gateway replicas that each hold the responses in memory and share them through Redis.
 * Two tenants with the same paths: a purge of one never touches the other's responses.
 */
const ALPHA = 'prefixalpha';
const BRAVO = 'prefixbravo';

let system: TestSystem;
let origin: TestOrigin;
let replicas: GatewayReplica[] = [];
let alphaId = '';
/** Tenant id by subdomain. */
const tenantIds = new Map<string, string>();
let bravoToken = '';
/** Per URL: the origin answers 503 while set. */
const failing = new Set<string>();

/** `/soft/…` may be served stale when the origin fails; everything else is cached by the route policy. */
function answer(req: http.IncomingMessage, res: http.ServerResponse): boolean {
  const url = req.url ?? '/';
  if (!url.startsWith('/soft/')) return false;
  if (failing.has(url)) {
    res.writeHead(503, { 'content-type': 'text/plain' });
    res.end('origin down');
    return true;
  }
  res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=600, stale-if-error=600' });
  res.end(`${url} #${origin.hits.get(url)}`);
  return true;
}

async function createTenant(subdomain: string, orgId: string): Promise<string> {
  const { id: tenantId } = await system.create('/api/v1/tenants', {
    name: subdomain,
    subdomain,
    clerk_org_id: orgId,
  });
  const added = await system.create('/api/v1/origins', {
    tenant_id: tenantId,
    name: 'backend',
    url: origin.url,
  });
  const route = await system.create('/api/v1/routes', {
    tenant_id: tenantId,
    path_pattern: '/*',
    origin_id: added.id,
    auth_mode: 'public',
    cache_policy: { enabled: true, ttl_seconds: 300, cache_key_pattern: 'path' },
  });
  tenantIds.set(subdomain, tenantId);
  await whenServedEverywhere(replicas, tenantId, route.position, system);
  return tenantId;
}

beforeAll(async () => {
  system = await TestSystem.create({ gatewayEnv: { GATEWAY_ACCESS_LOG_SAMPLE_RATE: '0' } });
  origin = await startOrigin('prefix-origin', answer);
  await system.startControlSide();
  replicas = await system.startGateways(2);
  alphaId = await createTenant(ALPHA, 'org_prefix_alpha');
  const bravoId = await createTenant(BRAVO, 'org_prefix_bravo');
  const user = await system.admin('POST', '/api/v1/users', {
    body: {
      tenant_id: bravoId,
      clerk_user_id: 'user_prefix_bravo',
      email: 'admin@bravo.example',
      role: 'admin',
    },
  });
  expect(user.status, user.text).toBe(201);
  bravoToken = await system.token({
    userId: 'user_prefix_bravo',
    orgId: 'org_prefix_bravo',
    orgRole: 'org:admin',
  });
}, 180_000);

afterAll(async () => {
  await system?.close();
  await origin?.close();
  await stopAllServices();
});

/** Fetches `path` until every replica answers it from its cache (the first request fills it). */
async function cachedEverywhere(subdomain: string, path: string): Promise<string> {
  const first = await replicas[0]!.get(subdomain, path);
  expect(first.status, first.body).toBe(200);
  // Asked before replica 0's write landed, the other replica would fetch from the origin itself.
  await storedInRedis(system.redisKeyPrefix, tenantIds.get(subdomain)!, first.body);
  for (const replica of replicas) {
    await eventually(
      `${replica.id} serves ${subdomain}${path} from its cache`,
      async () => (await replica.get(subdomain, path)).headers['x-cache'] === 'HIT',
      { system, timeoutMs: 10_000, intervalMs: 50 },
    );
  }
  return first.body;
}

async function purge(body: unknown, token?: string) {
  return system.admin('POST', `/api/v1/tenants/${alphaId}/cache/purge`, {
    body,
    ...(token === undefined ? {} : { token }),
  });
}

describe('purge by URL prefix across replicas', () => {
  it('drops every response below the prefix on every replica; neighbours and other tenants stay cached', async () => {
    const below = ['/products/1', '/products/a/b'];
    const beside = ['/productsx', '/other'];
    const bodies = new Map<string, string>();
    for (const path of [...below, ...beside]) bodies.set(path, await cachedEverywhere(ALPHA, path));
    const bravoBody = await cachedEverywhere(BRAVO, '/products/1');

    const response = await purge({ prefixes: ['/products/'] });
    expect(response.status, response.text).toBe(200);
    expect(response.body).toMatchObject({ tenant_id: alphaId, prefixes: ['/products'], soft: false });

    for (const replica of replicas) {
      for (const path of below) {
        await eventually(
          `${replica.id} no longer serves ${path} from its cache`,
          async () => (await replica.get(ALPHA, path)).body !== bodies.get(path),
          { system, timeoutMs: 10_000, intervalMs: 50 },
        );
      }
    }
    for (const replica of replicas) {
      for (const path of beside) {
        const kept = await replica.get(ALPHA, path);
        expect(kept.headers['x-cache'], `${replica.id} ${path}`).toBe('HIT');
        expect(kept.body).toBe(bodies.get(path));
      }
      const other = await replica.get(BRAVO, '/products/1');
      expect(other.headers['x-cache'], `${replica.id} bravo`).toBe('HIT');
      expect(other.body).toBe(bravoBody);
    }
    // The neighbours never went back to the origin.
    for (const path of beside) expect(origin.hits.get(path), path).toBe(1);
  }, 60_000);

  it('a soft prefix purge makes the responses stale on every replica: served for stale-if-error, refetched otherwise', async () => {
    const path = '/soft/shelf/item';
    const stored = await cachedEverywhere(ALPHA, path);
    const response = await purge({ prefixes: ['/soft/shelf'], soft: true });
    expect(response.status, response.text).toBe(200);
    failing.add(path);
    for (const replica of replicas) {
      await eventually(
        `${replica.id} treats the soft-purged response as stale`,
        async () => {
          const answered = await replica.get(ALPHA, path);
          return answered.headers['x-cache'] === 'STALE' && answered.body === stored;
        },
        { system, timeoutMs: 10_000, intervalMs: 50 },
      );
    }
    failing.delete(path);
    const refetched = await replicas[0]!.get(ALPHA, path);
    expect(refetched.headers['x-cache']).toBe('MISS');
    expect(refetched.body).not.toBe(stored);
  }, 60_000);

  it('another tenant’s admin cannot purge this tenant’s prefixes: 404, and every response stays cached', async () => {
    const path = '/guarded/1';
    const stored = await cachedEverywhere(ALPHA, path);
    const refused = await purge({ prefixes: ['/guarded'] }, bravoToken);
    // To another tenant's admin, this tenant does not exist.
    expect(refused.status, refused.text).toBe(404);
    const refusedSoft = await purge({ prefixes: ['/guarded'], soft: true }, bravoToken);
    expect(refusedSoft.status, refusedSoft.text).toBe(404);
    for (const replica of replicas) {
      const kept = await replica.get(ALPHA, path);
      expect(kept.headers['x-cache'], replica.id).toBe('HIT');
      expect(kept.body).toBe(stored);
    }
    expect(origin.hits.get(path)).toBe(1);
  }, 60_000);
});
