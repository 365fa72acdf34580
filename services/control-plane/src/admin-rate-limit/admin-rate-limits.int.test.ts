import { createRedisClient, type RedisClient } from '@vantageedge/shared/redis/client';
import { TEST_INFRA, uniqueSuffix } from '@vantageedge/shared/testing/infrastructure';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ApiResponse,
  type ControlPlaneHarness,
  json,
  startControlPlane,
} from '../testing/control-plane-harness.js';
import { type AdminRateLimits, createAdminRateLimiter } from './admin-rate-limits.js';

/**
 * Regression tests: a tenant admin could send commands without any limit, each appending events to the
 * one log every projector and gateway folds. Now a tenant's commands and a caller's requests are token
 * buckets, keyed by the authenticated tenant and user: over one → 429 `admin_rate_limited` naming the
 * limit, with Retry-After, before anything is appended; other tenants and other callers are unaffected.
 */

const error = (response: ApiResponse) =>
  json(response)['error'] as { code: string; details: Array<{ field: string; issue: string }> };

function expectLimited(response: ApiResponse, field: string, retryAfter: string): void {
  expect(response.status, JSON.stringify(response.body)).toBe(429);
  expect(error(response).code).toBe('admin_rate_limited');
  expect(error(response).details[0]?.field).toBe(field);
  expect(response.headers.get('retry-after')).toBe(retryAfter);
}

async function tenant(cp: ControlPlaneHarness, subdomain: string, org: string): Promise<string> {
  const response = await cp.request('POST', '/api/v1/tenants', {
    body: { name: subdomain, subdomain, clerk_org_id: org },
  });
  expect(response.status, JSON.stringify(response.body)).toBe(201);
  return json(response)['id'] as string;
}

const origin = (cp: ControlPlaneHarness, token: string, tenantId: string, name: string) =>
  cp.request('POST', '/api/v1/origins', {
    token,
    body: { tenant_id: tenantId, name, url: `https://${name}.example.com` },
  });

describe('per-tenant command limit (memory buckets, a clock the test moves)', () => {
  let cp: ControlPlaneHarness;
  let clock = 1_000_000;
  const limits: AdminRateLimits = {
    tenantCommands: { perMinute: 60, burst: 3 },
    userRequests: { perMinute: 60_000, burst: 10_000 },
  };
  const ids = { a: '', b: '' };
  const tokens = { adminA: '', memberA: '', adminB: '' };

  beforeAll(async () => {
    cp = await startControlPlane({ withReadSide: true, adminRateLimits: { limits, now: () => clock } });
    // Creating a tenant is no command on an existing tenant: it spends no tenant's budget.
    ids.a = await tenant(cp, 'rate-a', 'org_rate_a');
    ids.b = await tenant(cp, 'rate-b', 'org_rate_b');
    tokens.adminA = await cp.token({ userId: 'user_rate_admin_a', orgId: 'org_rate_a', orgRole: 'admin' });
    tokens.memberA = await cp.token({ userId: 'user_rate_member_a', orgId: 'org_rate_a', orgRole: 'member' });
    tokens.adminB = await cp.token({ userId: 'user_rate_admin_b', orgId: 'org_rate_b', orgRole: 'admin' });
    // The reads below find the tenants (and their Clerk orgs) in the read models: wait until they hold them.
    await cp.readModelsCaughtUp();
  }, 60_000);
  afterAll(async () => {
    await cp?.close();
  });

  it('tenant A over its budget gets 429; B still writes, A still reads; A writes again once refilled', async () => {
    // Another tenant's admin naming A is refused (404: A does not exist for it) and spends none of A's budget.
    for (let i = 0; i < 5; i++) {
      expect((await origin(cp, tokens.adminB, ids.a, `b-at-a-${i}`)).status).toBe(404);
    }
    for (let i = 0; i < 3; i++) {
      const created = await origin(cp, tokens.adminA, ids.a, `a-${i}`);
      expect(created.status, JSON.stringify(created.body)).toBe(201);
    }

    const before = (await cp.allEvents()).length;
    const refused = await origin(cp, tokens.adminA, ids.a, 'a-over');
    expectLimited(refused, 'tenant_commands_per_minute', '1');
    expect(error(refused).details[0]?.issue).toBe('at most 60 per minute (burst 3)');
    // A platform admin's command on A counts against A too, and so does any verb.
    expectLimited(
      await cp.request('PATCH', `/api/v1/tenants/${ids.a}`, { body: { name: 'renamed' } }),
      'tenant_commands_per_minute',
      '1',
    );
    expect((await cp.allEvents()).length).toBe(before);

    // At the same time: tenant B's commands go through, and A's reads (another user of A, A's admin).
    const created = await origin(cp, tokens.adminB, ids.b, 'b-0');
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    for (const token of [tokens.memberA, tokens.adminA]) {
      const read = await cp.request('GET', `/api/v1/origins?tenant_id=${ids.a}`, { token });
      expect(read.status, JSON.stringify(read.body)).toBe(200);
    }

    clock += 1_000; // Retry-After: 1
    expect((await origin(cp, tokens.adminA, ids.a, 'a-after')).status).toBe(201);
    expectLimited(await origin(cp, tokens.adminA, ids.a, 'a-again'), 'tenant_commands_per_minute', '1');
    clock += 60_000;
  });

  it('a config apply of many changes counts as one command', async () => {
    clock += 60_000; // full again
    const read = await cp.request('GET', `/api/v1/tenants/${ids.b}/config/document`, {
      token: tokens.adminB,
    });
    expect(read.status, JSON.stringify(read.body)).toBe(200);
    const document = json(read)['document'] as { origins: Array<Record<string, unknown>> };
    for (let i = 0; i < 5; i++)
      document.origins.push({ name: `doc-${i}`, url: `https://doc-${i}.example.com` });
    const applied = await cp.request('POST', `/api/v1/tenants/${ids.b}/config/apply`, {
      token: tokens.adminB,
      body: document,
    });
    expect(applied.status, JSON.stringify(applied.body)).toBe(200);
    expect(json(applied)['changes']).toHaveLength(5);
    // 1 of 3 spent: two more commands, then the limit.
    expect((await origin(cp, tokens.adminB, ids.b, 'b-1')).status).toBe(201);
    expect((await origin(cp, tokens.adminB, ids.b, 'b-2')).status).toBe(201);
    expectLimited(await origin(cp, tokens.adminB, ids.b, 'b-3'), 'tenant_commands_per_minute', '1');
  });
});

