import { randomUUID } from 'node:crypto';
import { type CachePolicy, cachePolicy, routeConfig } from '@vantageedge/shared/domain/gateway-config';
import {
  type CacheRequest,
  sortedQuery,
  variantDigest,
  varySelector,
} from '@vantageedge/shared/gateway-policies/cache-key';
import {
  type CompiledCachePolicy,
  compileCachePolicy,
} from '@vantageedge/shared/gateway-policies/compile-cache-policy';
import { requestBypassReason } from '@vantageedge/shared/gateway-policies/request-bypass';
import { requestFreshness } from '@vantageedge/shared/gateway-policies/request-freshness';
import { countSearchParamsMade } from '@vantageedge/shared/testing/search-params-count';
import { describe, expect, it } from 'vitest';
import { decodeRecord, encodeRecord } from './cache-entry.js';
import { freshnessFor, responseVary, storageDecision, storedHeaders } from './cacheability.js';
import { clientCredentialHeaders } from './client-credentials.js';
import { reusable } from './request-directives.js';
import { responseTags } from './response-tags.js';
import { testCacheEntry } from './testing/test-cache-entry.js';

function compiled(
  policy: Partial<CachePolicy>,
  auth: 'public' | 'jwt_required' = 'public',
): CompiledCachePolicy {
  const route = routeConfig.parse({
    id: randomUUID(),
    origin_id: randomUUID(),
    path_pattern: '/*',
    auth_mode: auth,
    cache_policy: cachePolicy.parse(policy),
  });
  return compileCachePolicy(randomUUID(), route)!;
}

const request = (query = '', headers: CacheRequest['headers'] = {}, method = 'GET'): CacheRequest => ({
  method,
  path: '/a',
  query,
  headers,
});

describe('cache keys', () => {
  it('sorts query parameters by name; a repeated one keeps the order of its values', () => {
    expect(sortedQuery('b=2&a=1&a=0')).toBe('a=1&a=0&b=2');
    expect(sortedQuery('id=evil&b=2&id=1')).toBe('b=2&id=evil&id=1');
  });

  it('regression: repeated parameters in another order are another key (cache poisoning)', () => {
    // An origin reading the first `id` answers these two differently: one entry would serve the
    // answer to `id=evil` to the client that asked for `id=1`.
    const policy = compiled({});
    expect(variantDigest(policy, request('id=evil&id=1'), {})).not.toBe(
      variantDigest(policy, request('id=1&id=evil'), {}),
    );
    expect(variantDigest(policy, request('id=1&b=2&id=evil'), {})).toBe(
      variantDigest(policy, request('b=2&id=1&id=evil'), {}),
    );
  });

  // Regression (cache/auth review): the query was decoded and re-encoded before keying, so raw queries
  // the origin receives differently shared one entry (`?name=%E9` was answered with `?name=%E8`'s body:
  // both decode to U+FFFD).
  it('regression: raw queries an origin receives differently are different keys', () => {
    const policy = compiled({});
    const key = (query: string) => variantDigest(policy, request(query), {});
    const pairs: Array<[string, string]> = [
      ['name=%E9', 'name=%E8'],
      ['name=%FF', 'name=%EF%BF%BD'],
      ['file=%ZZ', 'file=%25ZZ'],
      ['debug', 'debug='],
      ['q=a+b', 'q=a%20b'],
      ['q=%41', 'q=A'],
      ['a+b=1', 'a%20b=1'],
      ['a=1&&b=2', 'a=1&b=2'],
      ['a=1&', 'a=1'],
      // Names that decode (or fold) alike keep their order: an origin reads them as one parameter.
      ['a=1&%61=2', '%61=2&a=1'],
      ['id=1&ID=2', 'ID=2&id=1'],
      ['a[]=1&a[0]=2', 'a[0]=2&a[]=1'],
      // `;` separates parameters for some origins: `b` is repeated in both.
      ['a=1;b=2&b=3', 'b=3&a=1;b=2'],
    ];
    for (const [first, second] of pairs) expect(key(first), `?${first} vs ?${second}`).not.toBe(key(second));
    // Plain names in another order are still one entry.
    expect(key('page=2&per_page=10&sort=name')).toBe(key('sort=name&page=2&per_page=10'));
  });

  it('length-prefixes parts so a crafted query cannot collide with a header variant', () => {
    const policy = compiled({ cache_key_pattern: 'path+query+headers', vary_headers: ['x-v'] });
    const crafted = variantDigest(policy, request('a=1', { 'x-v': '' }), {});
    const other = variantDigest(policy, request('', { 'x-v': 'a=1' }), {});
    expect(crafted).not.toBe(other);
  });

  // Regression: the parts after the host were told apart by their place alone, so a route whose key
  // changed shape (caller for query, one vary header for another) met the entries of its former shape.
  it('regression: what one shape of a route’s key holds never reads as another part of another shape', () => {
    const shared = compiled({ shared: true }, 'jwt_required');
    const perCallerPathOnly = compiled({ cache_key_pattern: 'path' }, 'jwt_required');
    expect(variantDigest(shared, request('user:clerk:victim'), { userId: 'clerk:attacker' })).not.toBe(
      variantDigest(perCallerPathOnly, request(), { userId: 'clerk:victim' }),
    );
    const byTier = compiled({ cache_key_pattern: 'path+query+headers', vary_headers: ['x-tier'] });
    const byPlan = compiled({ cache_key_pattern: 'path+query+headers', vary_headers: ['x-plan'] });
    expect(variantDigest(byTier, request('', { 'x-tier': 'gold' }), {})).not.toBe(
      variantDigest(byPlan, request('', { 'x-plan': 'gold' }), {}),
    );
  });

  it('keys authenticated routes by caller unless shareable; anonymous callers are not cached there', () => {
    const perCaller = compiled({}, 'jwt_required');
    expect(variantDigest(perCaller, request(), { userId: 'a' })).not.toBe(
      variantDigest(perCaller, request(), { userId: 'b' }),
    );
    expect(variantDigest(perCaller, request(), {})).toBeNull();
    const shared = compiled({ shared: true }, 'jwt_required');
    expect(variantDigest(shared, request(), { userId: 'a' })).toBe(
      variantDigest(shared, request(), { userId: 'b' }),
    );
  });

  // Regression (hostile/naive origin review): the key had neither scheme nor host, so an origin's
  // http→https redirect was served to https requests (a redirect loop for the TTL), and one host's
  // answer (a custom domain) to the tenant's other hosts (its platform subdomain).
  it('regression: the scheme and the host the tenant was found by are part of the key', () => {
    const policy = compiled({});
    const at = (scheme: string, host: string) => variantDigest(policy, { ...request(), scheme, host }, {});
    expect(at('http', 'acme.vantageedge.dev')).not.toBe(at('https', 'acme.vantageedge.dev'));
    expect(at('https', 'api.acme.example')).not.toBe(at('https', 'acme.vantageedge.dev'));
    expect(at('https', 'api.acme.example')).toBe(at('https', 'api.acme.example'));
    // Length-prefixed: a scheme/host split cannot be shifted into another one.
    expect(at('http', 'sa.b')).not.toBe(at('https', 'a.b'));
    // Path-only keys too.
    const pathOnly = compiled({ cache_key_pattern: 'path' });
    expect(variantDigest(pathOnly, { ...request(), scheme: 'http', host: 'a' }, {})).not.toBe(
      variantDigest(pathOnly, { ...request(), scheme: 'https', host: 'a' }, {}),
    );
  });

  it('disabled policies compile to null', () => {
    const route = routeConfig.parse({
      id: randomUUID(),
      origin_id: randomUUID(),
      path_pattern: '/*',
      auth_mode: 'public',
      cache_policy: cachePolicy.parse({ enabled: false }),
    });
    expect(compileCachePolicy(randomUUID(), route)).toBeNull();
  });
});

