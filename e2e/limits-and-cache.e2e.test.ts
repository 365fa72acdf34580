import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storedInRedis } from './cache-store.js';
import {
  type GatewayReplica,
  type HttpResponse,
  httpRequest,
  startOrigin,
  stopAllServices,
  type TestOrigin,
  TestSystem,
} from './harness.js';
import { whenServedEverywhere } from './served-version.js';

/**
 * Shared rate limits and cache at system level: three gateway replicas (separate processes) on the shared Redis enforce one
 * rate limit together and share one response cache. Config comes through the admin API, the snapshot
 * projector and Kafka like in production.
 */
const SUBDOMAIN = 'limits';
const RATE = 100;
const BURST = 200;
const BURST_REQUESTS = 1_000;
/** Refill of the speed-independent check: 0.01 tokens per second. */
const STRICT_RATE = 0.01;

let system: TestSystem;
let tenantId = '';
let origin: TestOrigin;
let replicas: GatewayReplica[] = [];

beforeAll(async () => {
  system = await TestSystem.create({
    gatewayEnv: {
      // Under a 1,000-request burst on a 2-core test machine a Redis reply can take longer than the
      // production default of 50 ms; the limiter would then fail open to per-replica local limits,
      // which is a different feature (covered by the rate limiter's own tests). This test is about the shared
      // Redis path, so give Redis time to answer, and check below that no request fell back.
      REDIS_COMMAND_TIMEOUT_MS: '2000',
      GATEWAY_ACCESS_LOG_SAMPLE_RATE: '0',
    },
  });
  origin = await startOrigin('limits-origin');
  await system.startControlSide();
  replicas = await system.startGateways(3);

  tenantId = (await system.create('/api/v1/tenants', { name: 'Limits Ltd', subdomain: SUBDOMAIN })).id;
  const added = await system.create('/api/v1/origins', {
    tenant_id: tenantId,
    name: 'backend',
    url: origin.url,
  });
  const route = (pathPattern: string, policy: Record<string, unknown>) =>
    system.create('/api/v1/routes', {
      tenant_id: tenantId,
      path_pattern: pathPattern,
      origin_id: added.id,
      auth_mode: 'public',
      ...policy,
    });
  await route('/limited/*', {
    rate_limit: { algorithm: 'token_bucket', requests_per_second: RATE, burst: BURST },
  });
  await route('/strict/*', {
    rate_limit: { algorithm: 'token_bucket', requests_per_second: STRICT_RATE, burst: BURST },
  });
  const cached = await route('/cached/*', {
    cache_policy: { enabled: true, ttl_seconds: 300, cache_key_pattern: 'path+query' },
  });

  // Every replica has applied the snapshot with both routes (its admin /status lists the version), so
  // no probe request spends tokens or fills the cache.
  await whenServedEverywhere(replicas, tenantId, cached.position, system);
}, 180_000);

afterAll(async () => {
  await system?.close();
  await origin?.close();
  await stopAllServices();
});

interface BurstResult {
  admitted: number;
  limited: HttpResponse[];
  other: HttpResponse[];
  perReplica: number[];
  elapsedMs: number;
}

/** BURST_REQUESTS concurrent requests, round-robin over the replicas, each to its own path. */
async function burst(prefix: string): Promise<BurstResult> {
  const started = performance.now();
  const results = await Promise.all(
    Array.from({ length: BURST_REQUESTS }, (_, i) =>
      (replicas[i % replicas.length] as GatewayReplica).get(SUBDOMAIN, `${prefix}r${i}`),
    ),
  );
  const elapsedMs = performance.now() - started;
  return {
    admitted: results.filter((r) => r.status === 200).length,
    limited: results.filter((r) => r.status === 429),
    other: results.filter((r) => r.status !== 200 && r.status !== 429),
    perReplica: replicas.map(
      (_replica, index) => results.filter((r, i) => i % replicas.length === index && r.status === 200).length,
    ),
    elapsedMs,
  };
}

/** Decisions the replicas took with their local fail-open limiter instead of the shared Redis bucket. */
async function fallbackDecisions(replica: GatewayReplica): Promise<number> {
  const metrics = (await httpRequest(`${replica.adminUrl}/metrics`)).body;
  return metrics
    .split('\n')
    .filter((line) => line.startsWith('vantageedge_gateway_ratelimit_fallback_total'))
    .reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);
}

function originHits(prefix: string): number {
  return [...origin.hits.entries()].filter(([path]) => path.startsWith(prefix)).length;
}