describe('per-caller request limit (memory buckets, a clock the test moves)', () => {
  let cp: ControlPlaneHarness;
  let clock = 1_000_000;
  const limits: AdminRateLimits = {
    tenantCommands: null,
    userRequests: { perMinute: 30, burst: 4 },
  };
  let tenantId = '';
  let created = '';
  // Reads wait for the read models to hold the tenant (X-Min-Position of its creation).
  const read = (token: string) =>
    cp.request('GET', `/api/v1/tenants/${tenantId}`, { token, headers: { 'x-min-position': created } });

  beforeAll(async () => {
    cp = await startControlPlane({ withReadSide: true, adminRateLimits: { limits, now: () => clock } });
    tenantId = await tenant(cp, 'rate-user', 'org_rate_user');
    created = (await cp.store.headPosition()).toString();
  }, 60_000);
  afterAll(async () => {
    await cp?.close();
  });

  it('counts every request of a caller, reads included; other callers are unaffected', async () => {
    const chatty = await cp.token({ userId: 'user_chatty', orgId: 'org_rate_user', orgRole: 'admin' });
    const quiet = await cp.token({ userId: 'user_quiet', orgId: 'org_rate_user', orgRole: 'admin' });
    for (let i = 0; i < 4; i++) expect((await read(chatty)).status).toBe(200);
    expectLimited(await read(chatty), 'user_requests_per_minute', '2');
    // Refused before the body is read or the command runs: nothing appended.
    const before = (await cp.allEvents()).length;
    const refused = await origin(cp, chatty, tenantId, 'chatty');
    expectLimited(refused, 'user_requests_per_minute', '2');
    expect(error(refused).details[0]?.issue).toBe('at most 30 per minute (burst 4)');
    expect((await cp.allEvents()).length).toBe(before);

    expect((await read(quiet)).status).toBe(200);
    expect((await origin(cp, quiet, tenantId, 'quiet')).status).toBe(201);
    // The platform admin is a caller like any other, with its own bucket.
    expect((await cp.request('PATCH', `/api/v1/tenants/${tenantId}`, { body: { name: 'x' } })).status).toBe(
      200,
    );

    clock += 2_000; // Retry-After: 2
    expect((await origin(cp, chatty, tenantId, 'chatty')).status).toBe(201);
  });

  it('is keyed by the verified user: forged tokens naming a user spend nothing of its budget', async () => {
    const { createClerkTestKeys, signClerkToken } = await import('@vantageedge/shared/testing/clerk-tokens');
    const forger = await createClerkTestKeys();
    const forged = await signClerkToken(forger, {
      userId: 'user_victim',
      orgId: 'org_rate_user',
      orgRole: 'admin',
    });
    for (let i = 0; i < 10; i++) expect((await read(forged)).status).toBe(401);
    const victim = await cp.token({ userId: 'user_victim', orgId: 'org_rate_user', orgRole: 'admin' });
    for (let i = 0; i < 4; i++) expect((await read(victim)).status).toBe(200);
    expectLimited(await read(victim), 'user_requests_per_minute', '2');
  });
});