describe('what is cached', () => {
  const policy = compiled({ ttl_seconds: 60, max_body_bytes: 10 });
  const ok = (
    headers: Record<string, string> = {},
    status = 200,
    body: Buffer | null = Buffer.from('x'),
  ) => ({ status, headers, body });

  it('override mode: the policy TTL, capped by s-maxage, else max-age', () => {
    const override = compiled({ mode: 'override', ttl_seconds: 60, max_body_bytes: 10 });
    expect(freshnessFor(override, 'GET', ok({ 'cache-control': 'max-age=5' }))).toMatchObject({
      freshMs: 5_000,
    });
    expect(freshnessFor(override, 'GET', ok({ 'cache-control': 'max-age=5, s-maxage=7' }))).toMatchObject({
      freshMs: 7_000,
    });
    expect(freshnessFor(override, 'GET', ok({ 'cache-control': 'max-age=600' }))).toMatchObject({
      freshMs: 60_000,
    });
  });

  it('standard mode: the origin’s s-maxage, else max-age, else Expires − Date decide (RFC 9111 §4.2.1)', () => {
    expect(freshnessFor(policy, 'GET', ok({ 'cache-control': 'max-age=5' }))).toMatchObject({
      freshMs: 5_000,
    });
    expect(freshnessFor(policy, 'GET', ok({ 'cache-control': 'max-age=5, s-maxage=7' }))).toMatchObject({
      freshMs: 7_000,
    });
    // Longer than ttl_seconds: the origin wins.
    expect(freshnessFor(policy, 'GET', ok({ 'cache-control': 'max-age=600' }))).toMatchObject({
      freshMs: 600_000,
    });
    const date = new Date(Date.now()).toUTCString();
    const expires = new Date(Date.now() + 120_000).toUTCString();
    const fromExpires = freshnessFor(policy, 'GET', ok({ date, expires }));
    expect(fromExpires).toHaveProperty('freshMs');
    expect((fromExpires as { freshMs: number }).freshMs).toBeGreaterThanOrEqual(119_000);
    expect((fromExpires as { freshMs: number }).freshMs).toBeLessThanOrEqual(120_000);
    // An invalid Expires ("0") is in the past; without a validator nothing is worth keeping.
    expect(freshnessFor(policy, 'GET', ok({ expires: '0' }))).toEqual({ notStored: 'origin_max_age_0' });
  });

  it('invalid freshness information makes the response stale, in both modes (RFC 9111 §4.2.1, §5.3)', () => {
    const override = compiled({ mode: 'override', ttl_seconds: 60, max_body_bytes: 10 });
    const invalid = [
      { 'cache-control': 'max-age=1.5' },
      { 'cache-control': 'max-age=abc' },
      { 'cache-control': 'max-age=-1' },
      { 'cache-control': 'max-age' },
      { 'cache-control': 'max-age=0, max-age=60' },
      { 'cache-control': 'max-age=60, s-maxage=1.5' },
      { 'cache-control': 's-maxage=60, s-maxage=61' },
    ];
    for (const headers of invalid) {
      expect(freshnessFor(policy, 'GET', ok(headers)), headers['cache-control']).toEqual({
        notStored: 'origin_max_age_0',
      });
      expect(freshnessFor(override, 'GET', ok(headers)), headers['cache-control']).toEqual({
        notStored: 'origin_max_age_0',
      });
      // With a validator it is kept, to be revalidated before any use.
      expect(freshnessFor(policy, 'GET', ok({ ...headers, etag: '"v1"' }))).toMatchObject({ freshMs: 0 });
    }
    for (const expires of ['3000', '2999-01-01T00:00:00Z', '1 Jan 2999 00:00:00 GMT'])
      expect(freshnessFor(policy, 'GET', ok({ expires })), expires).toEqual({
        notStored: 'origin_max_age_0',
      });
    // The directive that counts decides: a valid s-maxage over an invalid max-age or Expires, a repeat of one value.
    expect(
      freshnessFor(policy, 'GET', ok({ 'cache-control': 's-maxage=7, max-age=abc', expires: '3000' })),
    ).toMatchObject({ freshMs: 7_000 });
    expect(freshnessFor(policy, 'GET', ok({ 'cache-control': 'max-age=5, max-age=5' }))).toMatchObject({
      freshMs: 5_000,
    });
    expect(freshnessFor(override, 'GET', ok({ 'cache-control': 'max-age=5, max-age=5' }))).toMatchObject({
      freshMs: 5_000,
    });
  });

  it('standard mode: heuristic freshness only for heuristically cacheable statuses, at most ttl_seconds', () => {
    const lenient = compiled({ ttl_seconds: 60, cacheable_statuses: [200, 302, 404] });
    expect(freshnessFor(lenient, 'GET', ok())).toMatchObject({ freshMs: 60_000 });
    expect(freshnessFor(lenient, 'GET', ok({}, 404))).toMatchObject({ freshMs: 60_000 });
    // 302 is not heuristically cacheable: only with explicit freshness.
    expect(freshnessFor(lenient, 'GET', ok({}, 302))).toEqual({ notStored: 'status' });
    expect(freshnessFor(lenient, 'GET', ok({ 'cache-control': 'max-age=9' }, 302))).toMatchObject({
      freshMs: 9_000,
    });
    // 10% of the time since Last-Modified (the library's rule), capped by ttl_seconds.
    const date = new Date().toUTCString();
    const tenMinutesAgo = new Date(Date.now() - 600_000).toUTCString();
    expect(freshnessFor(lenient, 'GET', ok({ date, 'last-modified': tenMinutesAgo }))).toMatchObject({
      freshMs: 60_000,
    });
    const oneMinuteAgo = new Date(Date.now() - 60_000).toUTCString();
    const heuristic = freshnessFor(lenient, 'GET', ok({ date, 'last-modified': oneMinuteAgo }));
    expect((heuristic as { freshMs: number }).freshMs).toBeLessThanOrEqual(6_000);
    // Turned off: no explicit freshness, nothing to revalidate with → not stored.
    const explicitOnly = compiled({ heuristic_freshness: false });
    expect(freshnessFor(explicitOnly, 'GET', ok())).toEqual({ notStored: 'origin_max_age_0' });
  });

  it('standard mode: any final status the policy lists is stored with explicit freshness (RFC 9111 §3)', () => {
    // An origin's short-lived error or maintenance page, listed by the tenant to spare the origin.
    const listed = [202, 299, 302, 303, 307, 400, 403, 429, 500, 502, 503, 504, 599];
    const errors = compiled({ ttl_seconds: 60, cacheable_statuses: listed });
    for (const status of listed) {
      expect(
        freshnessFor(errors, 'GET', ok({ 'cache-control': 'max-age=5' }, status)),
        String(status),
      ).toMatchObject({ freshMs: 5_000 });
      expect(
        freshnessFor(errors, 'GET', ok({ 'cache-control': 's-maxage=5' }, status)),
        String(status),
      ).toMatchObject({ freshMs: 5_000 });
      expect(
        freshnessFor(errors, 'GET', ok({ expires: new Date(Date.now() + 60_000).toUTCString() }, status)),
        String(status),
      ).toHaveProperty('freshMs');
      // Without explicit freshness only `public` lets them be stored (none is heuristically cacheable).
      expect(freshnessFor(errors, 'GET', ok({}, status)), String(status)).toEqual({ notStored: 'status' });
      expect(
        freshnessFor(errors, 'GET', ok({ 'cache-control': 'public' }, status)),
        String(status),
      ).toMatchObject({ freshMs: 60_000 });
      expect(
        freshnessFor(errors, 'GET', ok({ 'cache-control': 'max-age=5, private' }, status)),
        String(status),
      ).toEqual({ notStored: 'origin_cache_control' });
    }
  });

  it('standard mode: no-cache is stored only with a validator and always revalidated; Age counts', () => {
    expect(freshnessFor(policy, 'GET', ok({ 'cache-control': 'no-cache' }))).toEqual({
      notStored: 'origin_cache_control',
    });
    expect(freshnessFor(policy, 'GET', ok({ 'cache-control': 'no-cache', etag: '"a"' }))).toMatchObject({
      freshMs: 0,
      mustRevalidate: true,
    });
    expect(freshnessFor(policy, 'GET', ok({ 'cache-control': 'max-age=30', age: '10' }))).toMatchObject({
      freshMs: 30_000,
      ageMs: 10_000,
    });
    for (const directive of ['must-revalidate', 'proxy-revalidate'])
      expect(
        freshnessFor(policy, 'GET', ok({ 'cache-control': `max-age=30, ${directive}, stale-if-error=60` })),
        directive,
      ).toMatchObject({ freshMs: 30_000, mustRevalidate: true, staleIfErrorMs: 0 });
    expect(
      freshnessFor(
        policy,
        'GET',
        ok({ 'cache-control': 'max-age=30, stale-while-revalidate=5, stale-if-error=9' }),
      ),
    ).toMatchObject({ staleWhileRevalidateMs: 5_000, staleIfErrorMs: 9_000, mustRevalidate: false });
    expect(freshnessFor(policy, 'GET', ok({ 'cache-control': 'max-age=30, immutable' }))).toMatchObject({
      immutable: true,
    });
  });

  it('refuses no-store, private, Set-Cookie, other statuses, large bodies and HEAD', () => {
    expect(freshnessFor(policy, 'GET', ok({ 'cache-control': 'no-store' }))).toEqual({
      notStored: 'origin_cache_control',
    });
    expect(freshnessFor(policy, 'GET', ok({ 'cache-control': 'private' }))).toEqual({
      notStored: 'origin_cache_control',
    });
    expect(freshnessFor(policy, 'GET', ok({ 'set-cookie': 'a=1' }))).toEqual({ notStored: 'set_cookie' });
    expect(freshnessFor(policy, 'GET', ok({}, 500))).toEqual({ notStored: 'status' });
    expect(freshnessFor(policy, 'GET', ok({}, 200, Buffer.alloc(11)))).toEqual({
      notStored: 'body_too_large',
    });
    expect(freshnessFor(policy, 'HEAD', ok())).toEqual({ notStored: 'method' });
  });

  // Regression (origin responses review): directive names are case-insensitive (RFC 9111 §5.2), but
  // standard mode let http-cache-semantics decide storability, and it compares them as written:
  // `Cache-Control: Private, max-age=60` was stored and one user's page served to every client.
  it('reads directive names in any case: Private, No-Store and S-MaxAge are private, no-store and s-maxage', () => {
    for (const cacheControl of ['Private, max-age=60', 'NO-STORE, max-age=60', 'max-age=60, PRIVATE="x"'])
      expect(freshnessFor(policy, 'GET', ok({ 'cache-control': cacheControl })), cacheControl).toEqual({
        notStored: 'origin_cache_control',
      });
    expect(freshnessFor(policy, 'GET', ok({ 'cache-control': 'Max-Age=60, S-MaxAge=5' }))).toMatchObject({
      freshMs: 5_000,
    });
  });

  // Regression: an origin's Clear-Site-Data was stored with the entry and replayed on every HIT, to
  // every client of the URL.
  // Regression (cache/auth review): cacheable_statuses accepted 206 and 304, so in override mode a Range
  // request's part, or a conditional request's 304, was stored and served to every client. A snapshot
  // written before the control plane refused them must be safe too.
  it('regression: never stores a status that is not a complete response, whatever cacheable_statuses says', () => {
    const statuses = [100, 101, 103, 200, 206, 304, 412, 416];
    for (const mode of ['standard', 'override'] as const) {
      const lenient = compiled({ mode, ttl_seconds: 60, cacheable_statuses: statuses });
      for (const status of [100, 101, 103, 206, 304, 412, 416]) {
        const headers = { 'cache-control': 'max-age=60', etag: '"v1"', 'content-range': 'bytes 0-2/30' };
        expect(freshnessFor(lenient, 'GET', ok(headers, status)), `${mode} ${status}`).toEqual({
          notStored: 'status',
        });
        expect(storageDecision(lenient, 'GET', status, headers), `${mode} ${status}`).toEqual({
          notStored: 'status',
        });
      }
      expect(freshnessFor(lenient, 'GET', ok({ 'cache-control': 'max-age=60' }))).toHaveProperty('freshMs');
    }
  });

  it('never stores a response that tells the browser to clear its data (Clear-Site-Data)', () => {
    for (const directives of ['"cookies"', '"cache"', '"*"'])
      expect(freshnessFor(policy, 'GET', ok({ 'clear-site-data': directives }))).toEqual({
        notStored: 'clear_site_data',
      });
  });

  it('never stores a stream of server-sent events, whatever its Cache-Control, in either mode', () => {
    for (const mode of ['override', 'standard'] as const) {
      const caching = compiled({ mode, ttl_seconds: 60 });
      for (const type of ['text/event-stream', 'Text/Event-Stream; charset=utf-8', ' text/event-stream ']) {
        const headers = { 'content-type': type, 'cache-control': 'public, max-age=60', etag: '"v1"' };
        expect(storageDecision(caching, 'GET', 200, headers), `${mode} ${type}`).toEqual({
          notStored: 'event_stream',
        });
      }
      const json = { 'content-type': 'application/json', 'cache-control': 'public, max-age=60' };
      expect(storageDecision(caching, 'GET', 200, json)).toHaveProperty('freshMs');
    }
  });

  it('bypasses the cache for a client asking for server-sent events', () => {
    for (const mode of ['override', 'standard'] as const) {
      const caching = compiled({ mode });
      for (const accept of ['text/event-stream', 'application/json, Text/Event-Stream;q=0.5'])
        expect(requestBypassReason(caching, request('', { accept })), accept).toBe('event_stream');
      for (const accept of ['text/event-stream;q=0', 'application/json', '*/*', 'text/event-streams'])
        expect(requestBypassReason(caching, request('', { accept })), accept).toBeNull();
    }
  });

  it('reads only the header fields a request or response carries, whatever names the policy gives', () => {
    // Header objects inherit from Object.prototype: `constructor` is there on every request.
    const policy = compiled({
      mode: 'override',
      bypass: { headers: ['Constructor'], cookies: [], query_params: [] },
      tag_headers: ['constructor'],
    });
    expect(requestBypassReason(policy, request())).toBeNull();
    expect(requestBypassReason(policy, request('', { constructor: '1' }))).toBe('bypass_header');
    expect(responseTags({ 'cache-tag': 'a' }, policy.tagHeaders)).toEqual([]);
    expect(responseTags({ constructor: 'a b' }, policy.tagHeaders)).toEqual(['a', 'b']);
  });

  it('bypass rules', () => {
    const bypassing = compiled({
      mode: 'override',
      bypass: { headers: ['X-Debug'], cookies: ['preview'], query_params: ['nocache'] },
    });
    // Standard mode: a client's no-cache asks for revalidation (request-directives.ts); no-store bypasses.
    const standard = compiled({});
    expect(requestBypassReason(standard, request('', { 'cache-control': 'no-cache' }))).toBeNull();
    expect(requestBypassReason(standard, request('', { 'cache-control': 'no-store' }))).toBe(
      'request_no_store',
    );
    expect(requestBypassReason(bypassing, request())).toBeNull();
    expect(requestBypassReason(bypassing, request('', {}, 'DELETE'))).toBe('method');
    expect(requestBypassReason(bypassing, request('', { 'cache-control': 'no-cache' }))).toBe(
      'request_no_cache',
    );
    expect(requestBypassReason(bypassing, request('', { 'x-debug': '1' }))).toBe('bypass_header');
    expect(requestBypassReason(bypassing, request('', { cookie: 'a=b; preview=1' }))).toBe('bypass_cookie');
    expect(requestBypassReason(bypassing, request('x=1&nocache'))).toBe('bypass_query');
  });

  // PHP, Rails and Express (qs) read `preview[0]=1` and `preview=1` as the `preview` that `preview[]`
  // names: a route keyed on its path would otherwise store the draft they answer for every client.
  it('a bypass parameter given with [] bypasses on every spelling origins read as its name', () => {
    const bypassing = compiled({
      mode: 'override',
      bypass: { headers: [], cookies: [], query_params: ['preview[]'] },
    });
    for (const query of ['preview[]=1', 'preview[0]=1', 'preview[x]=1', 'preview=1', 'a=1;Preview=1']) {
      expect(requestBypassReason(bypassing, request(query)), query).toBe('bypass_query');
    }
    expect(requestBypassReason(bypassing, request('previews[]=1&preview_id=2'))).toBeNull();
  });

  // node's URLSearchParams decodes a name that is not UTF-8 by throwing, and catching, a URIError first
  // (≈ 8 µs): a query of 940 such names cost a replica ≈ 7 ms on a route bypassing on a parameter.
  it('reads a query of names that are not UTF-8 for a bypass parameter without URLSearchParams', () => {
    const bypassing = compiled({
      mode: 'override',
      bypass: { headers: [], cookies: [], query_params: ['nocache'] },
    });
    const names = Array.from({ length: 939 }, (_, i) => `%FF${i}=1`).join('&');
    const made = countSearchParamsMade();
    expect(requestBypassReason(bypassing, request(`${names};NoCache`))).toBe('bypass_query');
    expect(requestBypassReason(bypassing, request(`${names}&nocachex`))).toBeNull();
    expect(made.made).toBe(0);
  });

  it('entries survive encoding with binary bodies', () => {
    const entry = {
      kind: 'response' as const,
      status: 203,
      headers: [['content-type', 'application/octet-stream']] as const,
      body: Buffer.from([0, 255, 10]),
      storedAt: 1,
      freshMs: 2,
      staleWhileRevalidateMs: 3,
      staleIfErrorMs: 4,
      mustRevalidate: true,
      immutable: true,
      tags: ['product-1', 'catalog'],
      varyOn: [],
    };
    expect(decodeRecord(encodeRecord(entry))).toEqual({
      ...entry,
      headers: [['content-type', 'application/octet-stream']],
    });
  });

  // Regression: an entry stored before a host-bound header was dropped from origin answers kept it in
  // Redis, and every HIT sent it until the entry expired: Alt-Svc points browsers at endpoints the tenant
  // may no longer hold; NEL reports the host's later requests to the endpoint it names; Report-To's
  // endpoint groups are kept for the host and reported to.
  it.each([
    ['alt-svc', 'h3=":443"; ma=86400'],
    ['nel', '{"report_to":"collector","max_age":31536000}'],
    ['report-to', '{"group":"default","max_age":31536000,"endpoints":[{"url":"https://r.test/"}]}'],
  ] as const)('reads an entry stored with a %s header without it', (name, value) => {
    const stored = testCacheEntry({
      headers: [
        ['content-type', 'text/plain'],
        [name, value],
      ],
      storedAt: 1,
      freshMs: 2,
    });
    expect(decodeRecord(encodeRecord(stored))).toMatchObject({ headers: [['content-type', 'text/plain']] });
  });
});

