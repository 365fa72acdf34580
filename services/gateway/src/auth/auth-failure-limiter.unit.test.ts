import { describe, expect, it } from 'vitest';
import { AuthFailureLimiter } from './auth-failure-limiter.js';

const T = 'tenant-a';

describe('AuthFailureLimiter', () => {
  it('counts verifications in flight as failures, and gives the slot back when one succeeds', () => {
    const limiter = new AuthFailureLimiter({ maxPerMinute: 3 });
    const settles = [1, 2, 3].map(() => limiter.reserve(T, '203.0.113.9'));
    expect(limiter.refusedForSeconds(T, '203.0.113.9')).toBeGreaterThan(0);
    settles[0]!(undefined);
    expect(limiter.refusedForSeconds(T, '203.0.113.9')).toBe(0);
    settles[1]!('invalid_token');
    settles[2]!('invalid_token');
    limiter.recordFailure(T, '203.0.113.9', 'invalid_api_key');
    expect(limiter.refusedForSeconds(T, '203.0.113.9')).toBeGreaterThan(0);
  });

  it('never refuses a client whose verifications all succeed', () => {
    const limiter = new AuthFailureLimiter({ maxPerMinute: 2 });
    for (let i = 0; i < 10; i++) {
      expect(limiter.refusedForSeconds(T, '203.0.113.9')).toBe(0);
      limiter.reserve(T, '203.0.113.9')(undefined);
    }
  });

  it('counts an IPv6 /64 as one client, and forgets the least recently seen clients first', () => {
    const limiter = new AuthFailureLimiter({ maxPerMinute: 1, maxClients: 2 });
    limiter.recordFailure(T, '2001:db8:1:2::1', 'invalid_token');
    expect(limiter.refusedForSeconds(T, '2001:db8:1:2:ffff::7')).toBeGreaterThan(0);
    limiter.recordFailure(T, '198.51.100.1', 'invalid_token');
    limiter.recordFailure(T, '198.51.100.2', 'invalid_token');
    expect(limiter.refusedForSeconds(T, '2001:db8:1:2::1')).toBe(0);
  });

  it("forgets a tenant's own clients first: another tenant's many addresses do not wipe its counts", () => {
    const limiter = new AuthFailureLimiter({ maxPerMinute: 1, maxClients: 4 });
    limiter.recordFailure('quiet', '192.0.2.1', 'invalid_api_key');
    for (let i = 0; i < 100; i++) limiter.recordFailure('spread', `198.51.100.${i}`, 'invalid_api_key');
    expect(limiter.refusedForSeconds('quiet', '192.0.2.1')).toBeGreaterThan(0);
    expect(limiter.refusedForSeconds('spread', '198.51.100.99')).toBeGreaterThan(0);
  });

  it('counts a client per tenant, and across tenants against the larger bound', () => {
    const limiter = new AuthFailureLimiter({ maxPerMinute: 2, maxPerMinuteAllTenants: 5 });
    const client = '203.0.113.9';
    limiter.recordFailure('a', client, 'invalid_api_key');
    limiter.recordFailure('a', client, 'invalid_api_key');
    expect(limiter.refusedForSeconds('a', client)).toBeGreaterThan(0);
    expect(limiter.refusedForSeconds('b', client)).toBe(0);
    limiter.recordFailure('b', client, 'invalid_api_key');
    limiter.reserve('c', client)('invalid_token');
    expect(limiter.refusedForSeconds('d', client)).toBe(0);
    limiter.recordFailure('d', client, 'invalid_api_key');
    expect(limiter.refusedForSeconds('e', client)).toBeGreaterThan(0);
    expect(limiter.refusedForSeconds('e', '203.0.113.10')).toBe(0);
  });

  it('defaults the bound across tenants to ten times the per-tenant bound', () => {
    const limiter = new AuthFailureLimiter({ maxPerMinute: 1 });
    for (let tenant = 0; tenant < 10; tenant++) {
      expect(limiter.refusedForSeconds(`t${tenant}`, '203.0.113.9')).toBe(0);
      limiter.recordFailure(`t${tenant}`, '203.0.113.9', 'invalid_api_key');
    }
    expect(limiter.refusedForSeconds('t10', '203.0.113.9')).toBeGreaterThan(0);
  });
});