describe('in Redis: every control-plane replica shares one budget', () => {
  let cp: ControlPlaneHarness;
  let redis: RedisClient;
  const keyPrefix = `ve-test-admin-rate-${uniqueSuffix()}:`;
  // One token every 3 s: the test's few commands never see a refill before it waits for one.
  const limits: AdminRateLimits = {
    tenantCommands: { perMinute: 20, burst: 3 },
    userRequests: { perMinute: 60_000, burst: 10_000 },
  };

  beforeAll(async () => {
    redis = createRedisClient({ url: TEST_INFRA.redisUrl, commandTimeoutMs: 1_000, name: 'admin-rate-test' });
    cp = await startControlPlane({ adminRateLimits: { limits, redis, keyPrefix } });
  }, 60_000);
  afterAll(async () => {
    await cp?.close();
    if (redis) {
      const keys = await redis.keys(`${keyPrefix}*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    }
  });

  it('commands another replica counted leave fewer for this one; Retry-After is honoured', async () => {
    const tenantId = await tenant(cp, 'rate-redis', 'org_rate_redis');
    const admin = await cp.token({ userId: 'user_rate_redis', orgId: 'org_rate_redis', orgRole: 'admin' });
    // Another replica (same Redis, same prefix) took two of the tenant's three tokens.
    const otherReplica = createAdminRateLimiter({ limits, redis, keyPrefix });
    await otherReplica.chargeTenant(tenantId);
    await otherReplica.chargeTenant(tenantId);

    expect((await origin(cp, admin, tenantId, 'r-0')).status).toBe(201);
    const refused = await origin(cp, admin, tenantId, 'r-1');
    expect(refused.status, JSON.stringify(refused.body)).toBe(429);
    expect(error(refused)).toMatchObject({ code: 'admin_rate_limited' });
    expect(error(refused).details[0]?.field).toBe('tenant_commands_per_minute');
    expect(refused.headers.get('retry-after')).toMatch(/^[1-3]$/);
    expect(await redis.exists(`${keyPrefix}cp:admin-rate:tenant:${tenantId}`)).toBe(1);

    await new Promise((resolve) => setTimeout(resolve, 1_000 * Number(refused.headers.get('retry-after'))));
    expect((await origin(cp, admin, tenantId, 'r-1')).status).toBe(201);
  });

  it("counts a tenant's event bytes in Redis too: a take over the burst from a full bucket leaves it in debt", async () => {
    const bytes = { ...limits, tenantEventBytes: { perMinute: 60, burst: 1_000 } };
    const replicas = [0, 1].map(() => createAdminRateLimiter({ limits: bytes, redis, keyPrefix }));
    await replicas[0]!.chargeTenantEventBytes('tenant-bytes-redis', 1_500);
    await expect(replicas[1]!.chargeTenantEventBytes('tenant-bytes-redis', 10)).rejects.toMatchObject({
      code: 'admin_rate_limited',
      retryAfterSeconds: 510,
    });
    const ttl = await redis.pttl(`${keyPrefix}cp:admin-rate:tenant-bytes:tenant-bytes-redis`);
    // Kept until the debt is repaid and the bucket full again (1,500 s), not a refill's 1,000 s.
    expect(ttl).toBeGreaterThan(1_400_000);
  });

  it('with Redis unreachable, each replica still limits in its own memory', async () => {
    const down = createRedisClient({
      url: 'redis://127.0.0.1:1',
      commandTimeoutMs: 50,
      name: 'admin-rate-down',
    });
    const errors: unknown[] = [];
    try {
      const limiter = createAdminRateLimiter({
        limits,
        redis: down,
        keyPrefix,
        onStoreError: (e) => errors.push(e),
      });
      for (let i = 0; i < 3; i++) await limiter.chargeTenant('tenant-while-redis-is-down');
      await expect(limiter.chargeTenant('tenant-while-redis-is-down')).rejects.toMatchObject({
        kind: 'rate_limited',
        code: 'admin_rate_limited',
        retryAfterSeconds: 3,
      });
      expect(errors.length).toBe(4);
    } finally {
      down.disconnect();
    }
  });
});
