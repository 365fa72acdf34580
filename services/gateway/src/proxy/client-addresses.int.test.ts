import { randomUUID } from 'node:crypto';
import { type ClientHttp2Session, connect } from 'node:http2';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { createTestRedis } from '@vantageedge/shared/testing/redis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createRateLimitStage } from '../ratelimit/rate-limit-stage.js';
import { createRateLimiter } from '../ratelimit/rate-limiter.js';
import { RedisLimitStore } from '../ratelimit/redis-limit-store.js';
import {
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * Regression tests for client-controlled forwarding headers. Client-sent X-Real-IP, True-Client-IP,
 * X-Original-URL, X-Forwarded-Host/Proto/Port/Prefix/Ssl and friends reached the origin as sent
 * (IIS and Symfony route on X-Original-URL), and with GATEWAY_TRUST_PROXY the leftmost
 * (client-written) X-Forwarded-For entry became the client address, which escaped `scope: ip` limits
 * and steered consistent hashing.
 */

const SPOOFED = {
  'x-real-ip': '6.6.6.6',
  'true-client-ip': '6.6.6.6',
  'x-client-ip': '6.6.6.6',
  'cf-connecting-ip': '6.6.6.6',
  'fastly-client-ip': '6.6.6.6',
  'x-cluster-client-ip': '6.6.6.6',
  'x-original-url': '/api/admin/users',
  'x-rewrite-url': '/api/admin/users',
  // Regression: an origin's method-override middleware read a POST of a public route as the DELETE a
  // keyed route guards.
  'x-http-method-override': 'DELETE',
  'x-http-method': 'DELETE',
  'x-method-override': 'DELETE',
  'x-forwarded-host': 'evil.example',
  'x-forwarded-proto': 'https',
  'x-forwarded-port': '8443',
  'x-forwarded-prefix': '/evil',
  'x-forwarded-ssl': 'on',
  'x-forwarded-for': '6.6.6.6',
  forwarded: 'for=6.6.6.6;host=evil.example;proto=https',
};

async function gatewayWith(env: Record<string, string>, origin: TestOrigin): Promise<TestGateway> {
  const gateway = await startTestGateway(env);
  const originId = randomUUID();
  gateway.store.apply(
    buildSnapshot({
      subdomain: 'acme',
      origins: [{ id: originId, targets: [origin.url] }],
      routes: [
        { origin_id: originId, path_pattern: '/api/public/*' },
        { origin_id: originId, path_pattern: '/v1/*', strip_prefix: '/v1' },
      ],
    }),
  );
  return gateway;
}

function lastSeen(origin: TestOrigin) {
  return origin.seen.at(-1)!.headers;
}

/** The client address of the request's access-log line (written once the response is done). */
async function accessLogClientIp(gateway: TestGateway, requestId: string): Promise<unknown> {
  const line = await vi.waitFor(
    () => {
      const found = gateway.logLines.find(
        (entry) => entry['kind'] === 'access' && entry['request_id'] === requestId,
      );
      if (found === undefined) throw new Error(`no access-log line for ${requestId} yet`);
      return found;
    },
    { timeout: 10_000 },
  );
  return line['client_ip'];
}

describe('a client that is not a trusted proxy', () => {
  let origin: TestOrigin;
  let gateway: TestGateway;

  beforeAll(async () => {
    origin = await startTestOrigin('origin');
    gateway = await gatewayWith({}, origin);
  });
  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
  });

  it("cannot pass proxy and client-address headers to the origin; the gateway's own values replace them", async () => {
    const response = await send(gateway, 'acme.localhost', '/api/public/x', { headers: SPOOFED });
    expect(response.status).toBe(200);
    const headers = lastSeen(origin);
    for (const name of [
      'true-client-ip',
      'x-client-ip',
      'cf-connecting-ip',
      'fastly-client-ip',
      'x-cluster-client-ip',
      'x-original-url',
      'x-rewrite-url',
      'x-http-method-override',
      'x-http-method',
      'x-method-override',
      'x-forwarded-prefix',
      'x-forwarded-ssl',
    ])
      expect(headers[name], name).toBeUndefined();
    expect(headers['x-real-ip']).toBe('127.0.0.1');
    expect(headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(headers['x-forwarded-host']).toBe('acme.localhost');
    expect(headers['x-forwarded-proto']).toBe('http');
    expect(headers['x-forwarded-port']).toBe(String(gateway.gateway.trafficPort));
    expect(headers['forwarded']).toBe('for=127.0.0.1;host="acme.localhost";proto=http');
    expect(await accessLogClientIp(gateway, String(response.headers['x-request-id']))).toBe('127.0.0.1');
  });

  // Regression: PHP's usual client-address lookup reads Client-IP, X-Forwarded and Forwarded-For (before
  // REMOTE_ADDR), Rack takes the scheme from X-Forwarded-Scheme before X-Forwarded-Proto, Tornado from
  // X-Scheme, CodeIgniter from Front-End-Https, gunicorn and Django set-ups from X-Forwarded-Protocol,
  // other code from X-Url-Scheme: a client on plain HTTP passed as another address, or as HTTPS.
  it('cannot pass the other client-address and scheme headers origins read', async () => {
    const other = {
      'client-ip': '6.6.6.6',
      'x-forwarded': 'for=6.6.6.6',
      'forwarded-for': '6.6.6.6',
      'x-forwarded-scheme': 'https',
      'x-scheme': 'https',
      'front-end-https': 'on',
      'x-forwarded-protocol': 'https',
      'x-url-scheme': 'https',
    };
    expect((await send(gateway, 'acme.localhost', '/api/public/x', { headers: other })).status).toBe(200);
    const headers = lastSeen(origin);
    for (const name of Object.keys(other)) expect(headers[name], name).toBeUndefined();
  });

  it('tells the origin which prefix it stripped', async () => {
    await send(gateway, 'acme.localhost', '/v1/things', { headers: SPOOFED });
    expect(origin.seen.at(-1)?.url).toBe('/things');
    expect(lastSeen(origin)['x-forwarded-prefix']).toBe('/v1');
  });
});

