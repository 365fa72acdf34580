import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hashApiKey } from '@vantageedge/shared/domain/api-key-hash';
import type { TenantSnapshot } from '@vantageedge/shared/domain/gateway-config';
import { oidcUserPrincipal } from '@vantageedge/shared/gateway-policies/caller-principal';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import {
  type ClerkTestKeys,
  createClerkTestKeys,
  signClerkToken,
} from '@vantageedge/shared/testing/clerk-tokens';
import { createTestRedis, type TestRedis } from '@vantageedge/shared/testing/redis';
import { RedisQuotaStore } from '@vantageedge/shared/usage/quota-store';
import { RedisUsageBatchStore } from '@vantageedge/shared/usage/redis-usage-batch-store';
import { decodeUsageCell } from '@vantageedge/shared/usage/usage-cells';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCacheStage } from './cache/cache-stage.js';
import { RedisCacheStore } from './cache/redis-cache-store.js';
import { createResponseCache, type ResponseCache } from './cache/response-cache.js';
import { createQuotaStage } from './quota/quota-stage.js';
import { createRateLimitStage } from './ratelimit/rate-limit-stage.js';
import { createRateLimiter } from './ratelimit/rate-limiter.js';
import { RedisLimitStore } from './ratelimit/redis-limit-store.js';
import {
  type GatewayResponse,
  send,
  startTestGateway,
  startTestOrigin,
  TEST_PEPPER,
  type TestGateway,
  type TestOrigin,
} from './testing/gateway-harness.js';
import { buildSnapshot } from './testing/snapshots.js';
import { UsageRecorder } from './usage/usage-recorder.js';

/**
 * Two tenants whose callers have the same identity strings: tenant B copied tenant A's OIDC settings
 * (the same issuer, audience and key set, as with a public IdP both use), lists the same Clerk user,
 * names its service account like A's, and has an API key with A's key id. Two replicas share the real
 * Redis (rate limits, quotas, the response cache, usage batches), each serving both tenants. Nothing
 * kept per caller is shared: B's traffic spends none of A's buckets or quotas, is never served A's
 * per-caller entries, and is counted only in B's usage.
 */
type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;

const ISSUER = 'https://idp.shared-identities.test';
const AUDIENCE = 'shared-api';
const CLERK_USER = 'user_2sharedacrosstenants';
const SERVICE_ID = 'billing-service';
const KEY_ID = randomUUID();
const METERED_KEY_ID = randomUUID();
/**
 * Both tenants' routes have the same ids (and so does their origin): keys that named the route but not
 * the tenant would meet. (The control plane gives every resource an id of its own; ids are no secret.)
 */
const ROUTE_IDS = {
  limited: randomUUID(),
  limitedToo: randomUUID(),
  me: randomUUID(),
  svc: randomUUID(),
  keyed: randomUUID(),
  metered: randomUUID(),
};
const ORIGIN_ID = randomUUID();
const stamp = Date.now();
const HOST_A = `xida${stamp}.localhost`;
const HOST_B = `xidb${stamp}.localhost`;

interface Tenant {
  snapshot: TenantSnapshot;
  host: string;
  origin: TestOrigin;
  serviceKeys: KeyPair;
  apiKey: string;
  meteredKey: string;
}

let redis: TestRedis;
let clerk: ClerkTestKeys;
let jwks: Server;
let oidcKeys: KeyPair;
const replicas: Array<{ gateway: TestGateway; cache: ResponseCache; usage: UsageRecorder }> = [];
let tenantA: Tenant;
let tenantB: Tenant;

