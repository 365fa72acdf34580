import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cachePolicy } from '@vantageedge/shared/domain/gateway-config';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { selfSignedTestCertificate } from '@vantageedge/shared/testing/test-certificates';
import type { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { createCacheStage } from './cache-stage.js';
import { MemoryCacheStore } from './memory-cache-store.js';
import { createResponseCache } from './response-cache.js';

/**
 * Regressions from a review with naive/hostile origins: the response cache keyed on what the CLIENT
 * sent, not on what the origin received. An origin answering per X-Forwarded-Proto, X-Real-IP or
 * X-Forwarded-Host (the gateway's values) had one client's answer served to every other client: an
 * http→https redirect served to https requests (a redirect loop for the TTL), one client's per-IP
 * page to the next client, a custom domain's answer on the platform subdomain.
 */

let gateway: TestGateway;
let origin: Server;
let registry: Registry;
let certDir: string;

beforeAll(async () => {
  origin = createServer((req, res) => {
    const proto = String(req.headers['x-forwarded-proto']);
    const url = req.url ?? '/';
    if (url.startsWith('/redirect') || url.startsWith('/naive-redirect')) {
      // Plain HTTP is redirected to HTTPS: with `Vary: X-Forwarded-Proto` (well-behaved) or without.
      const vary = url.startsWith('/redirect') ? { vary: 'X-Forwarded-Proto' } : {};
      const common = { ...vary, 'cache-control': 'public, max-age=3600' };
      if (proto !== 'https') {
        res.writeHead(301, {
          ...common,
          location: `https://${req.headers['x-forwarded-host']}${url}`,
          'content-length': 0,
        });
        res.end();
        return;
      }
      res.writeHead(200, { ...common, 'content-type': 'text/plain' });
      res.end('secure page');
      return;
    }
    if (url.startsWith('/per-ip')) {
      // A CGI-style origin names the header it read (HTTP_X_REAL_IP) as it likes: X_Real_IP, X.Real.IP.
      const vary = new URL(url, 'http://origin').searchParams.get('vary') ?? 'X-Real-IP';
      res.writeHead(200, { vary, 'cache-control': 'public, max-age=60' });
      res.end(`hello ${req.headers['x-real-ip']}`);
      return;
    }
    if (url.startsWith('/keyed-ip')) {
      // A route whose policy keys on X-Real-IP (vary_headers): the origin answers per client address.
      res.writeHead(200, { 'cache-control': 'public, max-age=60' });
      res.end(`hello ${req.headers['x-real-ip']}`);
      return;
    }
    if (url.startsWith('/client-host')) {
      // A route with preserve_host: the origin answers for the Host it received, without saying so.
      res.writeHead(200, { 'cache-control': 'public, max-age=60' });
      res.end(`site ${req.headers.host}`);
      return;
    }
    if (url.startsWith('/per-host')) {
      // A naive origin: answers per host without saying so.
      res.writeHead(200, { 'cache-control': 'public, max-age=60' });
      res.end(`site ${req.headers['x-forwarded-host']}`);
      return;
    }
    res.writeHead(404, { 'content-length': 0 });
    res.end();
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  certDir = await mkdtemp(path.join(tmpdir(), 'origin-facing-key-'));
  const cert = await selfSignedTestCertificate({ dnsNames: ['*.localhost', 'localhost', 'shop.example'] });
  await writeFile(path.join(certDir, 'cert.pem'), cert.chainPem);
  await writeFile(path.join(certDir, 'key.pem'), cert.privateKeyPem);
  registry = createMetricsRegistry('origin-facing-key', { defaultMetrics: false });
  const cache = createResponseCache({
    store: new MemoryCacheStore({ maxBytes: 10_000_000 }),
    l1MaxBytes: 1_000_000,
    registry,
    logger: createLogger({ service: 'test', level: 'error' }),
  });
  gateway = await startTestGateway(
    {
      GATEWAY_TLS_PORT: '0',
      GATEWAY_TLS_CERT_FILE: path.join(certDir, 'cert.pem'),
      GATEWAY_TLS_KEY_FILE: path.join(certDir, 'key.pem'),
    },
    { stages: [createCacheStage(cache)] },
  );
  const originId = randomUUID();
  const snapshot = buildSnapshot({
    subdomain: 'okey',
    customDomains: ['shop.example'],
    origins: [{ id: originId, targets: [`http://127.0.0.1:${(origin.address() as AddressInfo).port}`] }],
    routes: [
      { origin_id: originId, path_pattern: '/keyed-ip/*' },
      { origin_id: originId, path_pattern: '/*' },
      { origin_id: originId, path_pattern: '/client-host/*', preserve_host: true },
      { origin_id: originId, path_pattern: '/keyed-ip-spelled/*' },
    ],
  });
  snapshot.routes[0]!.cache_policy = cachePolicy.parse({
    ttl_seconds: 3600,
    cache_key_pattern: 'path+query+headers',
    vary_headers: ['X-Real-IP'],
  });
  snapshot.routes[1]!.cache_policy = cachePolicy.parse({ ttl_seconds: 3600 });
  snapshot.routes[2]!.cache_policy = cachePolicy.parse({ ttl_seconds: 3600 });
  // Stored before commands refused X-Real-IP spelled with `_` in vary_headers.
  snapshot.routes[3]!.cache_policy = cachePolicy.parse({
    ttl_seconds: 3600,
    cache_key_pattern: 'path+query+headers',
    vary_headers: ['X_Real_IP'],
  });
  gateway.store.apply(snapshot);
  await cache.prepareTenant(snapshot.tenant_id);
});

afterAll(async () => {
  await gateway?.close();
  await new Promise<void>((resolve) => origin?.close(() => resolve()));
  if (certDir !== undefined) await rm(certDir, { recursive: true, force: true });
});

interface Answer {
  status: number;
  location: string | undefined;
  xcache: string | undefined;
  body: string;
}

function get(
  p: string,
  { secure = false, host = 'okey.localhost', localAddress = '127.0.0.1' } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const options = {
      host: '127.0.0.1',
      port: secure ? gateway.gateway.tlsPort! : gateway.gateway.trafficPort,
      path: p,
      headers: { host },
      servername: host,
      rejectUnauthorized: false,
      localAddress,
      agent: false,
    } as const;
    const req = (secure ? httpsRequest : httpRequest)(options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () =>
        resolve({
          status: res.statusCode!,
          location: res.headers.location,
          xcache: res.headers['x-cache'] as string | undefined,
          body,
        }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

async function getWith(p: string, headers: Record<string, string>, localAddress: string): Promise<string> {
  const response = await new Promise<string>((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port: gateway.gateway.trafficPort,
        path: p,
        headers: { host: 'okey.localhost', ...headers },
        localAddress,
        agent: false,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => resolve(body));
      },
    );
    req.on('error', reject);
    req.end();
  });
  return response;
}

async function notStored(reason: string): Promise<number> {
  const metric = registry.getSingleMetric('vantageedge_gateway_cache_not_stored_total');
  const values = (await metric?.get())?.values ?? [];
  return values.find((value) => value.labels['reason'] === reason)?.value ?? 0;
}

describe('the response cache keys on what the origin answered for', () => {
  it('regression: an https request is never served the http→https redirect (Vary: X-Forwarded-Proto)', async () => {
    const before = await notStored('vary_gateway_header');
    const plain = await get('/redirect/page');
    expect(plain.status).toBe(301);
    expect(plain.location).toBe('https://okey.localhost/redirect/page');
    const secure = await get('/redirect/page', { secure: true });
    expect(secure.status).toBe(200);
    expect(secure.body).toBe('secure page');
    // Varying on a header the gateway writes: not stored (the next one is a MISS too), and counted.
    expect((await get('/redirect/page', { secure: true })).xcache).toBe('MISS');
    expect(await notStored('vary_gateway_header')).toBe(before + 3);
  });

  it('regression: a client is never served another client’s per-address answer (Vary: X-Real-IP)', async () => {
    const a = await get('/per-ip/x', { localAddress: '127.0.0.2' });
    const b = await get('/per-ip/x', { localAddress: '127.0.0.3' });
    expect(a.body).toBe('hello 127.0.0.2');
    expect(b.body).toBe('hello 127.0.0.3');
    expect(b.xcache).toBe('MISS');
  });

  it('regression: nor when the origin spells the header with `_` or `.` (Vary: X_Real_IP, X.Real.IP)', async () => {
    for (const vary of ['X_Real_IP', 'X.Real.IP']) {
      const path = `/per-ip/spelled?vary=${encodeURIComponent(vary)}`;
      const a = await get(path, { localAddress: '127.0.0.2' });
      const b = await get(path, { localAddress: '127.0.0.3' });
      expect([vary, a.body, b.body, b.xcache]).toEqual([vary, 'hello 127.0.0.2', 'hello 127.0.0.3', 'MISS']);
    }
  });

  it('regression: a policy keyed on a header the gateway writes (X-Real-IP) never serves one client’s answer to another', async () => {
    // The key could only read the client's own X-Real-IP (absent for nearly everyone, or spoofed), while
    // the origin answered the gateway's: the route is served uncached instead.
    const a = await get('/keyed-ip/x', { localAddress: '127.0.0.2' });
    const b = await get('/keyed-ip/x', { localAddress: '127.0.0.3' });
    expect(a.body).toBe('hello 127.0.0.2');
    expect(b.body).toBe('hello 127.0.0.3');
    const spoofed = await getWith('/keyed-ip/x', { 'x-real-ip': '127.0.0.2' }, '127.0.0.4');
    expect(spoofed).toBe('hello 127.0.0.4');
  });

  it('regression: nor one keyed on it spelled with `_` (X_Real_IP, as CGI-style origins read X-Real-IP)', async () => {
    const a = await get('/keyed-ip-spelled/x', { localAddress: '127.0.0.2' });
    const b = await get('/keyed-ip-spelled/x', { localAddress: '127.0.0.3' });
    expect([a.body, b.body]).toEqual(['hello 127.0.0.2', 'hello 127.0.0.3']);
  });

  it('regression: the scheme is part of the key (an origin redirecting without Vary)', async () => {
    const plain = await get('/naive-redirect/page');
    expect(plain.status).toBe(301);
    const secure = await get('/naive-redirect/page', { secure: true });
    expect(secure.status).toBe(200);
    expect(secure.body).toBe('secure page');
    // Each scheme's answer is still cached on its own.
    expect(await get('/naive-redirect/page')).toMatchObject({ status: 301, xcache: 'HIT' });
    expect(await get('/naive-redirect/page', { secure: true })).toMatchObject({
      status: 200,
      xcache: 'HIT',
      body: 'secure page',
    });
  });

  it('regression: a Host spelled with a port, a trailing dot or in capitals never poisons the plain host’s entry', async () => {
    // The origin gets the client's Host as it was spelled (X-Forwarded-Host, Forwarded host=): an
    // attacker's port or spelling reflected into links or redirects must stay the attacker's.
    for (const spelling of ['okey.localhost:1', 'okey.localhost.', 'OKEY.localhost']) {
      const poisoned = await get(`/per-host/spelled/${encodeURIComponent(spelling)}`, { host: spelling });
      expect(poisoned.body).toBe(`site ${spelling}`);
      const victim = await get(`/per-host/spelled/${encodeURIComponent(spelling)}`);
      expect(victim.body).toBe('site okey.localhost');
    }
  });

  it('regression: the host is part of the key (custom domain vs platform subdomain)', async () => {
    const subdomain = await get('/per-host/a');
    const custom = await get('/per-host/a', { host: 'shop.example' });
    expect(subdomain.body).toBe('site okey.localhost');
    expect(custom.body).toBe('site shop.example');
    expect(custom.xcache).toBe('MISS');
    // The Host as the origin gets it (X-Forwarded-Host): another spelling is another key.
    expect(await get('/per-host/a', { host: 'shop.example' })).toMatchObject({
      xcache: 'HIT',
      body: 'site shop.example',
    });
    expect(await get('/per-host/a', { host: 'SHOP.example.' })).toMatchObject({
      xcache: 'MISS',
      body: 'site SHOP.example.',
    });
  });

  it('a route with preserve_host: each host the origin is sent as Host has its own entry', async () => {
    expect(await get('/client-host/a')).toMatchObject({ xcache: 'MISS', body: 'site okey.localhost' });
    expect(await get('/client-host/a', { host: 'shop.example' })).toMatchObject({
      xcache: 'MISS',
      body: 'site shop.example',
    });
    expect(await get('/client-host/a', { host: 'okey.localhost:8080' })).toMatchObject({
      xcache: 'MISS',
      body: 'site okey.localhost:8080',
    });
    expect(await get('/client-host/a')).toMatchObject({ xcache: 'HIT', body: 'site okey.localhost' });
  });
});
