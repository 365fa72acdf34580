import { describe, expect, it } from 'vitest';
import { type ForwardingFacts, originFacingForwarding, upstreamRequestHeaders } from './forwarded-headers.js';

const facts = (overrides: Partial<ForwardingFacts> = {}): ForwardingFacts => ({
  upstreamHost: 'origin.internal',
  clientIp: '203.0.113.7',
  peerIp: '10.0.0.2',
  peerTrusted: true,
  proto: 'https',
  localPort: 443,
  strippedPrefix: '/api',
  requestId: 'req-1',
  tenantId: 'forwarded-headers-unit',
  routeId: 'route-1',
  identity: { kind: 'anonymous', scopes: [] } as never,
  ...overrides,
});

describe('X-Forwarded-Prefix', () => {
  it("joins a trusted proxy's prefix, without its trailing slashes, to the stripped prefix", () => {
    const out = upstreamRequestHeaders({ 'x-forwarded-prefix': '/edge//' }, facts());
    expect(out['x-forwarded-prefix']).toBe('/edge/api');
  });

  // A regex trimming the trailing slashes tried every slash of a run as the start of the trailing run:
  // a 16 KiB header of slashes ending in a letter held a replica's event loop for over a second.
  it('reads a long run of slashes that does not end the value in one pass', () => {
    const run = '/'.repeat(100_000);
    const out = upstreamRequestHeaders({ 'x-forwarded-prefix': `${run}v1${run}` }, facts());
    expect(out['x-forwarded-prefix']).toBe(`${run}v1/api`);
  });
});

describe("a trusted proxy's Forwarded in the cache key", () => {
  const keyed = (forwarded: string, peerTrusted = true) => originFacingForwarding({ forwarded }, peerTrusted);

  it('keeps what the origin reads of the request (host, proto) and leaves the client addresses out', () => {
    const one = keyed('for=192.0.2.7;host=shop.example;proto=https, for="[2001:db8::1]:4711";by=_edge1');
    const other = keyed('for=198.51.100.9;host=shop.example;proto=https, for=unknown;by=_edge2');
    expect(one).toBe(other);
    expect(one).toContain('host=shop.example;proto=https');
    expect(keyed('for=192.0.2.7;host=evil.example')).not.toBe(keyed('for=192.0.2.7;host=shop.example'));
  });

  it('keeps a for= value that is no plain address, in which a loose reader may find another parameter', () => {
    expect(keyed('for="x;host=evil.example"')).not.toBe(keyed('for=x'));
    expect(keyed('for=x host=evil.example')).not.toBe(keyed('for=x'));
  });

  it('is not read from a peer that is not trusted (the gateway sends the origin its own element only)', () => {
    expect(keyed('host=evil.example', false)).toBe('');
  });

  it('reads a long value in one pass', () => {
    const long = `for=${'a'.repeat(100_000)}!;host=shop.example`;
    expect(keyed(long)).toContain('host=shop.example');
  });
});

// PHP, Rack, CGI and older gunicorn read `_` and `-` in a header name alike (HTTP_X_REAL_IP either way).
describe('headers a client spells with underscores', () => {
  it('regression: drops those that read as a header the gateway writes or drops', () => {
    const out = upstreamRequestHeaders(
      {
        x_real_ip: '198.51.100.1',
        x_forwarded_for: '198.51.100.1',
        'x-forwarded_host': 'admin.internal',
        x_original_url: '/admin',
        x_vantageedge_user_id: 'user_2victim',
        x_api_key: 've_live_leaked',
        x_custom_header: 'kept',
      },
      facts({ peerTrusted: false }),
    );
    expect(Object.keys(out).filter((name) => name.includes('_'))).toEqual(['x_custom_header']);
    expect(out['x-real-ip']).toBe('203.0.113.7');
  });

  // Unicorn and Puma before 6.4.3 frame a request by `Content_Length` as by Content-Length.
  it('regression: drops Content_Length, a framing field the gateway writes itself', () => {
    const out = upstreamRequestHeaders(
      { 'content-length': '3', content_length: '0', 'content_length-': '1' },
      facts(),
    );
    expect(out['content-length']).toBe('3');
    expect(Object.keys(out).filter((name) => name.startsWith('content_'))).toEqual(['content_length-']);
  });
});

// PHP reads `.` in a variable name as `_` (php_register_variable_ex), and Caddy, FrankenPHP, lighttpd and
// PHP's own server pass a header name with `.` on: X.VantageEdge.User-Id is $_SERVER['HTTP_X_VANTAGEEDGE_USER_ID'].
describe('headers a client spells with dots', () => {
  it('drops those that read as a header the gateway writes or drops', () => {
    const out = upstreamRequestHeaders(
      {
        'x.vantageedge.user-id': 'user_2victim',
        'x-vantageedge.auth-kind': 'user',
        'x.real.ip': '198.51.100.1',
        'x-forwarded.for': '198.51.100.1',
        'true.client.ip': '198.51.100.1',
        'x.api.key': 've_live_leaked',
        'x_original.url': '/admin',
        'content.length': '0',
        'x.vantageedge_': 'prefix',
        'x_vantageedge.scopes': 'admin',
        'x.custom.header': 'kept',
        'x.vantageedgex': 'kept',
      },
      facts({ peerTrusted: false }),
    );
    expect(Object.keys(out).filter((name) => name.includes('.'))).toEqual([
      'x.custom.header',
      'x.vantageedgex',
    ]);
    expect(out['x_vantageedge.scopes']).toBeUndefined();
    expect(out['x-vantageedge-auth-kind']).toBe('anonymous');
  });
});
