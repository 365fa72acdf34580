import { describe, expect, it } from 'vitest';
import { AddressMatcher, ipv4Number } from './address-matcher.js';

describe('address matcher', () => {
  it('matches IPv4 ranges by prefix, single addresses exactly, and /0 everything', () => {
    const ranges = new AddressMatcher(['203.0.113.0/24', '198.51.100.7', '10.0.0.0/8']);
    expect(ranges.has('203.0.113.0')).toBe(true);
    expect(ranges.has('203.0.113.255')).toBe(true);
    expect(ranges.has('203.0.114.1')).toBe(false);
    expect(ranges.has('198.51.100.7')).toBe(true);
    expect(ranges.has('198.51.100.8')).toBe(false);
    expect(ranges.has('10.200.3.4')).toBe(true);
    expect(new AddressMatcher(['0.0.0.0/0']).has('192.0.2.1')).toBe(true);
  });

  it('reads IPv4-mapped IPv6 addresses as the IPv4 address they carry', () => {
    const ranges = new AddressMatcher(['192.0.2.0/24']);
    expect(ranges.has('::ffff:192.0.2.9')).toBe(true);
    expect(ranges.has('::ffff:192.0.3.9')).toBe(false);
  });

  // Regression: a range written in IPv4-mapped IPv6 form (`::ffff:192.0.2.0/120`) passes validation
  // but never matched, because the client address was only compared with the IPv4 ranges: a deny list
  // written that way let its addresses through.
  it('matches a range written as IPv4-mapped IPv6 for the IPv4 client it covers, in either spelling', () => {
    for (const range of ['::ffff:192.0.2.0/120', '::ffff:c000:200/120']) {
      const ranges = new AddressMatcher([range]);
      expect(ranges.has('192.0.2.9'), range).toBe(true);
      expect(ranges.has('::ffff:192.0.2.9'), range).toBe(true);
      expect(ranges.has('192.0.3.9'), range).toBe(false);
    }
  });

  it('matches IPv6 ranges and keeps the families apart', () => {
    const ranges = new AddressMatcher(['2001:db8::/32', '203.0.113.0/24']);
    expect(ranges.has('2001:db8:1::42')).toBe(true);
    expect(ranges.has('2001:db9::1')).toBe(false);
    expect(new AddressMatcher(['2001:db8::/32']).has('203.0.113.1')).toBe(false);
    expect(new AddressMatcher(['203.0.113.0/24']).has('2001:db8::1')).toBe(false);
  });

  it('never matches what is not an address (empty, garbage, non-canonical spellings)', () => {
    const everything = new AddressMatcher(['0.0.0.0/0', '::/0']);
    for (const text of ['', 'localhost', '1.2.3', '1.2.3.4.5', '01.2.3.4', '256.1.1.1', '1.2.3.4 ']) {
      expect(everything.has(text), JSON.stringify(text)).toBe(false);
    }
    expect(ipv4Number('255.255.255.255')).toBe(0xffffffff);
  });
});
