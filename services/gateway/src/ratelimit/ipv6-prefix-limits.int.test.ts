import { randomUUID } from 'node:crypto';
import { hashApiKey } from '@vantageedge/shared/domain/api-key-hash';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { createTestRedis } from '@vantageedge/shared/testing/redis';
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
import { createRateLimitStage } from './rate-limit-stage.js';
import { createRateLimiter } from './rate-limiter.js';
import { RedisLimitStore } from './redis-limit-store.js';

/**
 * A client holding a /48 (a business line, a free tunnel-broker allocation, a cloud account) has 65,536
 * /64s: counted by its /64, each was a fresh `scope: ip` allowance, so rotating /64s escaped a
 * one-request limit at every request. A limit's `ipv6_prefix` counts IPv6 clients by the network its
 * tenant says they are handed; without it a client is counted by its /64, and an IPv4 client (or one an
 * IPv6 address carries) by its address. Counted in the real Redis, clients behind a trusted proxy.
 */
describe('a rate limit counting IPv6 clients by a wider prefix', () => {
  const redis = createTestRedis('ipv6-prefix');
  const host = 'prefixed.localhost';
  let origin: TestOrigin;
  let gateway: TestGateway;

  beforeAll(async () => {
    origin = await startTestOrigin('ipv6-prefix-origin');
    const limiter = createRateLimiter({
      store: new RedisLimitStore(redis.client),
      registry: createMetricsRegistry('ipv6_prefix', { defaultMetrics: false }),
      logger: createLogger({ service: 'test', level: 'error' }),
      keyPrefix: redis.prefix,
    });
    gateway = await startTestGateway(
      { GATEWAY_TRUSTED_PROXIES: '127.0.0.1/32' },
      { stages: [createRateLimitStage(limiter)] },
    );
    const originId = randomUUID();
    const oneRequest = { requests_per_second: 0.001, burst: 1 };
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'prefixed',
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [
          {
            origin_id: originId,
            path_pattern: '/per-48/*',
            rate_limit: { ...oneRequest, scope: 'ip', ipv6_prefix: 48 },
          },
          {
            origin_id: originId,
            path_pattern: '/per-address/*',
            rate_limit: { ...oneRequest, scope: 'ip', ipv6_prefix: 128 },
          },
          { origin_id: originId, path_pattern: '/per-64/*', rate_limit: { ...oneRequest, scope: 'ip' } },
        ],
      }),
    );
  });

  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
    await redis.cleanup();
  });

  const from = (client: string, path: string) =>
    send(gateway, host, path, { headers: { 'x-forwarded-for': client } });

  it('gives a /48 one allowance, whichever of its /64s a request comes from', async () => {
    const statuses: number[] = [];
    for (const client of ['2001:db8:5:1::1', '2001:db8:5:2::1', '2001:db8:5:ffff::9', '2001:db8:5::1'])
      statuses.push((await from(client, '/per-48/x')).status);
    expect(statuses).toEqual([200, 429, 429, 429]);
    // Another /48 has its own; IPv4 clients are counted by their address as before.
    expect((await from('2001:db8:6:1::1', '/per-48/x')).status).toBe(200);
    expect((await from('198.51.100.7', '/per-48/x')).status).toBe(200);
    expect((await from('::ffff:198.51.100.7', '/per-48/x')).status).toBe(429);
  });

  it('counts each address apart at /128, and by the /64 without a prefix', async () => {
    expect((await from('2001:db8:9:1::1', '/per-address/x')).status).toBe(200);
    expect((await from('2001:db8:9:1::2', '/per-address/x')).status).toBe(200);
    expect((await from('2001:db8:9:1:0:0:0:1', '/per-address/x')).status).toBe(429);

    expect((await from('2001:db8:9:1::1', '/per-64/x')).status).toBe(200);
    expect((await from('2001:db8:9:1::2', '/per-64/x')).status).toBe(429);
    expect((await from('2001:db8:9:2::1', '/per-64/x')).status).toBe(200);
  });

  it('keeps one Redis key per counted network', async () => {
    const keys = await redis.client.keys(`${redis.prefix}*:r:*`);
    const callers = keys.map((key) => key.slice(key.indexOf(':ip:') + 4)).sort();
    expect(callers).toEqual(
      [
        '198.51.100.7',
        '2001:db8:5::/48',
        '2001:db8:6::/48',
        '2001:db8:9:1:0:0:0:1/128',
        '2001:db8:9:1:0:0:0:2/128',
        '2001:db8:9:1::/64',
        '2001:db8:9:2::/64',
      ].sort(),
    );
  });
});

/**
 * The replica's own per-client counts take the network from GATEWAY_CLIENT_IPV6_PREFIX: with 48, key
 * guesses from every /64 of one /48 spend one allowance of failed authentications (by its /64s, a /48
 * had 65,536 allowances).
 */
describe('failed authentications with GATEWAY_CLIENT_IPV6_PREFIX=48', () => {
  const key = 've_live_ipv6_prefix_key_000000000000000000';
  let origin: TestOrigin;
  let gateway: TestGateway;

  beforeAll(async () => {
    origin = await startTestOrigin('ipv6-prefix-auth-origin');
    gateway = await startTestGateway({
      GATEWAY_TRUSTED_PROXIES: '127.0.0.1/32',
      GATEWAY_AUTH_FAILURES_PER_MINUTE: '3',
      GATEWAY_CLIENT_IPV6_PREFIX: '48',
    });
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'guessed',
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [{ origin_id: originId, path_pattern: '/keyed/*', auth_mode: 'apikey_required' }],
        apiKeys: [{ key_hash: hashApiKey(TEST_PEPPER, key) }],
      }),
    );
  });

  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
  });

  const guess = (client: string) =>
    send(gateway, 'guessed.localhost', '/keyed/x', {
      headers: { 'x-forwarded-for': client, 'x-api-key': `ve_live_wrong_${client}` },
    });

  it('counts every /64 of a /48 as one client', async () => {
    const statuses: number[] = [];
    for (let subnet = 1; subnet <= 5; subnet++)
      statuses.push((await guess(`2001:db8:7:${subnet}::1`)).status);
    expect(statuses).toEqual([401, 401, 401, 429, 429]);
    expect((await guess('2001:db8:8:1::1')).status).toBe(401);
  });
});
