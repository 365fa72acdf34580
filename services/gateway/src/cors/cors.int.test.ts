import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type ClerkTestKeys,
  createClerkTestKeys,
  signClerkToken,
} from '@vantageedge/shared/testing/clerk-tokens';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCacheStage } from '../cache/cache-stage.js';
import { memoryResponseCache } from '../cache/testing/memory-response-cache.js';
import {
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * CORS through the real pipeline: a browser's preflight to a jwt_required route is answered by the
 * gateway before authentication, the actual request still needs its token, answers say Vary: Origin
 * (merged with the origin's) and cached answers are kept per Origin.
 */
describe('CORS route policy', () => {
  let gateway: TestGateway;
  let origin: TestOrigin;
  let varyingOrigin: Server;
  let reflectingOrigin: Server;
  let revalidatedOrigin: Server;
  let keys: ClerkTestKeys;
  let token: string;
  const CORS = {
    allow_origins: ['https://app.example.com', 'https://*.partner.example'],
    allow_methods: ['GET', 'POST'],
    allow_headers: ['authorization', 'content-type', 'x-trace'],
    expose_headers: ['x-request-id'],
    allow_credentials: true,
    max_age_seconds: 600,
  };

  beforeAll(async () => {
    keys = await createClerkTestKeys();
    token = await signClerkToken(keys, { userId: 'user_cors' });
    origin = await startTestOrigin('cors-origin');
    varyingOrigin = createServer((req, res) => {
      req.resume();
      res.writeHead(200, {
        'content-type': 'text/plain',
        vary: 'Accept-Encoding',
        'cache-control': 'public, max-age=60',
        'access-control-allow-origin': 'https://origin-chose-this.example',
      });
      res.end(`seen origin ${req.headers.origin ?? 'none'}`);
    });
    await new Promise<void>((resolve) => varyingOrigin.listen(0, '127.0.0.1', resolve));
    // An origin with CORS of its own that trusts every site (reflects any Origin, with credentials).
    reflectingOrigin = createServer((req, res) => {
      req.resume();
      res.writeHead(200, {
        'content-type': 'text/plain',
        'cache-control': 'public, max-age=60',
        'access-control-allow-origin': req.headers.origin ?? '*',
        'access-control-allow-credentials': 'true',
        'access-control-expose-headers': 'x-secret',
      });
      res.end('account data');
    });
    await new Promise<void>((resolve) => reflectingOrigin.listen(0, '127.0.0.1', resolve));
    // Reflects any Origin, without Vary; stale at once, and fresh for a minute once it confirms (304).
    revalidatedOrigin = createServer((req, res) => {
      req.resume();
      const allowed =
        req.headers.origin === undefined ? {} : { 'access-control-allow-origin': req.headers.origin };
      if (req.headers['if-none-match'] === '"v1"') {
        res.writeHead(304, { etag: '"v1"', 'cache-control': 'public, max-age=60', ...allowed });
        res.end();
        return;
      }
      res.writeHead(200, {
        etag: '"v1"',
        'cache-control': 'public, max-age=0',
        'content-type': 'text/plain',
        ...allowed,
      });
      res.end('catalog');
    });
    await new Promise<void>((resolve) => revalidatedOrigin.listen(0, '127.0.0.1', resolve));
    const cache = memoryResponseCache({
      fillBudgetBytes: 1_000_000,
      maxVariantsPerUrl: 16,
    });
    gateway = await startTestGateway(
      { CLERK_JWT_KEY: keys.publicKeyPem },
      { stages: [createCacheStage(cache)] },
    );
    const originId = randomUUID();
    const varyingId = randomUUID();
    const reflectingId = randomUUID();
    const revalidatedId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'cors',
        clerkUserIds: ['user_cors'],
        origins: [
          { id: originId, targets: [origin.url] },
          { id: varyingId, targets: [`http://127.0.0.1:${(varyingOrigin.address() as AddressInfo).port}`] },
          {
            id: reflectingId,
            targets: [`http://127.0.0.1:${(reflectingOrigin.address() as AddressInfo).port}`],
          },
          {
            id: revalidatedId,
            targets: [`http://127.0.0.1:${(revalidatedOrigin.address() as AddressInfo).port}`],
          },
        ],
        routes: [
          { origin_id: originId, path_pattern: '/api/*', auth_mode: 'jwt_required', cors: CORS },
          { origin_id: originId, path_pattern: '/open/*', cors: { allow_origins: ['*'] } },
          {
            origin_id: varyingId,
            path_pattern: '/cached/*',
            cors: { allow_origins: ['https://app.example.com', 'https://other.example.com'] },
            cache_policy: { ttl_seconds: 60 },
          },
          {
            origin_id: varyingId,
            path_pattern: '/open-cached/*',
            cors: { allow_origins: ['*'] },
            cache_policy: { ttl_seconds: 60 },
          },
          { origin_id: originId, path_pattern: '/plain/*', methods: ['GET'] },
          // response_headers writing Vary, on an origin that sends one (cached) and on one that does not.
          {
            origin_id: varyingId,
            path_pattern: '/vary-set/*',
            cors: { allow_origins: ['https://app.example.com'] },
            cache_policy: { ttl_seconds: 60 },
            response_headers: { set: { vary: 'Accept' } },
          },
          {
            origin_id: varyingId,
            path_pattern: '/vary-removed/*',
            cors: { allow_origins: ['https://app.example.com'] },
            response_headers: { remove: ['vary'] },
          },
          {
            origin_id: originId,
            path_pattern: '/vary-added/*',
            cors: { allow_origins: ['https://app.example.com'] },
            response_headers: { add: { vary: 'Accept' } },
          },
          // Vary in a fixed_response's headers, and in response_headers written with the request's values.
          {
            origin_id: null,
            path_pattern: '/fixed-vary/*',
            cors: { allow_origins: ['https://app.example.com'] },
            fixed_response: { status: 200, body: 'fixed', headers: { Vary: 'Accept-Encoding' } },
          },
          {
            origin_id: null,
            path_pattern: '/fixed-vary-origin/*',
            cors: { allow_origins: ['https://app.example.com'] },
            fixed_response: { status: 503, body: 'down', headers: { vary: 'origin, Accept' } },
          },
          {
            origin_id: varyingId,
            path_pattern: '/vary-set-origin/*',
            cors: { allow_origins: ['https://app.example.com'] },
            response_headers: { set: { vary: 'ORIGIN, Accept' } },
          },
          {
            origin_id: varyingId,
            path_pattern: '/vary-per-request/*',
            cors: { allow_origins: ['https://app.example.com'] },
            cache_policy: { ttl_seconds: 60 },
            // biome-ignore lint/suspicious/noTemplateCurlyInString: the route policies' own value-template syntax
            response_headers: { set: { vary: 'Accept, X-Request-${request_id}' } },
          },
          // Origins written with their scheme's default port, which a browser's Origin never carries.
          {
            origin_id: originId,
            path_pattern: '/default-port/*',
            cors: { allow_origins: ['https://app.example.com:443', 'http://*.partner.example:80'] },
          },
          {
            origin_id: reflectingId,
            path_pattern: '/reflecting/*',
            cors: { allow_origins: ['https://app.example.com'] },
            cache_policy: { ttl_seconds: 60 },
          },
          // The same origin behind a cached route without a CORS policy: its own CORS answer reaches clients.
          {
            origin_id: reflectingId,
            path_pattern: '/reflecting-plain/*',
            cache_policy: { ttl_seconds: 60 },
          },
          {
            origin_id: revalidatedId,
            path_pattern: '/revalidated-plain/*',
            cache_policy: { mode: 'standard' },
          },
          // Refusals the gateway makes before the route's other stages: limits and a loop.
          {
            origin_id: originId,
            path_pattern: '/upload/*',
            methods: ['POST'],
            cors: { allow_origins: ['https://app.example.com'] },
            max_body_bytes: 16,
            max_header_bytes: 4096,
          },
          // Version 2 of an API, chosen by a header, beside the path-only version 1; one of them has CORS.
          {
            origin_id: originId,
            path_pattern: '/v2-cors/*',
            methods: ['GET', 'POST'],
            match: { headers: [{ name: 'x-api-version', exact: '2' }] },
            cors: { allow_origins: ['https://app.example.com'], allow_headers: ['x-api-version'] },
          },
          { origin_id: originId, path_pattern: '/v2-cors/*', methods: ['GET', 'POST'] },
          {
            origin_id: originId,
            path_pattern: '/v1-cors/*',
            methods: ['GET', 'POST'],
            match: { headers: [{ name: 'x-api-version', exact: '2' }] },
          },
          {
            origin_id: originId,
            path_pattern: '/v1-cors/*',
            methods: ['GET', 'POST'],
            cors: { allow_origins: ['https://app.example.com'] },
          },
        ],
      }),
    );
  });

  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
    await new Promise<void>((resolve) => varyingOrigin?.close(() => resolve()));
    await new Promise<void>((resolve) => reflectingOrigin?.close(() => resolve()));
    await new Promise<void>((resolve) => revalidatedOrigin?.close(() => resolve()));
  });

  const preflight = (path: string, headers: Record<string, string>) =>
    send(gateway, 'cors.localhost', path, { method: 'OPTIONS', headers });

  it('answers a browser preflight to a jwt_required route with 204 and the allowed CORS headers, without a token', async () => {
    const seenBefore = origin.seen.length;
    const answer = await preflight('/api/orders', {
      origin: 'https://app.example.com',
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'Authorization, Content-Type',
    });
    expect(answer.status).toBe(204);
    expect(answer.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(answer.headers['access-control-allow-credentials']).toBe('true');
    expect(answer.headers['access-control-allow-methods']).toBe('GET, POST');
    expect(answer.headers['access-control-allow-headers']).toBe('authorization, content-type, x-trace');
    expect(answer.headers['access-control-max-age']).toBe('600');
    expect(String(answer.headers['vary'])).toContain('Origin');
    expect(answer.text).toBe('');
    expect(origin.seen.length).toBe(seenBefore); // the gateway answered it
  });

  it('still requires the token on the actual request, whose answers (401 too) carry the CORS headers', async () => {
    const refused = await send(gateway, 'cors.localhost', '/api/orders', {
      headers: { origin: 'https://app.example.com' },
    });
    expect(refused.status).toBe(401);
    expect(refused.headers['access-control-allow-origin']).toBe('https://app.example.com');

    const allowed = await send(gateway, 'cors.localhost', '/api/orders', {
      headers: { origin: 'https://app.example.com', authorization: `Bearer ${token}` },
    });
    expect(allowed.status).toBe(200);
    expect(allowed.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(allowed.headers['access-control-allow-credentials']).toBe('true');
    expect(allowed.headers['access-control-expose-headers']).toBe('x-request-id');
    expect(allowed.headers['vary']).toBe('Origin');
  });

  it('matches subdomains of a wildcard origin, but not the bare domain or a look-alike', async () => {
    const ask = (from: string) =>
      preflight('/api/orders', { origin: from, 'access-control-request-method': 'GET' });
    expect((await ask('https://eu.partner.example')).status).toBe(204);
    expect((await ask('https://a.b.partner.example')).status).toBe(204);
    for (const refused of [
      'https://partner.example',
      'https://evilpartner.example',
      'http://eu.partner.example',
      // Not a host under the domain, though the text ends with it.
      'https://evil.example#.partner.example',
      'https://evil.example?.partner.example',
      'https://evil.example@eu.partner.example',
      'https://evil.example\\.partner.example',
      'https://a..partner.example',
      'https://a b.partner.example',
    ]) {
      const answer = await ask(refused);
      expect(answer.status, refused).toBe(403);
      expect(answer.json()['error']).toMatchObject({ code: 'cors_not_allowed' });
      expect(answer.headers['access-control-allow-origin']).toBeUndefined();
    }
  });

  it("allows an origin listed with its scheme's default port, which browsers leave out of Origin", async () => {
    const exact = await preflight('/default-port/x', {
      origin: 'https://app.example.com',
      'access-control-request-method': 'GET',
    });
    expect(exact.status).toBe(204);
    expect(exact.headers['access-control-allow-origin']).toBe('https://app.example.com');
    const wildcard = await send(gateway, 'cors.localhost', '/default-port/x', {
      headers: { origin: 'http://eu.partner.example' },
    });
    expect(wildcard.headers['access-control-allow-origin']).toBe('http://eu.partner.example');
    // Another port is another origin.
    for (const other of [
      'https://app.example.com:8443',
      'http://app.example.com',
      'https://eu.partner.example',
    ]) {
      const refused = await preflight('/default-port/x', {
        origin: other,
        'access-control-request-method': 'GET',
      });
      expect(refused.status, other).toBe(403);
    }
  });

  it('refuses a preflight for a method or a header the route does not allow', async () => {
    const method = await preflight('/api/orders', {
      origin: 'https://app.example.com',
      'access-control-request-method': 'DELETE',
    });
    expect(method.status).toBe(403);
    expect(JSON.stringify(method.json())).toContain('DELETE');
    const header = await preflight('/api/orders', {
      origin: 'https://app.example.com',
      'access-control-request-method': 'GET',
      'access-control-request-headers': 'x-secret',
    });
    expect(header.status).toBe(403);
    expect(JSON.stringify(header.json())).toContain('x-secret');
  });

  // Regression: the refusals made before the CORS stage ran (a declared body over the route's or the
  // gateway's limit, a header section over the route's, a request looping back to the platform) went
  // out without the route's CORS headers: a page the policy allows saw a network error where it could
  // read the 401 of the same route, or the 413 of a body that was streamed instead of declared.
  it("gives the gateway's refusals before the route's other stages its CORS headers too", async () => {
    const refusals: Array<[string, number, Record<string, string>, string | undefined]> = [
      ["the route's body limit", 413, {}, 'x'.repeat(64)],
      ["the gateway's body limit", 413, { 'content-length': String(64 * 1024 * 1024) }, undefined],
      ["the route's header limit", 431, { 'x-padding': 'p'.repeat(5000) }, undefined],
      ['a loop', 508, { 'cdn-loop': 'vantageedge, vantageedge' }, undefined],
    ];
    for (const [refusal, status, headers, body] of refusals) {
      const ask = (from: string) =>
        send(gateway, 'cors.localhost', '/upload/x', {
          method: 'POST',
          headers: { origin: from, ...headers },
          ...(body === undefined ? {} : { body }),
        });
      const allowed = await ask('https://app.example.com');
      expect(allowed.status, refusal).toBe(status);
      expect(allowed.headers['access-control-allow-origin'], refusal).toBe('https://app.example.com');
      expect(allowed.headers['vary'], refusal).toBe('Origin');
      const foreign = await ask('https://evil.example');
      expect(foreign.status, refusal).toBe(status);
      expect(foreign.headers['access-control-allow-origin'], refusal).toBeUndefined();
      expect(foreign.headers['vary'], refusal).toBe('Origin');
    }
  });

  // CORS runs before the route's own limits: its preflight is answered whatever their size (it never
  // reaches the origin), the actual request is refused by them with the CORS headers a page can read.
  // The gateway's own refusals still come first: a looping or oversized preflight is refused.
  it("answers a preflight before the route's limits, never before a loop or the gateway's body limit", async () => {
    const ask = (headers: Record<string, string>) =>
      preflight('/upload/x', {
        origin: 'https://app.example.com',
        'access-control-request-method': 'POST',
        ...headers,
      });
    const padded = await ask({ 'x-padding': 'p'.repeat(5000) });
    expect(padded.status).toBe(204);
    expect(padded.headers['access-control-allow-origin']).toBe('https://app.example.com');
    const looping = await ask({ 'cdn-loop': 'vantageedge, vantageedge' });
    expect(looping.status).toBe(508);
    expect(looping.headers['access-control-allow-origin']).toBeUndefined();
    const oversized = await ask({ 'content-length': String(64 * 1024 * 1024) });
    expect(oversized.status).toBe(413);
    expect(oversized.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('gives an actual request from a foreign origin no Access-Control-Allow-Origin', async () => {
    const answer = await send(gateway, 'cors.localhost', '/api/orders', {
      headers: { origin: 'https://evil.example', authorization: `Bearer ${token}` },
    });
    expect(answer.status).toBe(200);
    expect(answer.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('answers * for allow_origins ["*"] without credentials', async () => {
    const answer = await send(gateway, 'cors.localhost', '/open/x', {
      headers: { origin: 'https://any.example' },
    });
    expect(answer.headers['access-control-allow-origin']).toBe('*');
    expect(answer.headers['access-control-allow-credentials']).toBeUndefined();
  });

  it("merges Vary: Origin with the origin's Vary, replaces the origin's CORS headers, and keys the cache on Origin", async () => {
    const first = await send(gateway, 'cors.localhost', '/cached/item', {
      headers: { origin: 'https://app.example.com' },
    });
    expect(first.status).toBe(200);
    expect(first.headers['x-cache']).toBe('MISS');
    expect(first.headers['vary']).toBe('Accept-Encoding, Origin');
    expect(first.headers['access-control-allow-origin']).toBe('https://app.example.com');

    const hit = await send(gateway, 'cors.localhost', '/cached/item', {
      headers: { origin: 'https://app.example.com' },
    });
    expect(hit.headers['x-cache']).toBe('HIT');
    expect(hit.text).toBe('seen origin https://app.example.com');
    expect(hit.headers['vary']).toContain('Origin');

    const other = await send(gateway, 'cors.localhost', '/cached/item', {
      headers: { origin: 'https://other.example.com' },
    });
    expect(other.headers['x-cache']).toBe('MISS');
    expect(other.text).toBe('seen origin https://other.example.com');
    expect(other.headers['access-control-allow-origin']).toBe('https://other.example.com');
  });

  // Regression: the key held the Origin as sent, so a client sending a new Origin with each request
  // (or a listed one in another case) had every one of them answered by the origin.
  it('keys refused Origins as one, no Origin as another, and a listed site however it is spelled', async () => {
    const ask = (origin?: string) =>
      send(gateway, 'cors.localhost', '/cached/spelled', origin === undefined ? {} : { headers: { origin } });

    const refused = await ask('https://evil-1.example');
    expect(refused.headers['x-cache']).toBe('MISS');
    const otherRefused = await ask('https://evil-2.example');
    expect(otherRefused.headers['x-cache']).toBe('HIT');
    expect(otherRefused.headers['access-control-allow-origin']).toBeUndefined();
    expect(otherRefused.headers['vary']).toContain('Origin');

    expect((await ask()).headers['x-cache']).toBe('MISS');
    const none = await ask();
    expect(none.headers['x-cache']).toBe('HIT');
    expect(none.text).toBe('seen origin none');

    const site = await ask('https://app.example.com');
    expect(site.headers['x-cache']).toBe('MISS');
    expect(site.text).toBe('seen origin https://app.example.com');
    const spelled = await ask('HTTPS://APP.example.com:443');
    expect(spelled.headers['x-cache']).toBe('HIT');
    expect(spelled.headers['access-control-allow-origin']).toBe('HTTPS://APP.example.com:443');
    const other = await ask('https://other.example.com');
    expect(other.headers['x-cache']).toBe('MISS');
    expect(other.text).toBe('seen origin https://other.example.com');
  });

  it('keys every Origin of an allow_origins ["*"] route as one, apart from requests without one', async () => {
    const ask = (origin?: string) =>
      send(gateway, 'cors.localhost', '/open-cached/x', origin === undefined ? {} : { headers: { origin } });
    expect((await ask('https://random-1.example')).headers['x-cache']).toBe('MISS');
    const another = await ask('https://random-2.example');
    expect(another.headers['x-cache']).toBe('HIT');
    expect(another.headers['access-control-allow-origin']).toBe('*');
    expect((await ask()).headers['x-cache']).toBe('MISS');
    expect((await ask()).headers['x-cache']).toBe('HIT');
  });

  it("keeps Vary: Origin on answers whose Vary the route's response_headers set, add to or remove, cache HITs too", async () => {
    const varyFields = (answer: { headers: Record<string, string | string[] | undefined> }) =>
      String(answer.headers['vary'] ?? '')
        .split(',')
        .map((field) => field.trim().toLowerCase());
    const ask = (path: string) =>
      send(gateway, 'cors.localhost', path, { headers: { origin: 'https://app.example.com' } });

    const miss = await ask('/vary-set/item');
    expect(miss.headers['x-cache']).toBe('MISS');
    const hit = await ask('/vary-set/item');
    expect(hit.headers['x-cache']).toBe('HIT');
    for (const answer of [miss, hit]) {
      expect(answer.headers['access-control-allow-origin']).toBe('https://app.example.com');
      expect(varyFields(answer)).toEqual(['accept', 'origin']);
    }
    const removed = await ask('/vary-removed/item');
    expect(removed.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(varyFields(removed)).toEqual(['origin']);
    const added = await ask('/vary-added/item');
    expect(added.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(varyFields(added)).toEqual(['accept', 'origin']);
  });

  it("merges Vary: Origin with the Vary of a fixed_response's headers and of response_headers, each field once", async () => {
    const varyFields = (answer: { headers: Record<string, string | string[] | undefined> }) =>
      String(answer.headers['vary'] ?? '')
        .split(',')
        .map((field) => field.trim().toLowerCase());
    const ask = (path: string, from = 'https://app.example.com') =>
      send(gateway, 'cors.localhost', path, { headers: { origin: from } });

    const fixed = await ask('/fixed-vary/x');
    expect(fixed.status).toBe(200);
    expect(fixed.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(varyFields(fixed)).toEqual(['accept-encoding', 'origin']);
    // Refused origins get the fixed answer too, without CORS headers: a shared cache must still vary.
    const refused = await ask('/fixed-vary/x', 'https://evil.example');
    expect(refused.headers['access-control-allow-origin']).toBeUndefined();
    expect(varyFields(refused)).toEqual(['accept-encoding', 'origin']);
    const named = await ask('/fixed-vary-origin/x');
    expect(named.status).toBe(503);
    expect(varyFields(named)).toEqual(['origin', 'accept']);

    const setWithOrigin = await ask('/vary-set-origin/x');
    expect(varyFields(setWithOrigin)).toEqual(['origin', 'accept']);
    const miss = await ask('/vary-per-request/x');
    expect(miss.headers['x-cache']).toBe('MISS');
    const hit = await ask('/vary-per-request/x');
    expect(hit.headers['x-cache']).toBe('HIT');
    for (const answer of [miss, hit]) {
      expect(answer.headers['access-control-allow-origin']).toBe('https://app.example.com');
      expect(varyFields(answer)).toContain('origin');
      expect(varyFields(answer).filter((field) => field === 'origin')).toHaveLength(1);
    }
  });

  it('leaves OPTIONS to a route without CORS alone (no preflight answer from the gateway)', async () => {
    const answer = await preflight('/plain/x', {
      origin: 'https://app.example.com',
      'access-control-request-method': 'GET',
    });
    expect(answer.status).toBe(404); // the route allows only GET; OPTIONS matches nothing
    expect(answer.headers['access-control-allow-origin']).toBeUndefined();
  });

  it("answers the preflight of a header-matched route by its CORS policy, though a preflight carries none of the actual request's headers", async () => {
    const answer = await preflight('/v2-cors/orders', {
      origin: 'https://app.example.com',
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'x-api-version',
    });
    expect(answer.status).toBe(204);
    expect(answer.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(answer.headers['access-control-allow-headers']).toBe('x-api-version');
  });

  // Regression: the header-matched route without CORS took the preflight (matched without its header
  // condition), had no CORS to answer it with, and the preflight went on as a plain OPTIONS request: 404
  // here, and the browser never sent the request the CORS route would have served.
  it('answers the preflight of a path-only CORS route beside a header-matched route without CORS', async () => {
    const answer = await preflight('/v1-cors/orders', {
      origin: 'https://app.example.com',
      'access-control-request-method': 'POST',
    });
    expect(answer.status).toBe(204);
    expect(answer.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(answer.headers['access-control-allow-methods']).toBe('GET, POST');
  });

  // Regression: the route's policy decided only the origins it allows; an origin trusting every site
  // had its own Access-Control-Allow-Origin (and -Credentials) reach a site the policy refuses.
  it("answers CORS by the route's policy alone: the origin's own CORS headers never reach the client", async () => {
    // A site the policy refuses, answered by the origin (MISS) and from the cache (HIT).
    for (let i = 0; i < 2; i++) {
      const answer = await send(gateway, 'cors.localhost', '/reflecting/account', {
        headers: { origin: 'https://evil.example' },
      });
      expect(answer.headers['x-cache']).toBe(i === 0 ? 'MISS' : 'HIT');
      expect(answer.text).toBe('account data');
      expect(answer.headers['access-control-allow-origin']).toBeUndefined();
      expect(answer.headers['access-control-allow-credentials']).toBeUndefined();
      expect(answer.headers['access-control-expose-headers']).toBeUndefined();
    }
    // An allowed origin gets the route's answer: no credentials, nothing exposed, as configured.
    for (let i = 0; i < 2; i++) {
      const answer = await send(gateway, 'cors.localhost', '/reflecting/account', {
        headers: { origin: 'https://app.example.com' },
      });
      expect(answer.headers['x-cache']).toBe(i === 0 ? 'MISS' : 'HIT');
      expect(answer.headers['access-control-allow-origin']).toBe('https://app.example.com');
      expect(answer.headers['access-control-allow-credentials']).toBeUndefined();
      expect(answer.headers['access-control-expose-headers']).toBeUndefined();
    }
  });

  // Regression: on a route without a CORS policy the origin's own Access-Control-Allow-Origin, reflecting
  // the Origin of the request that filled the cache (its Vary not naming Origin), was stored and replayed
  // to every client: any client sending `Origin: https://evil.example` first made the route's answer
  // name that site (with credentials) for every other site's browsers until the entry expired.
  it("keeps an origin's own CORS answer, on a cached route without cors, for the Origin it was given to", async () => {
    const ask = (from: string) =>
      send(gateway, 'cors.localhost', '/reflecting-plain/account', { headers: { origin: from } });
    const poisoning = await ask('https://evil.example');
    expect(poisoning.headers['x-cache']).toBe('MISS');
    expect(poisoning.headers['access-control-allow-origin']).toBe('https://evil.example');
    for (let i = 0; i < 2; i++) {
      const answer = await ask('https://app.example.com');
      expect(answer.headers['x-cache']).toBe(i === 0 ? 'MISS' : 'HIT');
      expect(answer.text).toBe('account data');
      expect(answer.headers['access-control-allow-origin']).toBe('https://app.example.com');
    }
    const again = await ask('https://evil.example');
    expect(again.headers['x-cache']).toBe('HIT');
    expect(again.headers['access-control-allow-origin']).toBe('https://evil.example');
  });
  // Regression: the same through a revalidation. The origin's 304 to one client's Origin updated the
  // stored answer (RFC 9111 §3.2) with that Origin's Access-Control-Allow-Origin, fresh for everyone.
  it("keeps an origin's CORS answer from a revalidation (304) for the Origin it was given to", async () => {
    const ask = (headers: Record<string, string>) =>
      send(gateway, 'cors.localhost', '/revalidated-plain/list', { headers });
    expect((await ask({})).headers['x-cache']).toBe('MISS');
    const poisoning = await ask({ origin: 'https://evil.example' });
    expect(poisoning.headers['access-control-allow-origin']).toBe('https://evil.example');
    const app = await ask({ origin: 'https://app.example.com' });
    expect(app.text).toBe('catalog');
    expect(app.headers['access-control-allow-origin']).toBe('https://app.example.com');
  });
});