async function tenant(name: string, host: string): Promise<Tenant> {
  const origin = await startTestOrigin(name);
  const serviceKeys = await generateKeyPair('ES256');
  const serviceJwk = { ...(await exportJWK(serviceKeys.publicKey)), kid: `${name}-svc`, alg: 'ES256' };
  const apiKey = `ve_test_${randomUUID()}`;
  const meteredKey = `ve_test_${randomUUID()}`;
  const originId = ORIGIN_ID;
  const snapshot = buildSnapshot({
    subdomain: host.slice(0, host.indexOf('.')),
    clerkUserIds: [CLERK_USER],
    origins: [{ id: originId, targets: [origin.url] }],
    routes: [
      // One request per caller on this route.
      {
        id: ROUTE_IDS.limited,
        origin_id: originId,
        path_pattern: '/limited/*',
        auth_mode: 'jwt_required',
        rate_limit: { requests_per_second: 0.001, burst: 1, scope: 'user' },
      },
      {
        id: ROUTE_IDS.limitedToo,
        origin_id: originId,
        path_pattern: '/limited-too/*',
        auth_mode: 'jwt_required',
        rate_limit: { requests_per_second: 0.001, burst: 1, scope: 'user' },
      },
      {
        id: ROUTE_IDS.me,
        origin_id: originId,
        path_pattern: '/me/*',
        auth_mode: 'jwt_required',
        cache_policy: { mode: 'override', ttl_seconds: 60 },
      },
      {
        id: ROUTE_IDS.svc,
        origin_id: originId,
        path_pattern: '/svc/*',
        auth_mode: 'service',
        rate_limit: { requests_per_second: 0.001, burst: 1, scope: 'user' },
      },
      {
        id: ROUTE_IDS.keyed,
        origin_id: originId,
        path_pattern: '/keyed/*',
        auth_mode: 'apikey_required',
        rate_limit: { requests_per_second: 0.001, burst: 1, scope: 'api_key' },
      },
      {
        id: ROUTE_IDS.metered,
        origin_id: originId,
        path_pattern: '/metered/*',
        auth_mode: 'apikey_required',
      },
    ],
    apiKeys: [
      { id: KEY_ID, key_hash: hashApiKey(TEST_PEPPER, apiKey) },
      { id: METERED_KEY_ID, key_hash: hashApiKey(TEST_PEPPER, meteredKey), quota: { requests_per_day: 2 } },
    ],
    settings: {
      // Three requests per caller across the tenant's routes.
      rate_limit: { requests_per_second: 0.001, burst: 3, scope: 'user' },
      oidc: {
        issuer: ISSUER,
        audience: AUDIENCE,
        jwks_url: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks`,
      },
      service_accounts: [{ id: SERVICE_ID, keys: [serviceJwk] }],
    },
  });
  return { snapshot, host, origin, serviceKeys, apiKey, meteredKey };
}

async function startReplica(index: number): Promise<void> {
  const logger = createLogger({ service: 'test', level: 'error' });
  const registry = createMetricsRegistry(`identities_across_tenants_${index}`, { defaultMetrics: false });
  const limiter = createRateLimiter({
    store: new RedisLimitStore(redis.client),
    registry,
    logger,
    keyPrefix: redis.prefix,
  });
  const cache = createResponseCache({
    store: new RedisCacheStore(redis.client, { keyPrefix: redis.prefix }),
    l1MaxBytes: 1_000_000,
    registry,
    logger,
  });
  const usage = new UsageRecorder({
    batches: new RedisUsageBatchStore(redis.client, redis.prefix),
    replicaId: `replica-${index}-${randomUUID()}`,
    intervalMs: 60_000,
  });
  const gateway = await startTestGateway(
    { CLERK_JWT_KEY: clerk.publicKeyPem },
    {
      stages: [
        createRateLimitStage(limiter),
        createQuotaStage({ store: new RedisQuotaStore(redis.client), keyPrefix: redis.prefix }),
        createCacheStage(cache),
      ],
      usage,
    },
  );
  for (const { snapshot } of [tenantA, tenantB]) {
    gateway.store.apply(snapshot);
    await cache.prepareTenant(snapshot.tenant_id);
  }
  replicas.push({ gateway, cache, usage });
}

beforeAll(async () => {
  redis = createTestRedis('identities-across-tenants');
  clerk = await createClerkTestKeys();
  oidcKeys = await generateKeyPair('RS256');
  const oidcJwk = { ...(await exportJWK(oidcKeys.publicKey)), kid: 'idp-1', alg: 'RS256', use: 'sig' };
  jwks = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: [oidcJwk] }));
  });
  await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
  tenantA = await tenant('tenant-a-origin', HOST_A);
  tenantB = await tenant('tenant-b-origin', HOST_B);
  await startReplica(1);
  await startReplica(2);
});

afterAll(async () => {
  for (const { gateway, cache, usage } of replicas) {
    await gateway.close();
    await cache.close();
    await usage.close();
  }
  await tenantA?.origin.close();
  await tenantB?.origin.close();
  await new Promise<void>((resolve) => jwks?.close(() => resolve()));
  await redis?.cleanup();
});

const oidcToken = (sub: string) =>
  new SignJWT({})
    .setProtectedHeader({ alg: 'RS256', kid: 'idp-1' })
    .setIssuer(ISSUER)
    .setSubject(sub)
    .setAudience(AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + 300)
    .sign(oidcKeys.privateKey);

const serviceToken = (of: Tenant) => {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({
      alg: 'ES256',
      kid: `${of === tenantA ? 'tenant-a-origin' : 'tenant-b-origin'}-svc`,
    })
    .setIssuer(SERVICE_ID)
    .setSubject(SERVICE_ID)
    .setAudience(of.host)
    .setIssuedAt(now)
    .setExpirationTime(now + 60)
    .sign(of.serviceKeys.privateKey);
};

/** Tenant A's requests go to the first replica, tenant B's to the second: only Redis is shared. */
function get(of: Tenant, path: string, headers: Record<string, string>): Promise<GatewayResponse> {
  const replica = replicas[of === tenantA ? 0 : 1]!;
  return send(replica.gateway, of.host, path, { headers });
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe('the same caller identity at two tenants', () => {
  it("an OIDC subject of the issuer both use: B's requests spend none of A's route or tenant bucket", async () => {
    const sub = `auth0|${randomUUID()}`;
    const token = await oidcToken(sub);
    expect((await get(tenantB, '/limited/x', bearer(token))).status).toBe(200);
    expect((await get(tenantB, '/limited/x', bearer(token))).status).toBe(429);
    // B's tenant-wide bucket of three: the refused request above counted in none.
    expect((await get(tenantB, '/me/one', bearer(token))).status).toBe(200);
    expect((await get(tenantB, '/me/two', bearer(token))).status).toBe(200);
    expect((await get(tenantB, '/me/three', bearer(token))).status).toBe(429);
    // A's buckets for the same subject are full.
    expect((await get(tenantA, '/limited/x', bearer(token))).status).toBe(200);
    expect((await get(tenantA, '/me/one', bearer(token))).status).toBe(200);
    expect((await get(tenantA, '/me/two', bearer(token))).status).toBe(200);
    expect((await get(tenantA, '/me/three', bearer(token))).status).toBe(429);
  });

  it("a Clerk user both tenants list: B's requests spend none of A's bucket", async () => {
    const token = await signClerkToken(clerk, { userId: CLERK_USER });
    expect((await get(tenantB, '/limited/clerk', bearer(token))).status).toBe(200);
    expect((await get(tenantB, '/limited/clerk', bearer(token))).status).toBe(429);
    expect((await get(tenantA, '/limited/clerk', bearer(token))).status).toBe(200);
  });

  it("a service account named like A's: B's service spends none of A's service's bucket", async () => {
    expect((await get(tenantB, '/svc/x', bearer(await serviceToken(tenantB)))).status).toBe(200);
    expect((await get(tenantB, '/svc/x', bearer(await serviceToken(tenantB)))).status).toBe(429);
    expect((await get(tenantA, '/svc/x', bearer(await serviceToken(tenantA)))).status).toBe(200);
  });

  it("an API key with A's key id: B's key spends none of A's key bucket nor A's key quota", async () => {
    expect((await get(tenantB, '/keyed/x', { 'x-api-key': tenantB.apiKey })).status).toBe(200);
    expect((await get(tenantB, '/keyed/x', { 'x-api-key': tenantB.apiKey })).status).toBe(429);
    expect((await get(tenantA, '/keyed/x', { 'x-api-key': tenantA.apiKey })).status).toBe(200);

    for (let i = 0; i < 2; i++)
      expect((await get(tenantB, '/metered/x', { 'x-api-key': tenantB.meteredKey })).status).toBe(200);
    const refused = await get(tenantB, '/metered/x', { 'x-api-key': tenantB.meteredKey });
    expect(refused.status).toBe(429);
    expect(refused.json()['error']).toMatchObject({ code: 'quota_exceeded' });
    const a = await get(tenantA, '/metered/x', { 'x-api-key': tenantA.meteredKey });
    expect(a.status).toBe(200);
    expect(a.headers['x-quota-remaining']).toBe('1');
  });

  it("a per-caller cache entry: B's request for A's subject is never served A's answer, nor A B's", async () => {
    const sub = `google-oauth2|${randomUUID()}`;
    const token = await oidcToken(sub);
    const path = `/me/profile-${randomUUID()}`;
    const filled = await get(tenantA, path, bearer(token));
    expect(filled.headers['x-cache']).toBe('MISS');
    expect(filled.json()['origin']).toBe('tenant-a-origin');
    const other = await get(tenantB, path, bearer(token));
    expect(other.headers['x-cache']).toBe('MISS');
    expect(other.json()['origin']).toBe('tenant-b-origin');
    const again = await get(tenantA, path, bearer(token));
    expect(again.headers['x-cache']).toBe('HIT');
    expect(again.json()['origin']).toBe('tenant-a-origin');
  });

  it("two routes of one tenant limited alike count on their own buckets, and on the tenant's one together", async () => {
    const token = await oidcToken(`auth0|${randomUUID()}`);
    expect((await get(tenantA, '/limited/y', bearer(token))).status).toBe(200);
    expect((await get(tenantA, '/limited/y', bearer(token))).status).toBe(429);
    expect((await get(tenantA, '/limited-too/y', bearer(token))).status).toBe(200);
    expect((await get(tenantA, '/limited-too/y', bearer(token))).status).toBe(429);
    expect((await get(tenantA, '/me/y', bearer(token))).status).toBe(200);
    const spent = await get(tenantA, '/me/z', bearer(token));
    expect(spent.status).toBe(429);
    expect(spent.headers['ratelimit']).toMatch(/^"tenant_user";r=0;/);
  });

  it("counts each tenant's requests in its own usage only", async () => {
    const sub = `auth0|${randomUUID()}`;
    const token = await oidcToken(sub);
    for (let i = 0; i < 2; i++) await get(tenantB, `/me/usage-${i}`, bearer(token));
    await get(tenantA, '/me/usage-a', bearer(token));
    for (const { usage } of replicas) await usage.flush();
    const store = new RedisUsageBatchStore(redis.client, redis.prefix);
    const principal = oidcUserPrincipal(ISSUER, sub);
    const byTenant = new Map<string, number>();
    for (const batchId of await store.list()) {
      for (const [field, requests] of await store.read(batchId)) {
        const cell = decodeUsageCell(field);
        if (cell?.userId !== principal) continue;
        byTenant.set(cell.tenantId, (byTenant.get(cell.tenantId) ?? 0) + requests);
      }
    }
    expect(Object.fromEntries(byTenant)).toEqual({
      [tenantA.snapshot.tenant_id]: 1,
      [tenantB.snapshot.tenant_id]: 2,
    });
  });
});
