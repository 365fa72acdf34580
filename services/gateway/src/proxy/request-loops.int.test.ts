import { randomUUID } from 'node:crypto';
import type { LookupAddress, LookupOptions } from 'node:dns';
import type { ClientHttp2Session } from 'node:http2';
import { http2Connect, http2Request } from '@vantageedge/shared/testing/tls-clients';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { sendUpgrade } from '../testing/upgrade-request.js';

/**
 * Regression tests for request loops through the platform: a tenant whose origin is the platform's
 * own public name (here `loop.localhost`, on another replica's traffic port) had each request go
 * through the gateways again and again, one client request becoming a hop per replica pass until the
 * tenant's upstream limit stopped it. Each replica refuses only its own listeners, so the loop passes
 * between two of them. Every upstream request now carries `CDN-Loop: vantageedge` (RFC 8586) after the
 * client's entries, and a request that has passed the platform GATEWAY_MAX_LOOP_HOPS times is refused.
 */

const LOOP_HOST = 'loop.localhost';

type LookupCallback = (
  error: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/** The platform's public name resolves to this machine, as a load balancer's address would. */
vi.mock('node:dns', async (importOriginal) => {
  const dns = await importOriginal<typeof import('node:dns')>();
  const lookup = (hostname: string, options: LookupOptions, callback: LookupCallback) => {
    if (hostname !== LOOP_HOST) return dns.lookup(hostname, options, callback as never);
    if (options.all === true) callback(null, [{ address: '127.0.0.1', family: 4 }]);
    else callback(null, '127.0.0.1', 4);
  };
  return { ...dns, default: { ...dns, lookup }, lookup };
});

type LoopError = { error: { code: string; message: string } };

describe('an origin that is the platform itself, between two replicas', () => {
  let first: TestGateway;
  let second: TestGateway;
  let passes = 0;
  const countPass = () => passes++;

  beforeAll(async () => {
    // The upstream limit stops a loop nothing else stops; it is not what is tested here.
    const env = { GATEWAY_MAX_UPSTREAM_REQUESTS_PER_TENANT: '16' };
    first = await startTestGateway(env);
    second = await startTestGateway(env);
    const tenantId = randomUUID();
    const pointingAt = (gateway: TestGateway) => {
      const originId = randomUUID();
      return buildSnapshot({
        tenantId,
        subdomain: 'loop',
        origins: [{ id: originId, targets: [`http://${LOOP_HOST}:${gateway.gateway.trafficPort}`] }],
        routes: [{ origin_id: originId, path_pattern: '/*' }],
      });
    };
    // Each replica's own port is refused, so each sends the tenant's requests to the other one.
    first.store.apply(pointingAt(second));
    second.store.apply(pointingAt(first));
    first.gateway.trafficServer.on('request', countPass);
    first.gateway.trafficServer.on('upgrade', countPass);
    second.gateway.trafficServer.on('request', countPass);
    second.gateway.trafficServer.on('upgrade', countPass);
  });

  afterAll(async () => {
    await first?.close();
    await second?.close();
  });

  it('answers 508 loop_detected after two origin-side hops', async () => {
    passes = 0;
    const response = await send(first, LOOP_HOST, '/hello');
    expect(response.status, `after ${passes} passes: ${response.text}`).toBe(508);
    expect((response.json() as LoopError).error.code).toBe('loop_detected');
    // The client's request, then one pass through each replica per origin-side hop.
    expect(passes).toBe(3);
  });

  it('answers a looping WebSocket upgrade 508 loop_detected the same way', async () => {
    passes = 0;
    const answer = await sendUpgrade(first, LOOP_HOST, '/socket');
    expect(answer.status, `after ${passes} passes: ${answer.text}`).toBe(508);
    expect((JSON.parse(answer.text) as LoopError).error.code).toBe('loop_detected');
    expect(passes).toBe(3);
  });
});

describe('CDN-Loop on the way to an origin', () => {
  let gateway: TestGateway;
  let origin: TestOrigin;
  let session: ClientHttp2Session | undefined;
  const host = `cdnloop-${randomUUID().slice(0, 8)}.localhost`;

  beforeAll(async () => {
    origin = await startTestOrigin('cdn-loop');
    gateway = await startTestGateway({ GATEWAY_H2C: 'true' });
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: host.slice(0, -'.localhost'.length),
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [
          { origin_id: originId, path_pattern: '/open/*' },
          { origin_id: originId, path_pattern: '/keyed/*', auth_mode: 'apikey_required' },
          {
            origin_id: originId,
            path_pattern: '/transformed/*',
            // Stored before commands refused CDN-Loop in transforms.
            request_headers: {
              set: { 'cdn-loop': 'elsewhere', 'x-kept': 'yes' },
              add: {},
              remove: ['cdn-loop'],
            },
          },
        ],
      }),
    );
  });

  afterAll(async () => {
    session?.close();
    await gateway?.close();
    await origin?.close();
  });

  const lastSeenLoop = () => origin.seen.at(-1)?.headers['cdn-loop'];

  it('carries the gateway’s entry when the client sent none', async () => {
    expect((await send(gateway, host, '/open/a')).status).toBe(200);
    expect(lastSeenLoop()).toBe('vantageedge');
  });

  it('keeps the entries of other CDNs in front, in their order, and adds its own last', async () => {
    const response = await send(gateway, host, '/open/b', {
      headers: { 'cdn-loop': 'cdn.example.net; ttl=3, FooCDN' },
    });
    expect(response.status).toBe(200);
    expect(lastSeenLoop()).toBe('cdn.example.net; ttl=3, FooCDN, vantageedge');
  });

  it('forwards a request that passed the platform once (a tenant in front of another tenant)', async () => {
    const response = await send(gateway, host, '/open/c', { headers: { 'cdn-loop': 'FooCDN, vantageedge' } });
    expect(response.status).toBe(200);
    expect(lastSeenLoop()).toBe('FooCDN, vantageedge, vantageedge');
  });

  it('does the same for an HTTP/2 client’s request', async () => {
    session = http2Connect(gateway.url);
    const h2 = (path: string, cdnLoop: string) =>
      http2Request(session!, { path, authority: host, headers: { 'cdn-loop': cdnLoop }, timeoutMs: 3_000 });
    expect((await h2('/open/h2', 'FooCDN')).status).toBe(200);
    expect(lastSeenLoop()).toBe('FooCDN, vantageedge');
    const looped = await h2('/keyed/h2', 'vantageedge, vantageedge');
    expect(looped.status).toBe(508);
    expect((JSON.parse(looped.body) as LoopError).error.code).toBe('loop_detected');
  });

  it('keeps the client’s entries and its own from a stored route that transforms CDN-Loop', async () => {
    const response = await send(gateway, host, '/transformed/e', { headers: { 'cdn-loop': 'FooCDN' } });
    expect(response.status).toBe(200);
    expect(lastSeenLoop()).toBe('FooCDN, vantageedge');
    expect(origin.seen.at(-1)?.headers['x-kept']).toBe('yes');
  });

  it('refuses a request that passed the platform twice before authentication, the cache or the origin, and counts it', async () => {
    const before = origin.seen.length;
    const response = await send(gateway, host, '/keyed/d', {
      headers: { 'cdn-loop': 'vantageedge, other; p=1, VantageEdge' },
    });
    expect(response.status).toBe(508);
    expect(response.json()).toEqual({
      error: {
        code: 'loop_detected',
        message: expect.stringContaining('CDN-Loop'),
      },
    });
    expect(origin.seen.length).toBe(before);

    const metrics = await gateway.registry.getSingleMetricAsString(
      'vantageedge_gateway_error_responses_total',
    );
    expect(metrics).toMatch(/status="508".*code="loop_detected"|code="loop_detected".*status="508"/);
    await vi.waitFor(
      () => {
        const line = gateway.logLines.find(
          (entry) => entry['kind'] === 'access' && entry['error_code'] === 'loop_detected',
        );
        expect(line?.['status']).toBe(508);
      },
      { timeout: 10_000 },
    );
  });
});
