import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { gunzipSync, gzipSync } from 'node:zlib';
import { createTestRedis, type TestRedis } from '@vantageedge/shared/testing/redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CachingTestGateway, startCachingGateway } from '../testing/caching-gateways.js';
import { send } from '../testing/gateway-harness.js';
import { type HttpOrigin, startHttpOrigin } from '../testing/http-origins.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { MemoryCacheStore } from './memory-cache-store.js';
import { RedisCacheStore } from './redis-cache-store.js';

/**
 * Regression tests for responses shared between callers who must not share them, through the real
 * gateway pipeline in front of a local origin:
 * - a response to a request carrying Authorization on a public cached route was stored and served to
 *   anonymous callers;
 * - the origin's Vary was ignored (a gzip body served to a client that sent no Accept-Encoding, a `fr`
 *   body to `en`), and `Vary: *` responses were stored;
 * - the key was computed from headers the gateway then dropped because the client named them in
 *   Connection, so one request could store a response under another variant's key (cache poisoning).
 */

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

function originHandler(req: IncomingMessage, res: ServerResponse): void {
  if (req.url?.startsWith('/plain/search')) {
    // Reads a GET's body, as Elasticsearch-style search APIs and some frameworks' parameter parsers do.
    let query = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (query += chunk));
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`results for ${query || 'everything'}`);
    });
    return;
  }
  req.resume();
  const url = new URL(req.url ?? '/', 'http://origin');
  const path = url.pathname;
  if (path.startsWith('/plain/personal')) {
    const headers: Record<string, string> = { 'content-type': 'text/plain' };
    const cacheControl = url.searchParams.get('cc');
    if (cacheControl) headers['cache-control'] = cacheControl;
    res.writeHead(200, headers);
    res.end(`hello ${header(req, 'authorization') ?? 'anonymous'}`);
    return;
  }
  if (path.startsWith('/plain/session')) {
    // A page personalised by the session cookie, saying nothing about caching (as many frameworks do).
    const session = /(?:^|;\s*)session=([^;]*)/.exec(header(req, 'cookie') ?? '')?.[1];
    const headers: Record<string, string> = { 'content-type': 'text/plain' };
    const cacheControl = url.searchParams.get('cc');
    if (cacheControl) headers['cache-control'] = cacheControl;
    res.writeHead(200, headers);
    res.end(`hello ${session ?? 'anonymous'}`);
    return;
  }
  if (path.startsWith('/plain/encoded')) {
    const text = 'the same document, encoded or not';
    const gzip = (header(req, 'accept-encoding') ?? '').includes('gzip');
    res.writeHead(200, {
      'content-type': 'text/plain',
      vary: 'Accept-Encoding',
      ...(gzip ? { 'content-encoding': 'gzip' } : {}),
    });
    res.end(gzip ? gzipSync(text) : text);
    return;
  }
  if (path.startsWith('/plain/naive-encoded')) {
    // Compresses when asked to, without saying that the answer depends on Accept-Encoding.
    const text = 'the same document, encoded or not';
    const gzip = (header(req, 'accept-encoding') ?? '').includes('gzip');
    res.writeHead(200, { 'content-type': 'text/plain', ...(gzip ? { 'content-encoding': 'gzip' } : {}) });
    res.end(gzip ? gzipSync(text) : text);
    return;
  }
  if (path.startsWith('/plain/lang')) {
    const respond = () => {
      res.writeHead(200, { 'content-type': 'text/plain', vary: 'Accept-Language' });
      res.end(`language ${header(req, 'accept-language') ?? 'default'}`);
    };
    if (path.startsWith('/plain/lang-slow')) setTimeout(respond, 150);
    else respond();
    return;
  }
  if (path.startsWith('/plain/cgi-lang')) {
    // A CGI-style origin (PHP, Rack, WSGI): Accept_Language reaches it as HTTP_ACCEPT_LANGUAGE too.
    const language = header(req, 'accept-language') ?? header(req, 'accept_language');
    res.writeHead(200, { 'content-type': 'text/plain', vary: 'Accept-Language' });
    res.end(`language ${language ?? 'default'}`);
    return;
  }
  if (path.startsWith('/plain/inherited')) {
    res.writeHead(200, { 'content-type': 'text/plain', vary: 'Constructor' });
    res.end(`inherited ${Object.hasOwn(req.headers, 'constructor') ? header(req, 'constructor') : 'none'}`);
    return;
  }
  if (path.startsWith('/plain/star')) {
    res.writeHead(200, { 'content-type': 'text/plain', vary: '*' });
    res.end(`star ${randomUUID()}`);
    return;
  }
  if (path.startsWith('/keyed/')) {
    res.writeHead(200, { 'content-type': 'text/plain' });
    // Read as a CGI-style origin reads it: X_Variant is HTTP_X_VARIANT too.
    res.end(`variant ${header(req, 'x-variant') ?? header(req, 'x_variant') ?? 'default'}`);
    return;
  }
  res.writeHead(404);
  res.end();
}

