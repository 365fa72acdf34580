import { describe, expect, it } from 'vitest';
import { AuthFailureLimiter } from './auth-failure-limiter.js';

describe('AuthFailureLimiter', () => {
  it('counts verifications in flight as failures, and gives the slot back when one succeeds', () => {
    const limiter = new AuthFailureLimiter({ maxPerMinute: 3 });
    const settles = [1, 2, 3].map(() => limiter.reserve('203.0.113.9'));
    expect(limiter.refusedForSeconds('203.0.113.9')).toBeGreaterThan(0);
    settles[0]!(undefined);
    expect(limiter.refusedForSeconds('203.0.113.9')).toBe(0);
    settles[1]!('invalid_token');
    settles[2]!('invalid_token');
    limiter.recordFailure('203.0.113.9', 'invalid_api_key');
    expect(limiter.refusedForSeconds('203.0.113.9')).toBeGreaterThan(0);
  });

  it('never refuses a client whose verifications all succeed', () => {
    const limiter = new AuthFailureLimiter({ maxPerMinute: 2 });
    for (let i = 0; i < 10; i++) {
      expect(limiter.refusedForSeconds('203.0.113.9')).toBe(0);
      limiter.reserve('203.0.113.9')(undefined);
    }
  });

  it('counts an IPv6 /64 as one client, and forgets the least recently seen clients first', () => {
    const limiter = new AuthFailureLimiter({ maxPerMinute: 1, maxClients: 2 });
    limiter.recordFailure('2001:db8:1:2::1', 'invalid_token');
    expect(limiter.refusedForSeconds('2001:db8:1:2:ffff::7')).toBeGreaterThan(0);
    limiter.recordFailure('198.51.100.1', 'invalid_token');
    limiter.recordFailure('198.51.100.2', 'invalid_token');
    expect(limiter.refusedForSeconds('2001:db8:1:2::1')).toBe(0);
  });
});
