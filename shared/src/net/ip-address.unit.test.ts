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

  // Regression: an IPv6 address carrying an IPv4 client's address was counted by its /64 as well, so
  // every IPv4 client behind a NAT64 (64:ff9b::/96) was one client, and a 6to4 host 65,536 of them.
  it('is the IPv4 address an IPv6 address carries: NAT64, 6to4, IPv4-compatible', () => {
    const key = (address: string) => clientCountingKey(canonicalAddress(address)!.address);
    expect(key('64:ff9b::198.51.100.7')).toBe('198.51.100.7');
    expect(key('64:ff9b::c633:6408')).toBe('198.51.100.8');
    expect(key('2002:c633:6409::1')).toBe('198.51.100.9');
    expect(key('2002:c633:6409:ffff:1:2:3:4')).toBe('198.51.100.9');
    expect(key('::198.51.100.10')).toBe('198.51.100.10');
    expect(clientCountingKey('::ffff:c633:640b')).toBe('198.51.100.11');
    // Loopback and the unspecified address carry none; a network-specific NAT64 prefix is the operator's.
    expect(key('::1')).toBe('0:0:0:0::/64');
    expect(key('::')).toBe('0:0:0:0::/64');
    expect(key('64:ff9b:1::c633:640c')).toBe('64:ff9b:1:0::/64');
    expect(key('64:ff9b:0:1::c633:640c')).toBe('64:ff9b:0:1::/64');
  });

  it('is the network of a rate limit’s ipv6_prefix, masked within its last group', () => {
    expect(clientCountingKey('2001:db8:1:2::1', 48)).toBe('2001:db8:1::/48');
    expect(clientCountingKey('2001:db8:1:ffff:1:2:3:4', 48)).toBe('2001:db8:1::/48');
    expect(clientCountingKey('2001:db8:1:2ff::1', 56)).toBe('2001:db8:1:200::/56');
    expect(clientCountingKey('2001:db8:1:2ff::1', 60)).toBe('2001:db8:1:2f0::/60');
    expect(clientCountingKey('2001:db8:1:2::1', 64)).toBe('2001:db8:1:2::/64');
    expect(clientCountingKey('2001:db8:1:2::1', 128)).toBe('2001:db8:1:2:0:0:0:1/128');
    expect(clientCountingKey('2001:db8:ffff::1', 33)).toBe('2001:db8:8000::/33');
    // The IPv4 client an address carries is that client whatever the prefix.
    expect(clientCountingKey('64:ff9b::c633:6408', 32)).toBe('198.51.100.8');
    expect(clientCountingKey('198.51.100.8', 48)).toBe('198.51.100.8');
  });
});