describe('behind trusted proxies (GATEWAY_TRUSTED_PROXIES)', () => {
  let origin: TestOrigin;
  let gateway: TestGateway;

  beforeAll(async () => {
    origin = await startTestOrigin('origin');
    // The test client connects from 127.0.0.1: it plays the load balancer.
    gateway = await gatewayWith({ GATEWAY_TRUSTED_PROXIES: '127.0.0.1/32,10.0.0.0/8' }, origin);
  });
  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
  });

  it('takes the rightmost untrusted X-Forwarded-For address as the client, not the leftmost one', async () => {
    const response = await send(gateway, 'acme.localhost', '/api/public/x', {
      headers: { 'x-forwarded-for': '6.6.6.6, 203.0.113.9, 10.1.2.3' },
    });
    expect(await accessLogClientIp(gateway, String(response.headers['x-request-id']))).toBe('203.0.113.9');
    const headers = lastSeen(origin);
    expect(headers['x-real-ip']).toBe('203.0.113.9');
    // The peer is always appended.
    expect(headers['x-forwarded-for']).toBe('6.6.6.6, 203.0.113.9, 10.1.2.3, 127.0.0.1');
  });

  it('keeps the proxy’s X-Forwarded-Proto/Host/Port and client headers, never URL rewrites', async () => {
    await send(gateway, 'acme.localhost', '/api/public/x', { headers: SPOOFED });
    const headers = lastSeen(origin);
    expect(headers['x-forwarded-proto']).toBe('https');
    expect(headers['x-forwarded-host']).toBe('evil.example');
    expect(headers['x-forwarded-port']).toBe('8443');
    expect(headers['cf-connecting-ip']).toBe('6.6.6.6');
    expect(headers['x-original-url']).toBeUndefined();
    expect(headers['x-rewrite-url']).toBeUndefined();
    expect(headers['x-http-method-override']).toBeUndefined();
    expect(headers['x-real-ip']).toBe('6.6.6.6');
  });
});

describe('GATEWAY_TRUST_PROXY=true (deprecated: trusts private and loopback ranges)', () => {
  let origin: TestOrigin;
  let gateway: TestGateway;

  beforeAll(async () => {
    origin = await startTestOrigin('origin');
    gateway = await gatewayWith({ GATEWAY_TRUST_PROXY: 'true' }, origin);
  });
  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
  });

  it('no longer lets a client choose its address with a leftmost X-Forwarded-For entry', async () => {
    for (const spoofed of ['6.6.6.1', '6.6.6.2']) {
      const response = await send(gateway, 'acme.localhost', '/api/public/x', {
        headers: { 'x-forwarded-for': `${spoofed}, 198.51.100.4` },
      });
      expect(await accessLogClientIp(gateway, String(response.headers['x-request-id']))).toBe('198.51.100.4');
      expect(lastSeen(origin)['x-forwarded-for']).toBe(`${spoofed}, 198.51.100.4, 127.0.0.1`);
    }
  });
});

