import type { BlockList as NodeBlockList } from 'node:net';
// Loads the mocked node:net below (the matcher itself imports nothing of it), which keeps `Original`.
import 'node:net';
import { describe, expect, it, vi } from 'vitest';
import { ipv4Number } from '../net/ip-literal.js';
import { AddressMatcher } from './address-matcher.js';

// Counts the node:net BlockLists anything in this module graph makes. A BlockList keeps its ranges in
// native memory the V8 heap does not see (≈110 MB of RSS per snapshot version for one tenant's 400 IPv6
// rules on 1,000 routes); the matcher must keep them in typed arrays instead. The real class stays
// reachable as `Original`, for the oracle below.
const blockLists = vi.hoisted(() => ({
  created: 0,
  Original: undefined as unknown as typeof NodeBlockList,
}));
vi.mock('node:net', async (importOriginal) => {
  const net = await importOriginal<typeof import('node:net')>();
  blockLists.Original = net.BlockList;
  class CountingBlockList extends net.BlockList {
    constructor() {
      super();
      blockLists.created++;
    }
  }
  return { ...net, BlockList: CountingBlockList, default: { ...net, BlockList: CountingBlockList } };
});

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

  it('keeps its ranges in typed arrays, not in a native node:net BlockList (400 IPv6 ranges)', () => {
    const before = blockLists.created;
    const ranges = Array.from(
      { length: 400 },
      (_, i) => `2001:db8:${i.toString(16)}:${(i * 7).toString(16)}::/64`,
    );
    const matcher = new AddressMatcher(ranges);
    expect(matcher.has('2001:db8:5:23::1')).toBe(true);
    expect(matcher.has('2001:db8:5:24::1')).toBe(false);
    expect(matcher.has('192.0.2.1')).toBe(false);
    expect(blockLists.created - before).toBe(0);
  });

  it('merges overlapping and adjacent ranges without changing what matches', () => {
    const ranges = new AddressMatcher([
      '10.0.0.0/9',
      '10.128.0.0/9', // adjacent: 10.0.0.0/8 in all
      '10.1.2.3',
      '192.0.2.128/25',
      '192.0.2.0/25',
      '2001:db8::/33',
      '2001:db8:8000::/33',
      '2001:db8:1::/48',
      '::1',
    ]);
    for (const address of ['10.0.0.0', '10.127.255.255', '10.128.0.0', '10.255.255.255', '192.0.2.0']) {
      expect(ranges.has(address), address).toBe(true);
    }
    for (const address of ['9.255.255.255', '11.0.0.0', '192.0.3.0', '192.0.1.255']) {
      expect(ranges.has(address), address).toBe(false);
    }
    expect(ranges.has('2001:db8::')).toBe(true);
    expect(ranges.has('2001:db8:ffff:ffff:ffff:ffff:ffff:ffff')).toBe(true);
    expect(ranges.has('2001:db9::')).toBe(false);
    expect(ranges.has('2001:db7:ffff:ffff:ffff:ffff:ffff:ffff')).toBe(false);
    expect(ranges.has('::1')).toBe(true);
    expect(ranges.has('::2')).toBe(false);
    expect(ranges.has('::')).toBe(false);
  });

  it('matches IPv4 clients against IPv6 ranges covering their IPv4-mapped address, as before', () => {
    expect(new AddressMatcher(['::/0']).has('192.0.2.1')).toBe(true);
    expect(new AddressMatcher(['::ffff:0:0/96']).has('192.0.2.1')).toBe(true);
    expect(new AddressMatcher(['::/96']).has('192.0.2.1')).toBe(false); // IPv4-compatible: not the mapped form
    expect(new AddressMatcher(['::ffff:0:0/97']).has('127.0.0.1')).toBe(true);
    expect(new AddressMatcher(['::ffff:0:0/97']).has('128.0.0.1')).toBe(false);
    // An IPv6 spelling of a mapped address is an IPv6 address: IPv4 ranges do not apply to it.
    expect(new AddressMatcher(['192.0.2.0/24']).has('::ffff:c000:209')).toBe(false);
    expect(new AddressMatcher(['::ffff:192.0.2.0/120']).has('::ffff:c000:209')).toBe(true);
  });

  it('reads any IPv6 spelling node:net reads (case, zeros, zone, embedded IPv4) and no malformed one', () => {
    const ranges = new AddressMatcher(['2001:db8::/32', 'fe80::/10', '::ffff:0:0/96']);
    for (const address of [
      '2001:DB8::1',
      '2001:0db8:0000:0000:0000:0000:0000:0001',
      '2001:db8::1.2.3.4',
      '2001:db8:0:0:0:0:1.2.3.4',
      'fe80::1%eth0',
      'fe80::1%1',
      '::FFFF:1.2.3.4',
      '::ffff:102:304',
    ]) {
      expect(ranges.has(address), address).toBe(true);
    }
    for (const address of [
      '[2001:db8::1]',
      '2001:db8:::1',
      '2001:db8::1::',
      ':2001:db8::1',
      '2001:db8::1:',
      '2001:db8:1:2:3:4:5:6:7',
      '2001:db8:1:2:3:4:5',
      '2001:db8::00001',
      '2001:db8::g',
      '2001:db8::1.2.3',
      '2001:db8::1.2.3.256',
      '2001:db8::01.2.3.4',
      '2001:db8::1.2.3.4:5',
      '2001:db8::1 ',
    ]) {
      expect(ranges.has(address), address).toBe(false);
    }
  });

  it('answers like the BlockList it replaced, for random ranges and addresses in every family', () => {
    // Oracle: the previous implementation (IPv4 ranges by mask, IPv6 ranges in a BlockList that also
    // decides IPv4 clients against IPv4-mapped ranges).
    const oracle = (cidrs: string[]) => {
      const ipv4: Array<[number, number]> = [];
      const ipv6 = new blockLists.Original();
      for (const text of cidrs) {
        const [network, prefixText] = text.split('/') as [string, string | undefined];
        if (network.includes(':')) {
          ipv6.addSubnet(network, prefixText === undefined ? 128 : Number(prefixText), 'ipv6');
        } else {
          const prefix = prefixText === undefined ? 32 : Number(prefixText);
          const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
          ipv4.push([(ipv4Number(network) & mask) >>> 0, mask]);
        }
      }
      return (address: string): boolean => {
        let text = address;
        let v4 = ipv4Number(address);
        if (v4 < 0 && address.startsWith('::ffff:')) {
          text = address.slice(7);
          v4 = ipv4Number(text);
        }
        if (v4 >= 0) return ipv4.some(([net, mask]) => (v4 & mask) >>> 0 === net) || ipv6.check(text, 'ipv4');
        if (!address.includes(':')) return false;
        try {
          return ipv6.check(address, 'ipv6');
        } catch {
          return false;
        }
      };
    };
    let seed = 42;
    const random = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    // Few distinct values per group so random addresses land in, next to and outside random ranges.
    const v4 = () =>
      [10, 192, 0, 255][random(4)] + '.' + [0, 1, 168, 255][random(4)] + `.${random(4)}.${random(256)}`;
    const group = () => ['0', '1', 'db8', 'ffff', '2001', '8000', 'fe80', 'a'][random(8)]!;
    const v6 = () => {
      const groups = Array.from({ length: 8 }, group);
      switch (random(5)) {
        case 0:
          return `::ffff:${v4()}`;
        case 1:
          return `${groups.slice(0, 2).join(':')}::${groups[7]}`;
        case 2:
          return `::${groups[7]}`;
        case 3:
          return `${groups.slice(0, 6).join(':')}:${v4()}`;
        default:
          return groups.join(':');
      }
    };
    for (let round = 0; round < 200; round++) {
      const cidrs = Array.from({ length: 1 + random(12) }, () =>
        random(2) === 0 ? `${v4()}/${random(33)}` : `${v6()}/${random(129)}`,
      );
      const expected = oracle(cidrs);
      const matcher = new AddressMatcher(cidrs);
      for (let i = 0; i < 200; i++) {
        const address = random(2) === 0 ? v4() : v6();
        expect(matcher.has(address), `${address} in ${cidrs.join(',')}`).toBe(expected(address));
      }
    }
  });
});
