import { randomUUID } from 'node:crypto';
import { hashApiKey } from '@vantageedge/shared/domain/api-key-hash';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  send,
  startTestGateway,
  startTestOrigin,
  TEST_PEPPER,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { MemoryLimitStore } from './memory-limit-store.js';
import { createRateLimitStage } from './rate-limit-stage.js';
import { createRateLimiter } from './rate-limiter.js';

/**
 * Regression tests: every address of an IPv6 /64 — which one subscriber (a home connection, a cloud
 * VM) is handed whole — was counted apart, so rotating the interface id escaped a `scope: ip` rate
 * limit and the failed-authentication limiter (six requests under a one-request limit: six 200s; key
 * guesses after the 429 kept getting 401). An IPv6 client is now counted by its /64. The client's
 * address comes from a trusted proxy here, as behind a load balancer.
 */
const KEY = 've_live_ipv6_subnet_key_0000000000000000';

let origin: TestOrigin;
let gateway: TestGateway;

beforeAll(async () => {
  origin = await startTestOrigin('ipv6-subnet-origin');
  const logger = createLogger({ service: 'test', level: 'error' });
  const registry = createMetricsRegistry('ipv6-subnet-clients', { defaultMetrics: false });
  const limiter = createRateLimiter({ store: new MemoryLimitStore(), registry, logger });
  gateway = await startTestGateway(
    { GATEWAY_TRUSTED_PROXIES: '127.0.0.1/32', GATEWAY_AUTH_FAILURES_PER_MINUTE: '3' },
    { stages: [createRateLimitStage(limiter)] },
  );
  const originId = randomUUID();
  gateway.store.apply(
    buildSnapshot({
      subdomain: 'subnet',
      origins: [{ id: originId, targets: [origin.url] }],
      routes: [
        {
          origin_id: originId,
          path_pattern: '/limited/*',
          rate_limit: { requests_per_second: 0.001, burst: 1, scope: 'ip' },
        },
        { origin_id: originId, path_pattern: '/keyed/*', auth_mode: 'apikey_required' },
      ],
      apiKeys: [{ key_hash: hashApiKey(TEST_PEPPER, KEY) }],
    }),
  );
});

afterAll(async () => {
  await gateway?.close();
  await origin?.close();
});

const from = (client: string, path: string, headers: Record<string, string> = {}) =>
  send(gateway, 'subnet.localhost', path, { headers: { 'x-forwarded-for': client, ...headers } });

describe('IPv6 clients', () => {
  it('share one `scope: ip` bucket per /64; another /64 has its own', async () => {
    const statuses: number[] = [];
    for (let i = 1; i <= 4; i++) statuses.push((await from(`2001:db8:1:2::${i}`, '/limited/x')).status);
    expect(statuses).toEqual([200, 429, 429, 429]);
    expect((await from('2001:db8:1:3::1', '/limited/x')).status).toBe(200);
  });

  it('share one allowance of failed authentications per /64', async () => {
    const guess = (client: string) => from(client, '/keyed/x', { 'x-api-key': `ve_live_wrong_${client}` });
    const statuses: number[] = [];
    for (let i = 1; i <= 5; i++) statuses.push((await guess(`2001:db8:7:7::${i}`)).status);
    expect(statuses).toEqual([401, 401, 401, 429, 429]);
    expect((await guess('2001:db8:7:8::1')).status).toBe(401);
  });
});