/**
 * One request, one client address: the IP rule, the `scope: ip` bucket (in the real Redis), the access
 * log and X-Real-IP agree, over HTTP/1.1 and HTTP/2, for X-Forwarded-For as proxies write it. Each case
 * sends two spellings of one client: the second finds the bucket the first spent.
 */
describe('the client address of one request, for every use of it', () => {
  const redis = createTestRedis('client-address-uses');
  let origin: TestOrigin;
  let gateway: TestGateway;
  let session: ClientHttp2Session;

  beforeAll(async () => {
    origin = await startTestOrigin('client-address-uses');
    const limiter = createRateLimiter({
      store: new RedisLimitStore(redis.client),
      registry: createMetricsRegistry('client_address_uses', { defaultMetrics: false }),
      logger: createLogger({ service: 'test', level: 'error' }),
      keyPrefix: redis.prefix,
    });
    gateway = await startTestGateway(
      { GATEWAY_TRUSTED_PROXIES: '127.0.0.1/32,10.0.0.0/8', GATEWAY_H2C: 'true' },
      { stages: [createRateLimitStage(limiter)] },
    );
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'uses',
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [
          { origin_id: originId, path_pattern: '/echo/*' },
          {
            origin_id: originId,
            path_pattern: '/deny/*',
            ip_rules: { deny: ['203.0.113.0/24', '2001:db8:bad::/48'] },
          },
          // One request per client, then one per 1,000 s.
          {
            origin_id: originId,
            path_pattern: '/limited/*',
            rate_limit: { requests_per_second: 0.001, burst: 1, scope: 'ip' },
          },
        ],
      }),
    );
    session = connect(gateway.url);
  });
  afterAll(async () => {
    session?.close();
    await gateway?.close();
    await origin?.close();
    await redis.cleanup();
  });

  const overHttp2 = (path: string, forwardedFor: string) =>
    new Promise<{ status: number; requestId: string }>((resolve, reject) => {
      const stream = session.request({
        ':path': path,
        ':authority': 'uses.localhost',
        'x-forwarded-for': forwardedFor,
      });
      stream.on('response', (head) =>
        resolve({ status: Number(head[':status']), requestId: String(head['x-request-id']) }),
      );
      stream.on('error', reject);
      stream.resume();
    });
  const overHttp1 = async (path: string, forwardedFor: string) => {
    const answer = await send(gateway, 'uses.localhost', path, {
      headers: { 'x-forwarded-for': forwardedFor },
    });
    return { status: answer.status, requestId: String(answer.headers['x-request-id']) };
  };

  it.each([
    { xff: ['6.6.6.6, 203.0.113.9', '203.0.113.9:4711'], client: '203.0.113.9', denied: true },
    {
      xff: ['203.0.113.10, 10.1.2.3', '[::ffff:203.0.113.10]:443, 10.9.9.9'],
      client: '203.0.113.10',
      denied: true,
    },
    {
      xff: ['[2001:db8:bad::1]:443', 'garbage, 2001:DB8:BAD:0:0:0:0:1'],
      client: '2001:db8:bad::1',
      denied: true,
    },
    { xff: ['198.51.100.7, unknown, 10.1.2.4', '10.1.2.4'], client: '10.1.2.4', denied: false },
    // Every entry a trusted proxy: the leftmost, as nginx's real_ip_recursive.
    { xff: ['10.7.7.7, 10.1.2.5', '10.7.7.7'], client: '10.7.7.7', denied: false },
    { xff: ['"198.51.100.8"', ''], client: '127.0.0.1', denied: false },
  ])('X-Forwarded-For $xff is client $client everywhere', async ({ xff, client, denied }) => {
    const [first, second] = xff as [string, string];
    for (const [sent, spelling] of [
      [overHttp1, first],
      [overHttp2, second],
    ] as const) {
      const echoed = await sent('/echo/x', spelling);
      expect(echoed.status).toBe(200);
      expect(origin.seen.at(-1)!.headers['x-real-ip']).toBe(client);
      expect(await accessLogClientIp(gateway, echoed.requestId)).toBe(client);
      expect((await sent('/deny/x', spelling)).status).toBe(denied ? 403 : 200);
    }
    expect((await overHttp1('/limited/x', first)).status).toBe(200);
    expect((await overHttp2('/limited/x', second)).status).toBe(429);
  });
});