describe('rate limits and cache shared by three replicas through Redis', () => {
  it(`token bucket ${RATE} rps burst ${BURST}: a ${BURST_REQUESTS}-request burst over three replicas admits ${BURST} plus the refill during the burst`, async () => {
    const result = await burst('/limited/');
    // Tokens refill at RATE per second while the burst is in flight, so the exact allowance is
    // BURST + RATE × (time from the first to the last decision); the burst's wall time bounds that.
    const refill = (RATE * result.elapsedMs) / 1000;
    console.info(
      `[e2e] rate limit ${RATE} rps / burst ${BURST}: ${result.admitted} of ${BURST_REQUESTS} admitted ` +
        `(${result.limited.length} × 429, ${result.other.length} other) in ${result.elapsedMs.toFixed(0)} ms; ` +
        `per replica ${result.perReplica.join('/')}; allowance ${BURST} + refill ≤ ${refill.toFixed(1)}; ` +
        `admitted beyond the bucket: ${result.admitted - BURST}`,
    );
    expect(result.other.map((r) => `${r.status} ${r.body.slice(0, 200)}`)).toEqual([]);
    expect(result.admitted).toBeGreaterThanOrEqual(BURST - 3);
    expect(result.admitted).toBeLessThanOrEqual(Math.ceil(BURST + refill) + 3);
    // Every decision came from the shared Redis bucket, none from the local fail-open fallback.
    for (const replica of replicas) {
      expect(await fallbackDecisions(replica), `${replica.id} fell back to local limits`).toBe(0);
    }
    // The replicas took turns at the one bucket (a replica the machine holds up for the burst's first
    // tenth of a second can find it empty); the limited answers say so, with Retry-After.
    expect(result.perReplica.filter((count) => count > 0).length).toBeGreaterThanOrEqual(2);
    expect(result.limited[0]?.headers['retry-after']).toEqual(expect.any(String));
    // The origin saw exactly the admitted requests.
    expect(originHits('/limited/')).toBe(result.admitted);
  }, 90_000);

  it(`independent of machine speed: a bucket of ${BURST} refilling ${STRICT_RATE} rps admits ${BURST} ± 1 of ${BURST_REQUESTS} across three replicas`, async () => {
    // Same burst, but a refill so slow that even a slow machine adds under one token: this pins the
    // shared bucket exactly (three per-replica buckets would admit up to ${3 * BURST}).
    const result = await burst('/strict/');
    const refill = (STRICT_RATE * result.elapsedMs) / 1000;
    console.info(
      `[e2e] rate limit ${STRICT_RATE} rps / burst ${BURST}: ${result.admitted} of ${BURST_REQUESTS} admitted ` +
        `(${result.limited.length} × 429, ${result.other.length} other) in ${result.elapsedMs.toFixed(0)} ms; ` +
        `per replica ${result.perReplica.join('/')}; refill during the burst ${refill.toFixed(2)}`,
    );
    expect(result.other.map((r) => `${r.status} ${r.body.slice(0, 200)}`)).toEqual([]);
    expect(result.admitted).toBeGreaterThanOrEqual(BURST - 1);
    expect(result.admitted).toBeLessThanOrEqual(BURST + Math.ceil(refill) + 1);
    for (const replica of replicas) expect(await fallbackDecisions(replica)).toBe(0);
    expect(result.perReplica.filter((count) => count > 0).length).toBeGreaterThanOrEqual(2);
    expect(originHits('/strict/')).toBe(result.admitted);
  }, 90_000);

  it('a cached response is a MISS on one replica and a HIT on the others (via Redis)', async () => {
    const path = '/cached/item?id=42';
    const first = await replicas[0]?.get(SUBDOMAIN, path);
    expect(first?.status, first?.body).toBe(200);
    expect(first?.headers['x-cache']).toBe('MISS');
    expect(origin.hits.get(path)).toBe(1);
    // The MISS stores the response once its body has ended: the others are asked once it has landed.
    await storedInRedis(system.redisKeyPrefix, tenantId, first?.body ?? '');
    for (const replica of replicas.slice(1)) {
      const response = await replica.get(SUBDOMAIN, path);
      expect(response.status, response.body).toBe(200);
      expect(response.headers['x-cache'], `${replica.id}`).toBe('HIT');
      expect(response.body).toBe(first?.body);
    }
    // Still one origin request: the other replicas were served from the shared cache.
    expect(origin.hits.get(path)).toBe(1);
    // A different query is a different entry.
    const other = await replicas[2]?.get(SUBDOMAIN, '/cached/item?id=43');
    expect(other?.headers['x-cache']).toBe('MISS');
  }, 30_000);
});
