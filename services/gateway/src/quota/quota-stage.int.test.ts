import { randomUUID } from 'node:crypto';
import { hashApiKey } from '@vantageedge/shared/domain/api-key-hash';
import { createTestRedis } from '@vantageedge/shared/testing/redis';
import { type QuotaStore, RedisQuotaStore } from '@vantageedge/shared/usage/quota-store';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  send,
  startTestGateway,
  startTestOrigin,
  TEST_PEPPER,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { createQuotaStage } from './quota-stage.js';

/** The quota stage in a real gateway pipeline, counting in the real Redis. */
describe('the quota stage', () => {
  const redis = createTestRedis('quota-stage');
  let origin: TestOrigin;
  let gateway: TestGateway;
  let failing: TestGateway;
  const originId = randomUUID();
  const keyId = randomUUID();
  const key = `ve_test_${randomUUID()}`;
  const freeKey = `ve_test_${randomUUID()}`;
  const spentKey = `ve_test_${randomUUID()}`;
  const failingRegistry = new Registry();

  const snapshot = (subdomain: string, tenantQuota: Record<string, number> | undefined) =>
    buildSnapshot({
      subdomain,
      origins: [{ id: originId, targets: [origin.url] }],
      routes: [
        { path_pattern: '/keyed/*', origin_id: originId, auth_mode: 'apikey_required' },
        { path_pattern: '/open/*', origin_id: originId },
      ],
      apiKeys: [
        { id: keyId, key_hash: hashApiKey(TEST_PEPPER, key), quota: { requests_per_day: 3 } },
        { key_hash: hashApiKey(TEST_PEPPER, freeKey) },
        {
          key_hash: hashApiKey(TEST_PEPPER, spentKey),
          quota: { requests_per_day: 2, requests_per_month: 2 },
        },
      ],
      ...(tenantQuota ? { settings: { quota: tenantQuota } } : {}),
    });

  beforeAll(async () => {
    origin = await startTestOrigin('quota-origin');
    gateway = await startTestGateway(
      {},
      { stages: [createQuotaStage({ store: new RedisQuotaStore(redis.client), keyPrefix: redis.prefix })] },
    );
    gateway.store.apply(snapshot('metered', { requests_per_day: 100 }));
    gateway.store.apply(snapshot('unmetered', undefined));
    const down: QuotaStore = {
      consume: () => Promise.reject(new Error('Redis is down')),
      read: () => Promise.reject(new Error('Redis is down')),
    };
    failing = await startTestGateway(
      {},
      { stages: [createQuotaStage({ store: down, keyPrefix: 'x:', registry: failingRegistry })] },
    );
    failing.store.apply(snapshot('metered', { requests_per_day: 100 }));
  });

  afterAll(async () => {
    await gateway?.close();
    await failing?.close();
    await origin?.close();
    await redis.cleanup();
  });

  it("announces the tightest window: the key's 3 a day under the tenant's 100, then refuses naming the key", async () => {
    const host = 'metered.localhost';
    const answers = [];
    for (let i = 0; i < 4; i++)
      answers.push(await send(gateway, host, `/keyed/${i}`, { headers: { 'x-api-key': key } }));
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 429]);
    expect(answers.slice(0, 3).map((answer) => answer.headers['x-quota-remaining'])).toEqual(['2', '1', '0']);
    expect(answers[0]?.headers['x-quota-limit']).toBe('3');
    const refused = answers[3]!;
    expect(refused.json()).toMatchObject({ error: { code: 'quota_exceeded' } });
    expect(String((refused.json()['error'] as { message: string }).message)).toContain(
      "API key's daily quota of 3",
    );
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);

    // The key's refusals did not count against the tenant: 3 of its 100 are used.
    const open = await send(gateway, host, '/open/1');
    expect(open.status).toBe(200);
    expect(open.headers['x-quota-limit']).toBe('100');
    expect(open.headers['x-quota-remaining']).toBe('96');
  });

  // Regression test: Retry-After named the first full window, the day's, so a client that waited for
  // midnight was refused again by the month's quota, used up as well.
  it('tells a client whose daily and monthly quotas are both used up to retry when the month ends', async () => {
    const host = 'metered.localhost';
    const headers = { 'x-api-key': spentKey };
    for (let i = 0; i < 2; i++) expect((await send(gateway, host, '/keyed/1', { headers })).status).toBe(200);
    const refused = await send(gateway, host, '/keyed/1', { headers });
    const now = new Date();
    const monthEnds = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1);
    const secondsToMonthEnd = Math.ceil((monthEnds - now.getTime()) / 1000);
    expect(refused.status).toBe(429);
    // Within the seconds between the refusal and the reading of the clock above.
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(secondsToMonthEnd - 5);
    expect(refused.headers['x-quota-reset']).toBe(refused.headers['retry-after']);
  });

  // Regression test: WebSocket upgrades ran only the rate-limit stage at connect, so a used-up key
  // still opened connections.
  it('refuses a WebSocket upgrade with a used-up key (429 quota_exceeded at connect)', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const socket = new WebSocket(`${gateway.url.replace('http', 'ws')}/keyed/ws`, {
        headers: { host: 'metered.localhost', 'x-api-key': key },
      });
      socket.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      socket.once('open', () => {
        socket.close();
        resolve(101);
      });
      socket.once('error', reject);
    });
    expect(status).toBe(429);
  });

  it('costs nothing where no quota applies: no headers, no counter', async () => {
    const open = await send(gateway, 'unmetered.localhost', '/open/1');
    expect(open.status).toBe(200);
    expect(open.headers['x-quota-remaining']).toBeUndefined();
    const free = await send(gateway, 'unmetered.localhost', '/keyed/1', {
      headers: { 'x-api-key': freeKey },
    });
    expect(free.status).toBe(200);
    expect(free.headers['x-quota-remaining']).toBeUndefined();
  });

  it('serves requests uncounted when the counters are unreachable (fail-open), and counts that', async () => {
    const answer = await send(failing, 'metered.localhost', '/keyed/1', { headers: { 'x-api-key': key } });
    expect(answer.status).toBe(200);
    expect(answer.headers['x-quota-remaining']).toBeUndefined();
    const metrics = await failingRegistry.getSingleMetricAsString(
      'vantageedge_gateway_quota_decisions_total',
    );
    expect(metrics).toContain('outcome="unavailable"} 1');
  });
});