describe('stored headers', () => {
  it('keeps only origin headers safe to replay: no hop-by-hop, per-response or per-request ones', () => {
    const kept = storedHeaders(
      {
        'content-type': 'text/plain',
        etag: '"1"',
        'cache-control': 'max-age=60',
        vary: 'accept',
        connection: 'keep-alive, x-hop',
        'x-hop': '1',
        'keep-alive': 'timeout=5',
        'content-length': '12',
        age: '4',
        'x-cache': 'HIT',
        'x-request-id': 'abc',
        traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
        tracestate: 'a=1',
        ratelimit: '"route";r=1;t=1',
        'ratelimit-policy': '"route";q=2;w=1',
        'retry-after': '3',
        'x-ratelimit-remaining': '5',
        'server-timing': 'db;dur=1',
        'x-vantageedge-user-id': 'user_1',
        'set-cookie': ['a=1'],
      },
      false,
    );
    expect(kept.map(([name]) => name).sort()).toEqual(['cache-control', 'content-type', 'etag', 'vary']);
    expect(storedHeaders({ 'set-cookie': ['a=1'] }, true)).toEqual([['set-cookie', ['a=1']]]);
  });
});

/**
 * Regression tests: an origin's repeated header lines reach the cache as arrays (undici), and
 * freshnessFor/storedHeaders called string methods on them; inside the fire-and-forget store that
 * rejection was unhandled and took the gateway process down.
 */
