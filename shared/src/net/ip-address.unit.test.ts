import { describe, expect, it } from 'vitest';
import { canonicalAddress, clientCountingKey } from './ip-address.js';

describe('clientCountingKey (who a per-client count is kept for)', () => {
  it('is the IPv4 address itself, also for an IPv4-mapped IPv6 spelling', () => {
    expect(clientCountingKey('203.0.113.9')).toBe('203.0.113.9');
    expect(clientCountingKey(canonicalAddress('::ffff:203.0.113.9')!.address)).toBe('203.0.113.9');
  });

  // Regression: every address of one subscriber's /64 had a bucket and an auth-failure allowance of
  // its own: rotating the interface id escaped a `scope: ip` limit and the brute-force limiter.
  it('is the /64 of an IPv6 address, whatever its spelling and interface id', () => {
    const key = '2001:db8:1:2::/64';
    for (const address of [
      '2001:db8:1:2::1',
      '2001:db8:1:2::6',
      '2001:DB8:1:2:aaaa:bbbb:cccc:dddd',
      '2001:0db8:0001:0002::',
    ])
      expect(clientCountingKey(canonicalAddress(address)!.address), address).toBe(key);
    expect(clientCountingKey('2001:db8:1:3::1')).not.toBe(key);
    expect(clientCountingKey('::1')).toBe('0:0:0:0::/64');
    expect(clientCountingKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
  });
});
