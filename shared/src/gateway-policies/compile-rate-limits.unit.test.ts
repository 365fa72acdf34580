import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  type RateLimitPolicy,
  routeConfig,
  type TenantSnapshot,
  tenantSettings,
} from '../domain/gateway-config.js';
import { compileRateLimits, limitKey } from './compile-rate-limits.js';

/**
 * What a gateway compiles from a rate limit stored before the control plane bounded its numbers (old
 * events, old snapshots): whatever the policy says, a fast-mode lease is at most 1,000 units (what a
 * replica may hold unspent) and Redis is never sent a TTL it refuses (a whole number of ms, at most 30
 * days), so one tenant's policy cannot fail its script on the shared Redis.
 */
const MAX_LEASE = 1_000;
const MAX_TTL_MS = 30 * 24 * 3600 * 1000;

function compile(policy: Partial<RateLimitPolicy>, level: 'tenant' | 'route' = 'route') {
  // The stored (snapshot) shape: what older events carry, as the snapshot projector folds them.
  const stored = {
    algorithm: 'token_bucket',
    scope: 'route',
    accuracy: 'exact',
    on_store_failure: 'open',
    ...policy,
  };
  const tenant: TenantSnapshot['tenant'] = {
    id: randomUUID(),
    name: 'acme',
    subdomain: 'acme',
    clerk_org_id: null,
    settings: tenantSettings.parse({ rate_limit: level === 'tenant' ? stored : null }),
  };
  const route = routeConfig.parse({
    id: randomUUID(),
    origin_id: randomUUID(),
    path_pattern: '/api/*',
    auth_mode: 'public',
    rate_limit: level === 'route' ? stored : null,
  });
  const compiled = compileRateLimits(tenant, route);
  expect(compiled.descriptors).toHaveLength(1);
  return { descriptor: compiled.descriptors[0]!, header: compiled.policyHeader! };
}

const expectSafe = (descriptor: ReturnType<typeof compile>['descriptor']) => {
  expect(Number.isInteger(descriptor.leaseSize)).toBe(true);
  expect(descriptor.leaseSize).toBeGreaterThanOrEqual(1);
  expect(descriptor.leaseSize).toBeLessThanOrEqual(MAX_LEASE);
  expect(Number.isInteger(descriptor.spec.ttlMs)).toBe(true);
  expect(descriptor.spec.ttlMs).toBeGreaterThanOrEqual(1);
  expect(descriptor.spec.ttlMs).toBeLessThanOrEqual(MAX_TTL_MS);
  expect(Number.isFinite(descriptor.spec.capacity)).toBe(true);
  if (descriptor.spec.algorithm === 'token_bucket') {
    expect(descriptor.spec.ratePerMs).toBeGreaterThan(0);
    // The longest a refused request is told to wait (a whole bucket) stays an integer Redis can return.
    expect(Math.ceil(descriptor.spec.capacity / descriptor.spec.ratePerMs)).toBeLessThan(2 ** 53);
  }
};