describe('header lines repeated by the origin', () => {
  const policy = compiled({ ttl_seconds: 60 });
  const withHeaders = (headers: Record<string, string | string[]>) =>
    ({ status: 200, headers, body: Buffer.from('ok') }) as Parameters<typeof freshnessFor>[2];

  it('Cache-Control on several lines is one directive list', () => {
    expect(
      freshnessFor(policy, 'GET', withHeaders({ 'cache-control': ['public', 'max-age=5'] })),
    ).toMatchObject({
      freshMs: 5_000,
    });
    expect(freshnessFor(policy, 'GET', withHeaders({ 'cache-control': ['max-age=30', 'no-store'] }))).toEqual(
      { notStored: 'origin_cache_control' },
    );
  });

  it('Vary: * on any line prevents storing; Connection on several lines still names hop-by-hop headers', () => {
    expect(freshnessFor(policy, 'GET', withHeaders({ vary: ['accept', '*'] }))).toEqual({
      notStored: 'vary_star',
    });
    const kept = storedHeaders(
      { connection: ['keep-alive', 'x-hop'], 'x-hop': '1', 'content-type': 'text/plain' } as never,
      false,
    );
    expect(kept).toEqual([['content-type', 'text/plain']]);
  });

  it('a request with repeated Cache-Control, Pragma or Cookie lines is read as one list', () => {
    const bypassing = compiled({
      mode: 'override',
      bypass: { headers: [], cookies: ['preview'], query_params: [] },
    });
    const repeated = (headers: Record<string, string[]>) => request('', headers as never);
    expect(requestBypassReason(bypassing, repeated({ 'cache-control': ['max-age=0', 'no-cache'] }))).toBe(
      'request_no_cache',
    );
    expect(requestBypassReason(bypassing, repeated({ pragma: ['x', 'no-cache'] }))).toBe('request_no_cache');
    expect(requestBypassReason(bypassing, repeated({ cookie: ['a=1', 'preview=1'] }))).toBe('bypass_cookie');
  });
});

