import { describe, expect, it } from 'vitest';
import { inet4Block, inet6Block, V2_SIGNATURE, v2Header } from '../testing/proxy-protocol-headers.js';
import { readProxyHeader, V1_MAX_BYTES, V2_MAX_BYTES } from './proxy-protocol-header.js';

const line = (text: string) => Buffer.from(text, 'latin1');

describe('PROXY protocol v1', () => {
  it('reads a TCP4 line and says where the client bytes begin', () => {
    const bytes = line('PROXY TCP4 203.0.113.9 10.0.0.5 51234 80\r\nGET / HTTP/1.1\r\n');
    expect(readProxyHeader(bytes)).toEqual({
      kind: 'header',
      length: 'PROXY TCP4 203.0.113.9 10.0.0.5 51234 80\r\n'.length,
      source: { address: '203.0.113.9', port: 51234, family: 'IPv4' },
    });
  });

  it('reads a TCP6 line, compressing the address as a socket reports it', () => {
    const reading = readProxyHeader(line('PROXY TCP6 2001:DB8:0:0:0:0:0:1 2001:db8::2 4711 443\r\n'));
    expect(reading).toMatchObject({ kind: 'header', source: { address: '2001:db8::1', family: 'IPv6' } });
  });

  it('takes PROXY UNKNOWN as a header without a client (the peer stands)', () => {
    expect(readProxyHeader(line('PROXY UNKNOWN\r\n'))).toEqual({
      kind: 'header',
      length: 15,
      source: undefined,
    });
    expect(readProxyHeader(line('PROXY UNKNOWN ffff:f...f:ffff 1 2\r\n'))).toMatchObject({
      kind: 'header',
      source: undefined,
    });
  });

  it('waits for more while every byte so far can still be a header', () => {
    for (const partial of [
      'P',
      'PROX',
      'PROXY ',
      'PROXY TCP4 203.0.113.9 10.0.0.5 51234 80',
      'PROXY TCP4 1.2.3.4\r',
    ]) {
      expect(readProxyHeader(line(partial)), partial).toEqual({ kind: 'incomplete' });
    }
  });

  it('refuses a line without CRLF within 107 bytes', () => {
    const long = line(`PROXY TCP4 ${'1'.repeat(V1_MAX_BYTES)}`);
    expect(readProxyHeader(long).kind).toBe('malformed');
    expect(readProxyHeader(line('PROXY TCP4 203.0.113.9 10.0.0.5 51234 80\nGET')).kind).toBe('malformed');
  });

  it.each([
    ['an HTTP request', 'GET / HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['lower case', 'proxy TCP4 203.0.113.9 10.0.0.5 1 2\r\n'],
    ['an unknown protocol', 'PROXY UDP4 203.0.113.9 10.0.0.5 1 2\r\n'],
    ['an IPv6 address under TCP4', 'PROXY TCP4 2001:db8::1 10.0.0.5 1 2\r\n'],
    ['an IPv4 address under TCP6', 'PROXY TCP6 203.0.113.9 2001:db8::2 1 2\r\n'],
    ['a name for an address', 'PROXY TCP4 localhost 10.0.0.5 1 2\r\n'],
    ['a port past 65535', 'PROXY TCP4 203.0.113.9 10.0.0.5 65536 2\r\n'],
    ['a port with a leading zero', 'PROXY TCP4 203.0.113.9 10.0.0.5 080 2\r\n'],
    ['a missing field', 'PROXY TCP4 203.0.113.9 10.0.0.5 1\r\n'],
    ['two spaces', 'PROXY TCP4  203.0.113.9 10.0.0.5 1 2\r\n'],
  ])('refuses %s', (_, text) => {
    expect(readProxyHeader(line(text)).kind).toBe('malformed');
  });
});

describe('PROXY protocol v2', () => {
  it('reads a TCP over IPv4 header and skips its TLVs', () => {
    const tlvs = Buffer.from('0400047670636501000268320300040000abcd', 'hex'); // NOOP, ALPN, CRC32C
    const header = v2Header(
      1,
      0x11,
      Buffer.concat([inet4Block('198.51.100.7', '10.0.0.5', 40000, 443), tlvs]),
    );
    const bytes = Buffer.concat([header, line('GET / HTTP/1.1\r\n')]);
    expect(readProxyHeader(bytes)).toEqual({
      kind: 'header',
      length: header.length,
      source: { address: '198.51.100.7', port: 40000, family: 'IPv4' },
    });
  });

  it('reads a TCP over IPv6 header', () => {
    const header = v2Header(
      1,
      0x21,
      inet6Block('20010db8000000000000000000000009', '20010db8000000000000000000000001', 5),
    );
    expect(readProxyHeader(header)).toEqual({
      kind: 'header',
      length: header.length,
      source: { address: '2001:db8::9', port: 5, family: 'IPv6' },
    });
  });

  it('reads an IPv4-mapped IPv6 source as the IPv4 address', () => {
    const header = v2Header(
      1,
      0x21,
      inet6Block('00000000000000000000ffffcb007109', '20010db8000000000000000000000001', 5),
    );
    expect(readProxyHeader(header)).toMatchObject({ source: { address: '203.0.113.9', family: 'IPv4' } });
  });

  it('leaves the peer for LOCAL (a health check), AF_UNIX, UNSPEC and datagrams', () => {
    const local = v2Header(0, 0x11, inet4Block('198.51.100.7', '10.0.0.5', 1, 2));
    expect(readProxyHeader(local)).toEqual({ kind: 'header', length: local.length, source: undefined });
    expect(readProxyHeader(v2Header(0, 0x00, Buffer.alloc(0)))).toMatchObject({
      kind: 'header',
      source: undefined,
    });
    expect(readProxyHeader(v2Header(1, 0x31, Buffer.alloc(216)))).toMatchObject({
      kind: 'header',
      source: undefined,
    });
    expect(readProxyHeader(v2Header(1, 0x00, Buffer.alloc(0)))).toMatchObject({
      kind: 'header',
      source: undefined,
    });
    const udp = v2Header(1, 0x12, inet4Block('198.51.100.7', '10.0.0.5', 1, 2));
    expect(readProxyHeader(udp)).toMatchObject({ kind: 'header', source: undefined });
  });

  it('waits for a header split anywhere, its TLVs included', () => {
    const header = v2Header(
      1,
      0x11,
      Buffer.concat([inet4Block('198.51.100.7', '10.0.0.5', 1, 2), Buffer.alloc(40)]),
    );
    for (let cut = 1; cut < header.length; cut++) {
      expect(readProxyHeader(header.subarray(0, cut)), `first ${cut} bytes`).toEqual({ kind: 'incomplete' });
    }
  });

  it('refuses a length past its bound as soon as the length is read', () => {
    const fixed = v2Header(1, 0x11, Buffer.alloc(0));
    fixed.writeUInt16BE(V2_MAX_BYTES - 16 + 1, 14);
    expect(readProxyHeader(fixed)).toMatchObject({ kind: 'malformed' });
    fixed.writeUInt16BE(65_535, 14);
    expect(readProxyHeader(fixed)).toMatchObject({ kind: 'malformed' });
    const largest = v2Header(
      1,
      0x11,
      Buffer.concat([inet4Block('198.51.100.7', '10.0.0.5', 1, 2), Buffer.alloc(V2_MAX_BYTES - 28)]),
    );
    expect(readProxyHeader(largest)).toMatchObject({ kind: 'header', length: V2_MAX_BYTES });
  });

  it.each([
    ['version 1 in the binary form', Buffer.concat([V2_SIGNATURE, Buffer.from([0x11, 0x11, 0, 0])])],
    ['an unknown command', v2Header(2, 0x11, inet4Block('198.51.100.7', '10.0.0.5', 1, 2))],
    ['an unknown family', v2Header(1, 0x41, Buffer.alloc(12))],
    ['an unknown transport', v2Header(1, 0x13, Buffer.alloc(12))],
    ['an IPv4 block too short', v2Header(1, 0x11, Buffer.alloc(11))],
    ['an IPv6 block too short', v2Header(1, 0x21, Buffer.alloc(35))],
    [
      'a signature with a wrong byte',
      Buffer.concat([Buffer.from('0d0a0d0a000d0a515549540b', 'hex'), Buffer.alloc(4)]),
    ],
  ])('refuses %s', (_, bytes) => {
    expect(readProxyHeader(bytes).kind).toBe('malformed');
  });
});