describe('compiled rate limits stay within what Redis can run', () => {
  it.each([
    ['a sliding-window limit of 2^53-1', Number.MAX_SAFE_INTEGER],
    ['a sliding-window limit of 10,000,000', 10_000_000],
  ])('caps the fast-mode lease of %s', (_what, limit) => {
    for (const level of ['tenant', 'route'] as const) {
      const { descriptor } = compile(
        { algorithm: 'sliding_window', requests_per_second: 1, window_seconds: 1, limit, accuracy: 'fast' },
        level,
      );
      expect(descriptor.spec.capacity).toBe(limit);
      expectSafe(descriptor);
      expect(descriptor.leaseSize).toBe(MAX_LEASE);
    }
  });

  it('caps the fast-mode lease of a 1,000,000 rps limit without an explicit limit or burst', () => {
    for (const algorithm of ['sliding_window', 'token_bucket'] as const) {
      const { descriptor } = compile({ algorithm, requests_per_second: 1_000_000, accuracy: 'fast' });
      expectSafe(descriptor);
      expect(descriptor.leaseSize).toBe(MAX_LEASE);
    }
  });

  it('keeps small leases as they were (about 100 ms of the rate, at most a quarter of the capacity)', () => {
    expect(compile({ requests_per_second: 100, burst: 200, accuracy: 'fast' }).descriptor.leaseSize).toBe(10);
    expect(
      compile({
        algorithm: 'sliding_window',
        requests_per_second: 1,
        window_seconds: 60,
        limit: 600,
        accuracy: 'fast',
      }).descriptor.leaseSize,
    ).toBe(1);
    expect(compile({ requests_per_second: 10, burst: 8, accuracy: 'fast' }).descriptor.leaseSize).toBe(1);
  });

  it.each([1e-14, 1e-300, 5e-324])(
    'a token bucket of %s rps with a large burst gets a TTL Redis accepts and a finite policy header',
    (rps) => {
      for (const level of ['tenant', 'route'] as const) {
        const { descriptor, header } = compile({ requests_per_second: rps, burst: 10_000_000 }, level);
        expectSafe(descriptor);
        expect(descriptor.spec.ttlMs).toBe(MAX_TTL_MS);
        expect(header).toMatch(/;q=10000000;w=\d+$/);
      }
    },
  );

  it('keeps the TTL of ordinary limits: the refill time plus a second, or two windows', () => {
    expect(compile({ requests_per_second: 100, burst: 200 }).descriptor.spec.ttlMs).toBe(3_000);
    expect(compile({ requests_per_second: 3, burst: 1 }).descriptor.spec.ttlMs).toBe(1_334);
    expect(
      compile({ algorithm: 'sliding_window', requests_per_second: 1, window_seconds: 3600, limit: 5 })
        .descriptor.spec.ttlMs,
    ).toBe(7_200_000);
    expect(compile({ requests_per_second: 100, burst: 200 }).header).toBe('"route";q=200;w=2');
  });
});

describe('limit keys', () => {
  it('regression: a caller named by a long token subject gets a key of bounded length', () => {
    // A tenant's OIDC provider signs any `sub`: up to the gateway's header bound (16 KiB) per Redis key.
    const { descriptor } = compile({ requests_per_second: 1, scope: 'user' });
    const principal = (sub: string) => `oidc:${'d'.repeat(16)}:${sub}`;
    const long = limitKey(descriptor, { userId: principal('s'.repeat(12_000)), clientIp: '192.0.2.1' });
    expect(long.length).toBeLessThanOrEqual(descriptor.keyPrefix.length + 128);
    // Subjects that differ anywhere (even in their last character) still count apart.
    const other = limitKey(descriptor, {
      userId: principal(`${'s'.repeat(11_999)}t`),
      clientIp: '192.0.2.1',
    });
    expect(other).not.toBe(long);
    // Ordinary principals keep their readable keys.
    expect(limitKey(descriptor, { userId: 'clerk:user_2abc', clientIp: '192.0.2.1' })).toBe(
      `${descriptor.keyPrefix}clerk:user_2abc`,
    );
  });

  it('counts IPv6 clients by the limit’s ipv6_prefix, anonymous callers of a per-user limit too', () => {
    const byIp = compile({ requests_per_second: 1, scope: 'ip', ipv6_prefix: 56 }).descriptor;
    expect(limitKey(byIp, { clientIp: '2001:db8:1:2ab::1' })).toBe(`${byIp.keyPrefix}2001:db8:1:200::/56`);
    expect(limitKey(byIp, { clientIp: '192.0.2.1' })).toBe(`${byIp.keyPrefix}192.0.2.1`);
    const byUser = compile({ requests_per_second: 1, scope: 'user', ipv6_prefix: 48 }).descriptor;
    expect(limitKey(byUser, { clientIp: '2001:db8:1:2ab::1' })).toBe(
      `${byUser.keyPrefix}anon-ip:2001:db8:1::/48`,
    );
    expect(limitKey(byUser, { userId: 'clerk:user_2abc', clientIp: '2001:db8:1:2ab::1' })).toBe(
      `${byUser.keyPrefix}clerk:user_2abc`,
    );
    // Without one, a /64: the keys every limit had before the setting existed.
    const byDefault = compile({ requests_per_second: 1, scope: 'ip' }).descriptor;
    expect(limitKey(byDefault, { clientIp: '2001:db8:1:2ab::1' })).toBe(
      `${byDefault.keyPrefix}2001:db8:1:2ab::/64`,
    );
  });
});