/**
 * Cases of the public HTTP cache test suite (cache-tests.fyi: age-parse, heuristic-freshness,
 * expires-parse) that a shared cache's users notice: how long a response is served without asking the
 * origin again.
 */
describe('Age, Last-Modified, Expires and Date as a shared cache reads them', () => {
  const policy = compiled({ ttl_seconds: 60 });
  const withHeaders = (headers: Record<string, string | string[]>) =>
    ({ status: 200, headers, body: Buffer.from('ok') }) as Parameters<typeof freshnessFor>[2];
  const httpDate = (at: number) => new Date(at).toUTCString();

  it('an Age on several lines or as a list counts its first member (RFC 9111 §5.1), not as no Age at all', () => {
    const aged = (age: string | string[]) =>
      freshnessFor(policy, 'GET', withHeaders({ 'cache-control': 'max-age=9000', age }));
    expect(aged('7200, 7200')).toMatchObject({ ageMs: 7_200_000 });
    expect(aged('7200,0')).toMatchObject({ ageMs: 7_200_000 });
    expect(aged(['7200', '0'])).toMatchObject({ ageMs: 7_200_000 });
    expect(aged('0, 7200')).toMatchObject({ ageMs: 0 });
    // An upstream cache's copy already older than its lifetime is stale here too.
    expect(
      freshnessFor(policy, 'GET', withHeaders({ 'cache-control': 'max-age=3600', age: ['7200', '7200'] })),
    ).toEqual({ notStored: 'origin_max_age_0' });
    // A first member that is no delta-seconds is ignored, as one Age that is none.
    for (const age of ['abc', '-7200', '7200.0', 'abc, 7200'])
      expect(aged(age), age).toMatchObject({ ageMs: 0 });
  });

  it('heuristic freshness is 10 % of Date − Last-Modified: none for a resource modified at its Date or later', () => {
    const now = Date.now();
    const date = httpDate(now);
    for (const lastModified of [date, httpDate(now + 3_600_000)])
      expect(
        freshnessFor(policy, 'GET', withHeaders({ date, 'last-modified': lastModified })),
        lastModified,
      ).toMatchObject({ freshMs: 0 });
    // Modified 100 s before its Date: 10 s; a Last-Modified that is no HTTP-date is no Last-Modified.
    expect(
      freshnessFor(policy, 'GET', withHeaders({ date, 'last-modified': httpDate(now - 100_000) })),
    ).toMatchObject({ freshMs: 10_000 });
    expect(freshnessFor(policy, 'GET', withHeaders({ date, 'last-modified': 'yesterday' }))).toMatchObject({
      freshMs: 60_000,
    });
  });

  it('Expires − Date reads both as HTTP-dates: an RFC 850 year as RFC 9110 says, a Date that is none as absent', () => {
    // RFC 9110 §5.6.7: a two-digit year more than 50 years ahead is in the past century, else in this one.
    const twoDigitYear = (new Date().getUTCFullYear() + 24) % 100;
    const expires = `Thursday, 18-Aug-${String(twoDigitYear).padStart(2, '0')} 02:01:18 GMT`;
    const farAhead = freshnessFor(policy, 'GET', withHeaders({ date: httpDate(Date.now()), expires }));
    expect((farAhead as { freshMs: number }).freshMs).toBeGreaterThan(20 * 365 * 86_400_000);
    // A Date that is no HTTP-date (`1`, which Date.parse reads as 2001) is the time of receipt.
    const inTwoMinutes = freshnessFor(
      policy,
      'GET',
      withHeaders({ date: '1', expires: httpDate(Date.now() + 120_000) }),
    );
    expect((inTwoMinutes as { freshMs: number }).freshMs).toBeGreaterThan(115_000);
    expect((inTwoMinutes as { freshMs: number }).freshMs).toBeLessThanOrEqual(120_000);
  });
});

