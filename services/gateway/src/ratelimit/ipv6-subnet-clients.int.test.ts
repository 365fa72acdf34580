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

/**
 * Regression tests: an IPv6 address that carries an IPv4 client's address was counted by its /64 too.
 * Behind NAT64/SIIT (RFC 6052's well-known prefix 64:ff9b::/96, an IPv6-only network's edge) every IPv4
 * client is in one /64, so one client spent every IPv4 client's `scope: ip` allowance and locked them all
 * out with its failed authentications; a 6to4 host (2002:<IPv4>::/48) had 65,536 /64s, each with an
 * allowance of its own. Such an address is now counted by the IPv4 address it carries.
 */
describe('IPv4 clients in IPv6 addresses', () => {
  it('are counted apart behind NAT64, and as the same client as the IPv4 address itself', async () => {
    expect((await from('64:ff9b::198.51.100.1', '/limited/x')).status).toBe(200);
    expect((await from('64:ff9b::198.51.100.2', '/limited/x')).status).toBe(200);
    expect((await from('64:ff9b::c633:6401', '/limited/x')).status).toBe(429);
    expect((await from('198.51.100.2', '/limited/x')).status).toBe(429);
  });

  it('do not lock each other out with failed authentications behind NAT64', async () => {
    const guess = (client: string) => from(client, '/keyed/x', { 'x-api-key': `ve_live_wrong_${client}` });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await guess('64:ff9b::203.0.113.1')).status);
    expect(statuses).toEqual([401, 401, 401, 429]);
    expect((await guess('64:ff9b::203.0.113.2')).status).toBe(401);
  });

  it('share one bucket per 6to4 host, whichever of its /64s they come from', async () => {
    // 2002:c000:221::/48 is the 6to4 prefix of 192.0.2.33.
    expect((await from('2002:c000:221:1::1', '/limited/x')).status).toBe(200);
    expect((await from('2002:c000:221:2::1', '/limited/x')).status).toBe(429);
    expect((await from('192.0.2.33', '/limited/x')).status).toBe(429);
  });
});
