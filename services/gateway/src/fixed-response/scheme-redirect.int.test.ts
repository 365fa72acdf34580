// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${…} is the route policies' own value-template syntax
import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { http2Connect, http2Request } from '@vantageedge/shared/testing/tls-clients';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type DefaultCertificateFiles,
  writeDefaultCertificateFiles,
} from '../testing/default-certificate-files.js';
import {
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * APISIX's `redirect.http_to_https`: a route with `match.scheme: "http"` takes only requests that reached
 * the gateway over plain HTTP (or that a trusted proxy says did), so its redirect to https never meets the
 * HTTPS request it sends the client to; those go on to the next route of the path.
 */
describe('a redirect route matched on the http scheme', () => {
  let gateway: TestGateway;
  let origin: TestOrigin;
  let certificates: DefaultCertificateFiles;

  beforeAll(async () => {
    certificates = await writeDefaultCertificateFiles('scheme-redirect');
    origin = await startTestOrigin('scheme-redirect-origin');
    gateway = await startTestGateway({
      ...certificates.tlsListenerEnv,
      GATEWAY_H2C: 'true',
      GATEWAY_TRUSTED_PROXIES: '127.0.0.2/32',
    });
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'toh',
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [
          { origin_id: originId, path_pattern: '/*' },
          {
            origin_id: null,
            path_pattern: '/*',
            match: { scheme: 'http' },
            redirect: { status: 301, location: 'https://${host}${path}${query}' },
          },
        ],
      }),
    );
    // README's recipe on a tenant whose routes are more specific than the redirect's `/*`.
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'tohapi',
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [
          { origin_id: originId, path_pattern: '/api/*' },
          { origin_id: originId, path_pattern: '/users/:id' },
          {
            origin_id: null,
            path_pattern: '/*',
            priority: 10_000,
            match: { scheme: 'http' },
            redirect: { status: 301, location: 'https://${host}${path}${query}' },
          },
        ],
      }),
    );
  });

  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
    await certificates?.remove();
  });

  function get(
    path: string,
    {
      secure = false,
      localAddress = '127.0.0.1',
      host = 'toh.localhost',
      headers = {} as Record<string, string>,
    } = {},
  ): Promise<{ status: number; location: string | undefined }> {
    return new Promise((resolve, reject) => {
      const options = {
        host: '127.0.0.1',
        port: secure ? gateway.gateway.tlsPort! : gateway.gateway.trafficPort,
        path,
        headers: { host, ...headers },
        servername: host,
        rejectUnauthorized: false,
        localAddress,
        agent: false,
      } as const;
      const req = (secure ? httpsRequest : httpRequest)(options, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode!, location: res.headers.location }));
      });
      req.on('error', reject);
      req.end();
    });
  }

  it('redirects a plain-HTTP request to https', async () => {
    const answer = await get('/shop/cart?item=1');
    expect(answer).toEqual({ status: 301, location: 'https://toh.localhost/shop/cart?item=1' });
  });

  it('sends an HTTPS request on to the origin instead of redirecting it again', async () => {
    const before = origin.seen.length;
    const answer = await get('/shop/cart?item=1', { secure: true });
    expect(answer.status).toBe(200);
    expect(origin.seen.slice(before).map((seen) => seen.url)).toEqual(['/shop/cart?item=1']);
  });

  it('reads the scheme of an HTTP/2 request alike: h2 over TLS goes on, h2c is redirected', async () => {
    for (const [url, status] of [
      [`https://127.0.0.1:${gateway.gateway.tlsPort}`, 200],
      [`http://127.0.0.1:${gateway.gateway.trafficPort}`, 301],
    ] as const) {
      const session = http2Connect(url, { servername: 'toh.localhost' });
      try {
        const answer = await http2Request(session, {
          path: '/h2',
          authority: 'toh.localhost',
          timeoutMs: 5000,
        });
        expect(answer.status, url).toBe(status);
      } finally {
        session.close();
      }
    }
  });

  it("reads the scheme a trusted proxy says the client used, and no other client's", async () => {
    const proxied = await get('/a', { localAddress: '127.0.0.2', headers: { 'x-forwarded-proto': 'https' } });
    expect(proxied.status).toBe(200);
    const spoofed = await get('/a', { headers: { 'x-forwarded-proto': 'https' } });
    expect(spoofed).toEqual({ status: 301, location: 'https://toh.localhost/a' });
  });

  // A route of a longer path ranks before `/*` whatever its conditions: the redirect route takes every
  // plain-HTTP request only by its priority (at 0 it sent those to /api/… on to the origin).
  it('redirects the plain-HTTP requests of paths more specific routes serve, and serves them over HTTPS', async () => {
    for (const path of ['/api/orders?x=1', '/users/7', '/other']) {
      const plain = await get(path, { host: 'tohapi.localhost' });
      expect(plain, path).toEqual({ status: 301, location: `https://tohapi.localhost${path}` });
    }
    for (const path of ['/api/orders?x=1', '/users/7']) {
      expect((await get(path, { host: 'tohapi.localhost', secure: true })).status, path).toBe(200);
    }
  });
});
