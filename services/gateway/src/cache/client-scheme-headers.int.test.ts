import { randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cachePolicy } from '@vantageedge/shared/domain/gateway-config';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { createCacheStage } from './cache-stage.js';
import { MemoryCacheStore } from './memory-cache-store.js';
import { createResponseCache } from './response-cache.js';

/**
 * The cache keys on the scheme the gateway determined (the connection's, or a trusted proxy's
 * X-Forwarded-Proto), which the origin gets as X-Forwarded-Proto. Many origins also take HTTPS from
 * other headers when X-Forwarded-Proto does not say https: CodeIgniter's is_https() and much PHP code
 * read Front-End-Https, gunicorn and Django set-ups X-Forwarded-Protocol, other code X-Url-Scheme. A
 * client on plain HTTP sending one of them made such an origin answer as if over HTTPS, and that
 * answer was stored under the HTTP key for every client.
 */

let gateway: TestGateway;
let behindProxy: TestGateway;
let origin: Server;
const host = 'schemekey.localhost';

/**
 * The origin's reading of the scheme, as those frameworks make it (PHP reads `_` in a name as `-`;
 * Rack reads X-Forwarded-Ssl and X-Forwarded-Scheme, Tornado X-Scheme; WordPress's Really Simple SSL
 * load-balancing fix CF-Visitor, CloudFront-Forwarded-Proto and X-Proto; Azure App Service apps
 * X-Arr-Ssl, which its front end sets on HTTPS requests).
 */
function readsAsHttps(received: IncomingHttpHeaders): boolean {
  const headers: IncomingHttpHeaders = {};
  for (const [name, value] of Object.entries(received)) headers[name.replaceAll('_', '-')] = value;
  const frontEndHttps = String(headers['front-end-https'] ?? '').toLowerCase();
  return (
    headers['x-forwarded-proto'] === 'https' ||
    (frontEndHttps !== '' && frontEndHttps !== 'off') ||
    headers['x-forwarded-protocol'] === 'https' ||
    headers['x-url-scheme'] === 'https' ||
    headers['x-forwarded-ssl'] === 'on' ||
    headers['x-forwarded-scheme'] === 'https' ||
    headers['x-scheme'] === 'https' ||
    String(headers['cf-visitor'] ?? '').includes('https') ||
    headers['cloudfront-forwarded-proto'] === 'https' ||
    String(headers['x-proto'] ?? '').includes('SSL') ||
    headers['x-arr-ssl'] !== undefined
  );
}

/** A cache in front of the origin, on a gateway started with `settings`. */
async function cachingGateway(settings: Record<string, string>, subdomain: string): Promise<TestGateway> {
  const cache = createResponseCache({
    store: new MemoryCacheStore({ maxBytes: 10_000_000 }),
    l1MaxBytes: 1_000_000,
    registry: createMetricsRegistry(`client-scheme-headers-${subdomain}`, { defaultMetrics: false }),
    logger: createLogger({ service: 'test', level: 'error' }),
  });
  const started = await startTestGateway(settings, { stages: [createCacheStage(cache)] });
  const originId = randomUUID();
  const snapshot = buildSnapshot({
    subdomain,
    origins: [{ id: originId, targets: [`http://127.0.0.1:${(origin.address() as AddressInfo).port}`] }],
    routes: [{ origin_id: originId, path_pattern: '/*' }],
  });
  snapshot.routes[0]!.cache_policy = cachePolicy.parse({ ttl_seconds: 3600 });
  started.store.apply(snapshot);
  await cache.prepareTenant(snapshot.tenant_id);
  return started;
}

beforeAll(async () => {
  // An HTTPS-only site: a plain HTTP request is redirected to its HTTPS URL.
  origin = createServer((req, res) => {
    req.resume();
    if (!readsAsHttps(req.headers)) {
      res.writeHead(301, { location: `https://${req.headers['x-forwarded-host']}${req.url}` });
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<form action="/login" method="post">password</form>');
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  gateway = await cachingGateway({}, 'schemekey');
  behindProxy = await cachingGateway({ GATEWAY_TRUSTED_PROXIES: '127.0.0.1/32' }, 'proxiedscheme');
});

afterAll(async () => {
  await gateway?.close();
  await behindProxy?.close();
  await new Promise<void>((resolve) => origin?.close(() => resolve()));
});

describe('a client on plain HTTP naming HTTPS in a scheme header', () => {
  it.each([
    ['Front-End-Https', 'on'],
    ['X-Forwarded-Protocol', 'https'],
    ['X-Url-Scheme', 'https'],
    ['Front_End_Https', 'on'],
    ['CF-Visitor', '{"scheme":"https"}'],
    ['CloudFront-Forwarded-Proto', 'https'],
    ['X-Proto', 'SSL'],
    ['X-Arr-Ssl', '2048|256|CN=GeoTrust'],
  ])('regression: %s: %s never stores the HTTPS answer for HTTP clients', async (name, value) => {
    const path = `/login/${randomUUID()}`;
    const attack = await send(gateway, host, path, { headers: { [name]: value } });
    expect(attack.status).toBe(301);
    const victim = await send(gateway, host, path);
    expect(victim.status).toBe(301);
    expect(victim.headers.location).toBe(`https://${host}${path}`);
  });
});

/**
 * A trusted proxy tells the client's scheme in X-Forwarded-Proto, and may pass a client's other scheme
 * headers on unchanged (load balancers forward headers they do not know): those reach the origin, as
 * they came from the proxy.
 */
describe('a client on plain HTTP behind a trusted proxy that passes its scheme header on', () => {
  const proxiedHost = 'proxiedscheme.localhost';

  it.each([
    ['Front-End-Https', 'on'],
    ['X-Forwarded-Protocol', 'https'],
    ['X-Url-Scheme', 'https'],
    ['X-Forwarded-Ssl', 'on'],
    ['X-Forwarded-Scheme', 'https'],
    ['X-Scheme', 'https'],
    ['CF-Visitor', '{"scheme":"https"}'],
  ])(
    "regression: %s: %s never stores the HTTPS answer for the proxy's other HTTP clients",
    async (name, value) => {
      const path = `/login/${randomUUID()}`;
      const attack = await send(behindProxy, proxiedHost, path, {
        headers: { 'x-forwarded-proto': 'http', [name]: value },
      });
      expect(attack.status).toBe(200);
      const victim = await send(behindProxy, proxiedHost, path, { headers: { 'x-forwarded-proto': 'http' } });
      expect(victim.status).toBe(301);
      expect(victim.headers.location).toBe(`https://${proxiedHost}${path}`);
      const overHttps = await send(behindProxy, proxiedHost, path, {
        headers: { 'x-forwarded-proto': 'https' },
      });
      expect(overHttps.status).toBe(200);
      expect(
        (await send(behindProxy, proxiedHost, path, { headers: { 'x-forwarded-proto': 'http' } })).headers[
          'x-cache'
        ],
      ).toBe('HIT');
    },
  );
});