describe('shared-cache storage rules (RFC 9111)', () => {
  const ok = (headers: Record<string, string | string[]> = {}) => ({
    status: 200,
    headers,
    body: Buffer.from('x'),
  });

  it('stores a response to a request with Authorization on a public route only with the origin’s consent', () => {
    const publicRoute = compiled({ ttl_seconds: 60 });
    const authorized = { authorized: true, withCookie: false };
    expect(freshnessFor(publicRoute, 'GET', ok(), authorized)).toEqual({ notStored: 'authorization' });
    expect(freshnessFor(publicRoute, 'GET', ok({ 'cache-control': 'max-age=30' }), authorized)).toEqual({
      notStored: 'authorization',
    });
    for (const consent of ['public', 's-maxage=30', 'must-revalidate', 'max-age=9, PUBLIC'])
      expect(
        freshnessFor(publicRoute, 'GET', ok({ 'cache-control': consent }), authorized),
        consent,
      ).toHaveProperty('freshMs');
    // Consent does not override no-store / private.
    expect(freshnessFor(publicRoute, 'GET', ok({ 'cache-control': 'public, no-store' }), authorized)).toEqual(
      {
        notStored: 'origin_cache_control',
      },
    );
    // Authenticated routes key per caller (or were declared shareable): the rule does not apply.
    expect(freshnessFor(compiled({}, 'jwt_required'), 'GET', ok(), authorized)).toHaveProperty('freshMs');
    expect(freshnessFor(compiled({ shared: true }, 'jwt_required'), 'GET', ok(), authorized)).toHaveProperty(
      'freshMs',
    );
  });

  // Regression (cache poisoning/deception review): a public route's key is shared by every caller, and a
  // browser's Cookie personalises the origin's answer as much as Authorization does. A response to a
  // request with a session cookie that said nothing about caching was stored heuristically and served
  // to every other client (`/account;x.css` made a victim's own page land in the cache for the attacker).
  it('regression: stores a response to a request with Cookie on a public route only with the origin’s consent', () => {
    const publicRoute = compiled({ ttl_seconds: 60 });
    const withCookie = { authorized: false, withCookie: true };
    expect(freshnessFor(publicRoute, 'GET', ok(), withCookie)).toEqual({ notStored: 'cookie' });
    expect(freshnessFor(publicRoute, 'GET', ok({ 'cache-control': 'max-age=30' }), withCookie)).toEqual({
      notStored: 'cookie',
    });
    const forced = compiled({ ttl_seconds: 60, mode: 'override' });
    expect(freshnessFor(forced, 'GET', ok(), withCookie)).toEqual({ notStored: 'cookie' });
    for (const consent of ['public', 's-maxage=30', 'must-revalidate', 'max-age=9, PUBLIC'])
      expect(
        freshnessFor(publicRoute, 'GET', ok({ 'cache-control': consent }), withCookie),
        consent,
      ).toHaveProperty('freshMs');
    // An answer keyed on the cookie (the origin's Vary, or the policy's vary_headers) is no one else's.
    expect(
      freshnessFor(publicRoute, 'GET', ok({ vary: 'Accept-Encoding, Cookie' }), withCookie),
    ).toHaveProperty('freshMs');
    const keyedOnCookie = compiled({
      ttl_seconds: 60,
      cache_key_pattern: 'path+query+headers',
      vary_headers: ['Cookie'],
    });
    expect(freshnessFor(keyedOnCookie, 'GET', ok(), withCookie)).toHaveProperty('freshMs');
    // Authenticated routes key per caller (or were declared shareable): the rule does not apply.
    expect(freshnessFor(compiled({}, 'jwt_required'), 'GET', ok(), withCookie)).toHaveProperty('freshMs');
  });

  // Regression (cache poisoning/deception review): a public route's origin may check callers by a
  // credential header of its own (X-Auth-Token, Api-Key, …); its answer to one caller was stored for all.
  it('regression: stores a response to a request with a credential header on a public route only with the origin’s consent or a key on it', () => {
    const publicRoute = compiled({ ttl_seconds: 60 });
    const withToken = { authorized: false, withCookie: false, credentialHeaders: ['x-auth-token'] };
    expect(freshnessFor(publicRoute, 'GET', ok(), withToken)).toEqual({ notStored: 'credential_header' });
    expect(freshnessFor(compiled({ ttl_seconds: 60, mode: 'override' }), 'GET', ok(), withToken)).toEqual({
      notStored: 'credential_header',
    });
    for (const consent of ['public', 's-maxage=30', 'must-revalidate'])
      expect(
        freshnessFor(publicRoute, 'GET', ok({ 'cache-control': consent }), withToken),
        consent,
      ).toHaveProperty('freshMs');
    expect(freshnessFor(publicRoute, 'GET', ok({ vary: 'X-Auth-Token' }), withToken)).toHaveProperty(
      'freshMs',
    );
    expect(freshnessFor(publicRoute, 'GET', ok({ vary: 'Cookie' }), withToken)).toEqual({
      notStored: 'credential_header',
    });
    const keyedOnToken = compiled({
      ttl_seconds: 60,
      cache_key_pattern: 'path+query+headers',
      vary_headers: ['X-Auth-Token'],
    });
    expect(freshnessFor(keyedOnToken, 'GET', ok(), withToken)).toHaveProperty('freshMs');
    expect(freshnessFor(compiled({}, 'jwt_required'), 'GET', ok(), withToken)).toHaveProperty('freshMs');
  });

  it('counts the client’s credential headers as origins read them, not the gateway’s or the route’s', () => {
    expect(
      clientCredentialHeaders(
        {
          x_auth_token: 'a',
          'api-key': 'b',
          'x-vault-token': 'c',
          authorization: 'Bearer d',
          cookie: 'e=1',
          'x-api-key': 'f',
          'accept-language': 'de',
          'x-functions-key': 'g',
        },
        ['x-functions-key'],
      ),
    ).toEqual(['x-auth-token', 'api-key', 'x-vault-token']);
    expect(clientCredentialHeaders({ accept: '*/*' }, undefined)).toEqual([]);
  });

  it('reads Vary as sorted lower-case names, without hop-by-hop fields; * on any line means never stored', () => {
    expect(responseVary({ vary: 'Accept-Language, accept-encoding, Accept-Language' })).toEqual([
      'accept-encoding',
      'accept-language',
    ]);
    expect(responseVary({ vary: 'TE, Accept' })).toEqual(['accept']);
    expect(responseVary({})).toEqual([]);
    expect(responseVary({ vary: ['accept', '*'] } as never)).toBe('*');
    expect(freshnessFor(compiled({}), 'GET', ok({ vary: 'accept, *' }))).toEqual({ notStored: 'vary_star' });
  });

  // Each lookup of a stored URL reads every field its Vary names from the request: an origin varying on
  // 2,000 names made every request for that URL (a HIT too) cost ≈300 µs of a replica's event loop.
  it('never stores a response varying on more than 32 fields', () => {
    const fields = (count: number) => Array.from({ length: count }, (_, i) => `x-field-${i}`).join(', ');
    expect(freshnessFor(compiled({}), 'GET', ok({ vary: fields(33) }))).toEqual({
      notStored: 'vary_too_many_fields',
    });
    expect(freshnessFor(compiled({}), 'GET', ok({ vary: fields(32) }))).not.toHaveProperty('notStored');
  });

  it('reads an Access-Control-Allow-Origin naming a site as varying on Origin, whatever the Vary says', () => {
    const site = { 'access-control-allow-origin': 'https://app.example.com' };
    expect(responseVary(site)).toEqual(['origin']);
    expect(responseVary({ ...site, vary: 'Accept, Origin' })).toEqual(['accept', 'origin']);
    expect(responseVary({ 'access-control-allow-origin': 'null' })).toEqual(['origin']);
    expect(responseVary({ 'access-control-allow-origin': '*', vary: 'Accept' })).toEqual(['accept']);
  });

  // Regression (hostile/naive origin review): the variant was selected by the client's value of a
  // header the gateway writes toward the origin (X-Forwarded-Proto, X-Real-IP, …): absent for nearly
  // every client, so one client's answer (an http→https redirect, a per-IP page) was served to all.
  it('regression: never stores a response that varies on a header the gateway writes or drops', () => {
    for (const vary of [
      'X-Forwarded-Proto',
      'accept-encoding, X-Real-IP',
      'X-Forwarded-For',
      'X-Forwarded-Host',
      'X-Forwarded-Port',
      'X-Forwarded-Prefix',
      'Forwarded',
      'X-Request-Id',
      'X-VantageEdge-User-Id',
      'X-Vantageedge-Tenant-Id',
      'True-Client-IP',
      'X-API-Key',
      // Regression: spelled with `_` or `.`, as CGI-style origins read X-Real-IP (the client's such
      // lines never reach the origin), it was stored.
      'X_Real_IP',
      'X.Real.IP',
      'x_forwarded.proto',
      'X_VantageEdge_User_Id',
      'true_client_ip',
    ]) {
      for (const mode of ['standard', 'override'] as const)
        expect(
          freshnessFor(compiled({ mode }), 'GET', ok({ vary, 'cache-control': 'max-age=60' })),
          vary,
        ).toEqual({
          notStored: 'vary_gateway_header',
        });
    }
    // Headers the origin gets as the client sent them (or, Host, the same for every client of the
    // route, while the key carries the client's host) still vary as before.
    for (const vary of ['Accept-Encoding', 'Accept-Language, Origin', 'Host', 'Authorization', 'Cookie'])
      expect(
        freshnessFor(compiled({}), 'GET', ok({ vary, 'cache-control': 'max-age=60' })),
        vary,
      ).toHaveProperty('freshMs');
  });

  // Regression: the client's value went through /\s*,\s*/, which backtracks over every run of spaces
  // without a comma (quadratic): one 15,000-space header held a replica's event loop for 170 ms. Linear
  // work reads 160,000 spaces in about a millisecond; the quadratic form took 8 s.
  it('reads a long run of spaces in a client header in linear time', () => {
    const started = performance.now();
    varySelector(['accept-language'], { 'accept-language': `a${' '.repeat(160_000)}b` });
    expect(performance.now() - started).toBeLessThan(500);
  });

  it('selects a variant by the named header values: absent differs from empty, list whitespace does not matter', () => {
    const names = ['accept-encoding'];
    expect(varySelector(names, {})).not.toBe(varySelector(names, { 'accept-encoding': '' }));
    expect(varySelector(names, { 'accept-encoding': 'gzip, br' })).toBe(
      varySelector(names, { 'accept-encoding': 'gzip ,br' }),
    );
    expect(varySelector(names, { 'accept-encoding': 'gzip' })).not.toBe(
      varySelector(names, { 'accept-encoding': 'br' }),
    );
    expect(varySelector(names, { 'accept-encoding': ' gzip  , br ' })).toBe(
      varySelector(names, { 'accept-encoding': 'gzip,br' }),
    );
    // A value cannot imitate another field's part.
    expect(varySelector(['a', 'b'], { a: 'x;1:b=1:y', b: undefined } as never)).not.toBe(
      varySelector(['a', 'b'], { a: 'x', b: 'y' }),
    );
  });
});