const stores = ['redis', 'memory'] as const;

for (const storeKind of stores) {
  describe(`cache isolation through the gateway (${storeKind} store)`, () => {
    let origin: HttpOrigin;
    let gateway: CachingTestGateway;
    let redis: TestRedis | undefined;
    const subdomain = `isolation${storeKind}`;
    const host = `${subdomain}.localhost`;

    beforeAll(async () => {
      origin = await startHttpOrigin(originHandler);
      redis = storeKind === 'redis' ? createTestRedis('cache-isolation') : undefined;
      const originId = randomUUID();
      gateway = await startCachingGateway({
        name: `isolation-${storeKind}`,
        store: redis
          ? new RedisCacheStore(redis.client, { keyPrefix: redis.prefix })
          : new MemoryCacheStore({ maxBytes: 1_000_000 }),
        maxVariantsPerUrl: 2,
        snapshot: buildSnapshot({
          subdomain,
          origins: [{ id: originId, targets: [origin.url] }],
          routes: [
            { origin_id: originId, path_pattern: '/plain/*', cache_policy: { ttl_seconds: 60 } },
            {
              origin_id: originId,
              path_pattern: '/keyed/*',
              cache_policy: {
                ttl_seconds: 60,
                cache_key_pattern: 'path+query+headers',
                vary_headers: ['X-Variant'],
              },
            },
          ],
        }),
      });
    });
    afterAll(async () => {
      await gateway.close();
      await origin.close();
      await redis?.cleanup();
    });

    it('does not store a response to a request with Authorization on a public route unless the origin allows it', async () => {
      const path = `/plain/personal/${randomUUID()}`;
      const alice = await send(gateway, host, path, { headers: { authorization: 'Bearer alice' } });
      expect(alice.text).toBe('hello Bearer alice');
      const anonymous = await send(gateway, host, path);
      expect(anonymous.text).toBe('hello anonymous');
      expect(anonymous.headers['x-cache']).toBe('MISS');
      // The anonymous response was stored: a second anonymous caller gets it from the cache.
      const again = await send(gateway, host, path);
      expect(again.headers['x-cache']).toBe('HIT');
      expect(again.text).toBe('hello anonymous');
    });

    it('stores a response to a request with Authorization when the origin says public or s-maxage', async () => {
      for (const cc of ['public, max-age=60', 's-maxage=60']) {
        const path = `/plain/personal/${randomUUID()}?cc=${encodeURIComponent(cc)}`;
        await send(gateway, host, path, { headers: { authorization: 'Bearer alice' } });
        const anonymous = await send(gateway, host, path);
        expect(anonymous.headers['x-cache'], cc).toBe('HIT');
        expect(anonymous.text).toBe('hello Bearer alice');
      }
    });

    it('regression: a page personalised by a session cookie on a public route is not served to other clients', async () => {
      // `;x.css` is what a cache-deception link adds: the origin still answers the victim's own page.
      const path = `/plain/session/${randomUUID()};x.css`;
      const victim = await send(gateway, host, path, { headers: { cookie: 'theme=dark; session=alice' } });
      expect(victim.text).toBe('hello alice');
      const attacker = await send(gateway, host, path);
      expect(attacker.text).toBe('hello anonymous');
      expect(attacker.headers['x-cache']).toBe('MISS');
      // The answer to the request without a cookie is everyone's: stored and served as usual.
      const again = await send(gateway, host, path, { headers: { cookie: 'session=bob' } });
      expect(again.headers['x-cache']).toBe('HIT');
      expect(again.text).toBe('hello anonymous');
    });

    it('stores a response to a request with Cookie when the origin says public', async () => {
      const path = `/plain/session/${randomUUID()}?cc=${encodeURIComponent('public, max-age=60')}`;
      await send(gateway, host, path, { headers: { cookie: 'session=alice' } });
      const anonymous = await send(gateway, host, path);
      expect(anonymous.headers['x-cache']).toBe('HIT');
      expect(anonymous.text).toBe('hello alice');
    });

    it('serves a gzip body only to clients that accept gzip (Vary: Accept-Encoding)', async () => {
      const path = `/plain/encoded/${randomUUID()}`;
      const gzip = await send(gateway, host, path, { headers: { 'accept-encoding': 'gzip' } });
      expect(gzip.headers['content-encoding']).toBe('gzip');
      const identity = await send(gateway, host, path);
      expect(identity.headers['content-encoding']).toBeUndefined();
      expect(identity.text).toBe('the same document, encoded or not');
      // Each variant is cached on its own.
      const identityAgain = await send(gateway, host, path);
      expect(identityAgain.headers['x-cache']).toBe('HIT');
      expect(identityAgain.text).toBe('the same document, encoded or not');
      const gzipAgain = await new Promise<Buffer>((resolve, reject) => {
        import('node:http').then(({ request }) => {
          const req = request(
            {
              host: '127.0.0.1',
              port: gateway.gateway.trafficPort,
              path,
              headers: { host, 'accept-encoding': 'gzip' },
              agent: false,
            },
            (res) => {
              expect(res.headers['x-cache']).toBe('HIT');
              expect(res.headers['content-encoding']).toBe('gzip');
              const chunks: Buffer[] = [];
              res.on('data', (chunk: Buffer) => chunks.push(chunk));
              res.on('end', () => resolve(Buffer.concat(chunks)));
            },
          );
          req.on('error', reject);
          req.end();
        }, reject);
      });
      expect(gunzipSync(gzipAgain).toString()).toBe('the same document, encoded or not');
    });

    it('regression: an encoded response is served only to clients that asked for its coding, even without Vary: Accept-Encoding', async () => {
      const path = `/plain/naive-encoded/${randomUUID()}`;
      const gzip = await send(gateway, host, path, { headers: { 'accept-encoding': 'gzip' } });
      expect(gzip.headers['content-encoding']).toBe('gzip');
      const identity = await send(gateway, host, path);
      expect(identity.headers['content-encoding']).toBeUndefined();
      expect(identity.text).toBe('the same document, encoded or not');
      // The unencoded answer is cached as any other.
      const identityAgain = await send(gateway, host, path);
      expect(identityAgain.headers['x-cache']).toBe('HIT');
      expect(identityAgain.headers['content-encoding']).toBeUndefined();
    });

    it('regression: a GET with a body is neither stored nor answered from the cache (the key has no body)', async () => {
      const path = `/plain/search/${randomUUID()}`;
      for (const framing of [{ 'content-length': '4' }, { 'transfer-encoding': 'chunked' }]) {
        const attack = await send(gateway, host, path, { body: 'evil', headers: framing });
        expect(attack.text).toBe('results for evil');
        const victim = await send(gateway, host, path);
        expect(victim.text).toBe('results for everything');
        expect(attack.headers['x-cache']).toBe('BYPASS');
      }
      // A stored answer is not given to a request whose body the origin would have read either.
      expect((await send(gateway, host, path)).headers['x-cache']).toBe('HIT');
      expect(
        (await send(gateway, host, path, { body: 'mine', headers: { 'content-length': '4' } })).text,
      ).toBe('results for mine');
    });

    it('keys on the request headers the origin names in Vary, up to a cap of variants per URL that replaces the least recently used', async () => {
      const path = `/plain/lang/${randomUUID()}`;
      const fr = await send(gateway, host, path, { headers: { 'accept-language': 'fr' } });
      expect(fr.text).toBe('language fr');
      const en = await send(gateway, host, path, { headers: { 'accept-language': 'en' } });
      expect(en.text).toBe('language en');
      expect(en.headers['x-cache']).toBe('MISS');
      expect((await send(gateway, host, path, { headers: { 'accept-language': 'fr' } })).text).toBe(
        'language fr',
      );
      const enAgain = await send(gateway, host, path, { headers: { 'accept-language': 'en' } });
      expect(enAgain.headers['x-cache']).toBe('HIT');
      expect(enAgain.text).toBe('language en');
      // The cap (2 in this test) is reached: a third language takes the place of the one used least
      // recently (fr), not of en, asked for since.
      const de = await send(gateway, host, path, { headers: { 'accept-language': 'de' } });
      expect(de.text).toBe('language de');
      expect(de.headers['x-cache']).toBe('MISS');
      const deAgain = await send(gateway, host, path, { headers: { 'accept-language': 'de' } });
      expect(deAgain.headers['x-cache']).toBe('HIT');
      expect(deAgain.text).toBe('language de');
      expect(
        (await send(gateway, host, path, { headers: { 'accept-language': 'en' } })).headers['x-cache'],
      ).toBe('HIT');
      const frAgain = await send(gateway, host, path, { headers: { 'accept-language': 'fr' } });
      expect(frAgain.headers['x-cache']).toBe('MISS');
      expect(frAgain.text).toBe('language fr');
    });

    it('concurrent requests for one URL get their own variant, not the response another one fetched', async () => {
      const path = `/plain/lang-slow/${randomUUID()}`;
      const languages = Array.from({ length: 12 }, (_, i) => ['fr', 'en', 'de'][i % 3]!);
      const responses = await Promise.all(
        languages.map((language) => send(gateway, host, path, { headers: { 'accept-language': language } })),
      );
      expect(responses.map((response) => response.text)).toEqual(
        languages.map((language) => `language ${language}`),
      );
    });

    // Regression: the variant key read the Vary fields from the request's headers object by name,
    // inherited properties included: an origin's `Vary: Constructor` read `{}.constructor` (a function)
    // and threw, so no such response was ever stored.
    it('keys on a Vary field named like an inherited property (constructor) as on any other', async () => {
      const path = `/plain/inherited/${randomUUID()}`;
      const none = await send(gateway, host, path);
      expect(none.text).toBe('inherited none');
      const a = await send(gateway, host, path, { headers: { constructor: 'a' } });
      expect(a.text).toBe('inherited a');
      const noneAgain = await send(gateway, host, path);
      expect(noneAgain.headers['x-cache']).toBe('HIT');
      expect(noneAgain.text).toBe('inherited none');
      const aAgain = await send(gateway, host, path, { headers: { constructor: 'a' } });
      expect(aAgain.headers['x-cache']).toBe('HIT');
      expect(aAgain.text).toBe('inherited a');
    });

    // Regression: the variant was selected by the header's own name only, while CGI-style origins read
    // `Accept_Language` as Accept-Language: one client's answer filled the variant of everyone who sent none.
    it('regression: a header spelled with underscores selects its own variant, not the one without the header', async () => {
      const path = `/plain/cgi-lang/${randomUUID()}`;
      const attack = await send(gateway, host, path, { headers: { accept_language: 'de' } });
      expect(attack.text).toBe('language de');
      const victim = await send(gateway, host, path);
      expect(victim.text).toBe('language default');
      const keyed = `/keyed/${randomUUID()}`;
      expect((await send(gateway, host, keyed, { headers: { x_variant: 'evil' } })).text).toBe(
        'variant evil',
      );
      expect((await send(gateway, host, keyed)).text).toBe('variant default');
      // The request without the header is stored and served as before.
      const again = await send(gateway, host, path);
      expect(again.headers['x-cache']).toBe('HIT');
      expect(again.text).toBe('language default');
    });

    it('never stores a response with Vary: *', async () => {
      const path = `/plain/star/${randomUUID()}`;
      const first = await send(gateway, host, path);
      const second = await send(gateway, host, path);
      expect(second.headers['x-cache']).toBe('MISS');
      expect(second.text).not.toBe(first.text);
    });

    it('keys on the headers the origin receives: a header named in Connection cannot poison another variant', async () => {
      const path = `/keyed/${randomUUID()}`;
      // The gateway drops X-Variant before forwarding (Connection names it), so the origin answers the
      // default variant; that answer must not be stored as the `fr` variant.
      const attack = await send(gateway, host, path, {
        headers: { 'x-variant': 'fr', connection: 'keep-alive, x-variant' },
      });
      expect(attack.text).toBe('variant default');
      const victim = await send(gateway, host, path, { headers: { 'x-variant': 'fr' } });
      expect(victim.text).toBe('variant fr');
      // The attack's response is the default variant's, and is served as such.
      const plain = await send(gateway, host, path);
      expect(plain.headers['x-cache']).toBe('HIT');
      expect(plain.text).toBe('variant default');
    });
  });
}