/**
 * Regression: a delta-seconds value longer than 10 digits was taken as absent, so an absurd Age made a
 * response new, and an absurd stale window or client max-stale was ignored. RFC 9111 §1.2.2: a value
 * too large to represent counts as 2^31 seconds.
 */
describe('delta-seconds values too large to represent', () => {
  const ok = (headers: Record<string, string>) => ({ status: 200, headers, body: Buffer.from('x') });
  const twoToThe31Ms = 2 ** 31 * 1000;

  it("the origin's stale windows count as 2^31 seconds, not as absent", () => {
    const decision = freshnessFor(
      compiled({}),
      'GET',
      ok({
        'cache-control': 'max-age=60, stale-while-revalidate=99999999999, stale-if-error=1' + '0'.repeat(30),
      }),
    );
    expect(decision).toMatchObject({ staleWhileRevalidateMs: twoToThe31Ms, staleIfErrorMs: twoToThe31Ms });
  });

  it("freshness from a far Expires is bounded like the origin's max-age", () => {
    const decision = freshnessFor(compiled({}), 'GET', ok({ expires: 'Fri, 31 Dec 9999 23:59:59 GMT' }));
    expect(decision).toMatchObject({ freshMs: twoToThe31Ms });
  });

  it("a client's max-stale too large to represent accepts a stale entry", () => {
    const wanted = requestFreshness(compiled({}), { 'cache-control': 'max-stale=99999999999' });
    const stale = testCacheEntry({ storedAt: Date.now() - 120_000, freshMs: 60_000 });
    expect(reusable(stale, Date.now(), wanted)).toBe('STALE');
  });

  it('max-age=0 revalidates an entry stored this very millisecond; max-age=N accepts an age up to N s', () => {
    const at = Date.now();
    const justStored = testCacheEntry({ storedAt: at, freshMs: 600_000 });
    const reload = requestFreshness(compiled({}), { 'cache-control': 'max-age=0' });
    expect(reusable(justStored, at, reload)).toBeNull();
    const tenSeconds = requestFreshness(compiled({}), { 'cache-control': 'max-age=10' });
    expect(reusable(testCacheEntry({ storedAt: at - 10_000, freshMs: 600_000 }), at, tenSeconds)).toBe('HIT');
    expect(reusable(testCacheEntry({ storedAt: at - 10_001, freshMs: 600_000 }), at, tenSeconds)).toBeNull();
  });

  it('values that are not delta-seconds stay absent', () => {
    for (const value of ['max-stale=1e20', 'min-fresh=-5', 'max-age=1.5'])
      expect(requestFreshness(compiled({}), { 'cache-control': value }), value).toBeNull();
  });
});

/**
 * Regression (cache poisoning review): PHP, Rack and WSGI servers read `Accept_Language` as
 * Accept-Language (both are HTTP_ACCEPT_LANGUAGE to them), while the key read the header's own name only:
 * a client's underscore spelling changed the origin's answer and filled the entry of everyone who sent
 * no such header, and evaded a bypass header.
 */
describe('a header spelled with underscores, as CGI-style origins read it', () => {
  it('selects another variant than a request without the header', () => {
    const names = ['accept-language'];
    expect(varySelector(names, { accept_language: 'de' })).not.toBe(varySelector(names, {}));
    expect(varySelector(names, { 'accept-language': 'en', accept_language: 'de' })).not.toBe(
      varySelector(names, { 'accept-language': 'en' }),
    );
    // A value cannot imitate the underscore spelling's part.
    expect(varySelector(names, { accept_language: 'de' })).not.toBe(
      varySelector(names, { 'accept-language': 'accept_language: de' }),
    );
    // An origin varying on an underscore spelling reads the dash spelling too.
    expect(varySelector(['x_tier'], { 'x-tier': 'gold' })).not.toBe(varySelector(['x_tier'], {}));
    // The spellings are read in one order whatever order they arrived in.
    expect(varySelector(names, { 'accept-language': 'en', accept_language: 'de' })).toBe(
      varySelector(names, { accept_language: 'de', 'accept-language': 'en' }),
    );
  });

  it('is part of the key for a policy’s vary_headers', () => {
    const policy = compiled({ cache_key_pattern: 'path+query+headers', vary_headers: ['X-Variant'] });
    expect(variantDigest(policy, request('', { x_variant: 'evil' }), {})).not.toBe(
      variantDigest(policy, request(), {}),
    );
  });

  it('bypasses like the bypass header it spells', () => {
    const bypassing = compiled({ bypass: { headers: ['X-Debug'], cookies: [], query_params: [] } });
    expect(requestBypassReason(bypassing, request('', { x_debug: '1' }))).toBe('bypass_header');
    expect(requestBypassReason(bypassing, request('', { 'x-debug_': '1' }))).toBeNull();
  });
});

/**
 * Regression (cache poisoning review): PHP reads a cookie named `wordpress.logged_in` (or `wordpress
 * logged_in`, `wordpress[logged_in`, `wordpress%2Elogged_in`) as `wordpress_logged_in`, so such a client
 * was signed in at the origin but not bypassed: its personalised answer was stored and served to all.
 */
describe('a bypass cookie spelled as PHP reads it', () => {
  const bypassing = compiled({ bypass: { headers: [], cookies: ['wordpress_logged_in'], query_params: [] } });
  const withCookie = (cookie: string) => requestBypassReason(bypassing, request('', { cookie }));

  it.each([
    'wordpress.logged_in=alice',
    'wordpress logged_in=alice',
    'a=1; wordpress[logged_in=alice',
    'wordpress%2Elogged_in=alice',
    'wordpress+logged.in=alice',
    'wordpress_logged_in[0]=alice',
    'wordpress_logged_in%00=alice',
    'wordpress.logged_in%00x=alice',
  ])('%s bypasses like the cookie it names', (cookie) => {
    expect(withCookie(cookie)).toBe('bypass_cookie');
  });

  it('a bypass name spelled with `.` bypasses the name PHP reads it as', () => {
    const dotted = compiled({ bypass: { headers: [], cookies: ['session.id'], query_params: [] } });
    expect(requestBypassReason(dotted, request('', { cookie: 'session_id=1' }))).toBe('bypass_cookie');
  });

  it('other names do not', () => {
    for (const cookie of [
      'wordpress-logged_in=alice',
      'wordpress_logged_in_x=alice',
      'wordpress.logged[in]=a',
    ])
      expect(withCookie(cookie), cookie).toBeNull();
  });
});

/**
 * Regression (cache poisoning review): a bypass query parameter held only for its name as written, while
 * origins read other spellings as it (ASP.NET any case, PHP, Rails and Express's qs `preview[]`, pairs
 * after a `;` in older Go and Python): such a request was answered by the origin as the parameter asks
 * and stored, for every client when the query is not keyed (`cache_key_pattern: path`).
 */
describe('a bypass query parameter in the spellings origins read as its name', () => {
  const bypassing = compiled({ bypass: { headers: [], cookies: [], query_params: ['preview'] } });
  const withQuery = (query: string) => requestBypassReason(bypassing, request(query));

  it.each([
    'preview=1',
    'Preview=1',
    'PREVIEW',
    'preview[]=1',
    'preview[0]=1',
    'preview[draft]=1',
    'x=1;preview=1',
    'pre%76iew=1',
    '%20preview=1',
    'preview%00=1',
    'Preview%00x[]=1',
  ])('%s bypasses', (query) => {
    expect(withQuery(query)).toBe('bypass_query');
  });

  it('a bypass name spelled with `.` bypasses the name PHP reads it as', () => {
    const dotted = compiled({ bypass: { headers: [], cookies: [], query_params: ['pre.view'] } });
    expect(requestBypassReason(dotted, request('pre_view=1'))).toBe('bypass_query');
  });

  it('other names do not', () => {
    for (const query of ['previews=1', 'x=preview', 'apreview=1', 'pre-view=1', 'preview_x=1'])
      expect(withQuery(query), query).toBeNull();
  });
});

describe('encoded responses and the codings a client accepts', () => {
  const policy = compiled({ ttl_seconds: 60 });
  const encoded = (coding: string) => ({ 'content-encoding': coding, vary: 'Accept-Encoding' });
  const filling = (headers: Record<string, string>) => ({ authorized: false, withCookie: false, headers });

  it('selects one variant for every spelling of the same accepted codings', () => {
    const names = ['accept-encoding'];
    const of = (value: string) => varySelector(names, { 'accept-encoding': value });
    expect(of('gzip, x1')).toBe(of('gzip, x2'));
    expect(of('gzip, br')).toBe(of('br;q=1, gzip, foo'));
    expect(of('gzip')).not.toBe(of('gzip;q=0, br'));
    expect(of('gzip, deflate, br')).not.toBe(of('gzip, deflate, br, zstd'));
    expect(of('gzip, deflate')).not.toBe(of('gzip'));
    expect(of('compress')).not.toBe(of('identity'));
    // Codings the key does not select by make no variant of their own.
    expect(of('gzip, aes128gcm, identity;q=0')).toBe(of('gzip'));
    expect(of('')).toBe(of('identity'));
    expect(of('exi')).toBe(of('identity'));
    // A client that sent none may be answered otherwise than one that accepts identity only.
    expect(varySelector(names, {})).not.toBe(of('identity'));
  });

  it('does not store a coding other than br, compress, deflate, gzip and zstd', () => {
    for (const coding of ['x-vendor', 'gzip, aes128gcm', '*', 'exi'])
      expect(
        storageDecision(
          policy,
          'GET',
          200,
          encoded(coding),
          filling({ 'accept-encoding': `gzip, ${coding}` }),
        ),
        coding,
      ).toEqual({ notStored: 'other_content_encoding' });
    expect(storageDecision(policy, 'GET', 200, encoded('x-vendor'))).toEqual({
      notStored: 'other_content_encoding',
    });
  });

  it('does not store a coding the filling request refused', () => {
    expect(
      storageDecision(policy, 'GET', 200, encoded('gzip'), filling({ 'accept-encoding': 'gzip;q=0, br' })),
    ).toEqual({ notStored: 'content_encoding_not_accepted' });
    expect(
      storageDecision(policy, 'GET', 200, encoded('gzip, br'), filling({ 'accept-encoding': 'br' })),
    ).toEqual({ notStored: 'content_encoding_not_accepted' });
    expect(
      storageDecision(policy, 'GET', 200, encoded('deflate'), filling({ 'accept-encoding': 'gzip' })),
    ).toEqual({ notStored: 'content_encoding_not_accepted' });
    for (const [coding, accepting] of [
      ['deflate', 'gzip, deflate'],
      ['compress', 'x-compress'],
      ['x-compress', 'gzip, compress;q=0.1'],
    ])
      expect(
        storageDecision(policy, 'GET', 200, encoded(coding!), filling({ 'accept-encoding': accepting! })),
        coding,
      ).toHaveProperty('freshMs');
    for (const accepting of ['gzip', 'x-gzip;q=0.1', '*', 'br, *;q=0.5'])
      expect(
        storageDecision(policy, 'GET', 200, encoded('gzip'), filling({ 'accept-encoding': accepting })),
        accepting,
      ).toHaveProperty('freshMs');
    // No Accept-Encoding: the variant of the clients that sent none, answered as the origin answers them.
    expect(storageDecision(policy, 'GET', 200, encoded('x-gzip'), filling({}))).toHaveProperty('freshMs');
    expect(
      storageDecision(
        policy,
        'GET',
        200,
        encoded('identity'),
        filling({ 'accept-encoding': 'identity;q=0' }),
      ),
    ).toHaveProperty('freshMs');
  });
});
