// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${…} is the route policies' own value-template syntax
import { randomUUID } from 'node:crypto';
import { hashApiKey } from '@vantageedge/shared/domain/api-key-hash';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCacheStage } from '../cache/cache-stage.js';
import { memoryResponseCache } from '../cache/testing/memory-response-cache.js';
import {
  send,
  startTestGateway,
  startTestOrigin,
  TEST_PEPPER,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * Request and response transforms through the real pipeline: what the origin receives (headers with
 * per-request values, a rewritten path, a changed query) and what the client gets back (also on a
 * cache HIT, which stores the transformed headers).
 */
describe('transform route policies', () => {
  let gateway: TestGateway;
  let origin: TestOrigin;
  const tenantId = randomUUID();
  const routeId = randomUUID();
  const apiKey = 've_live_transforms_key_000000000000000000';
  const apiKeyId = randomUUID();

  beforeAll(async () => {
    origin = await startTestOrigin('transform-origin');
    const cache = memoryResponseCache();
    gateway = await startTestGateway({}, { stages: [createCacheStage(cache)] });
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        tenantId,
        subdomain: 'tx',
        origins: [{ id: originId, targets: [origin.url] }],
        apiKeys: [{ id: apiKeyId, key_hash: hashApiKey(TEST_PEPPER, apiKey) }],
        routes: [
          {
            id: routeId,
            origin_id: originId,
            path_pattern: '/headers/*',
            auth_mode: 'apikey_required',
            request_headers: {
              set: { 'X-Caller': 'key ${consumer_id} from ${client_ip}', 'x-env': 'prod' },
              add: { 'x-tag': 'gateway' },
              remove: ['x-internal-debug', 'x-debug-trace-of-the-caller'],
            },
          },
          {
            origin_id: originId,
            path_pattern: '/api/v1/*',
            rewrite_path: { from_prefix: '/api/v1', to_prefix: '/internal/v2' },
            query: { set: { source: 'gw-${route_id}' }, add: { trace: '${request_id}' }, remove: ['debug'] },
          },
          {
            origin_id: originId,
            path_pattern: '/profile/*',
            query: { remove: ['user_id'] },
          },
          {
            origin_id: originId,
            path_pattern: '/arrays/*',
            query: { set: { 'scopes[]': 'read' }, remove: ['ids[]'] },
          },
          {
            origin_id: originId,
            path_pattern: '/bound/*',
            query: { set: { 'page.size': '50' }, remove: ['filter[status]', 'user'] },
          },
          {
            origin_id: originId,
            path_pattern: '/users/:id/*',
            rewrite_path: { template: '/accounts/:id/items/*' },
          },
          {
            // Escapes as an admin may write them: lower-case hex, an unreserved character encoded.
            origin_id: originId,
            path_pattern: '/caf%c3%a9/*',
            rewrite_path: { from_prefix: '/caf%c3%a9', to_prefix: '/menu' },
          },
          {
            origin_id: originId,
            path_pattern: '/%7eboard/*',
            rewrite_path: { from_prefix: '/%7eboard', to_prefix: '/board' },
          },
          {
            // Stored before commands refused these writes (hop-by-hop, or dropped from every peer).
            origin_id: originId,
            path_pattern: '/stored/*',
            request_headers: {
              set: { 'proxy-authorization': 'Basic Zm9vOmJhcg==', 'x-original-url': '/admin', 'x-kept': '1' },
              add: { 'x-http-method-override': 'DELETE' },
            },
          },
          {
            // Stored before commands refused a header CGI-style origins read as one the gateway owns.
            origin_id: originId,
            path_pattern: '/stored-underscored/*',
            request_headers: {
              set: { X_VantageEdge_User_Id: 'user_2victim', 'x-forwarded_host': 'admin.internal' },
              add: { x_real_ip: '198.51.100.1', x_original_url: '/admin', x_custom: 'kept' },
            },
          },
          {
            origin_id: originId,
            path_pattern: '/forwarding/*',
            request_headers: {
              set: { 'X-Client-IP': '${client_ip}', 'x-api-key': 'origin-credential' },
              add: { 'true-client-ip': '${client_ip}', cf_connecting_ip: '${client_ip}' },
            },
          },
          {
            origin_id: originId,
            path_pattern: '/cached/*',
            cache_policy: { ttl_seconds: 60 },
            response_headers: {
              set: { 'strict-transport-security': 'max-age=63072000' },
              remove: ['x-origin'],
              add: { 'x-served-by': 'gateway' },
            },
          },
          {
            // No cache: the fixed values go out as prepared head lines (ResponseHead.checkedHeaders).
            origin_id: originId,
            path_pattern: '/fixed/*',
            cors: {
              allow_origins: ['https://app.example'],
              allow_methods: ['GET'],
              allow_headers: [],
              expose_headers: ['x-request-id'],
              allow_credentials: true,
              max_age_seconds: 600,
            },
            response_headers: {
              set: {
                'X-Origin': 'the route',
                'x-fixed': 'one',
                'x-both': 'set',
                'access-control-expose-headers': 'x-origin',
                'x-seen-from': '${client_ip}',
              },
              add: { 'x-both': 'added' },
              remove: [],
            },
          },
          {
            origin_id: originId,
            path_pattern: '/cached-per-client/*',
            cache_policy: { ttl_seconds: 60 },
            response_headers: {
              set: { 'x-seen-from': '${client_ip}', 'x-route': '${route_id}' },
              add: { 'x-answered-request': 'request ${request_id}' },
            },
          },
        ],
      }),
    );
  });

  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
  });

  const lastSeen = () => origin.seen.at(-1)!;

  it('sets, adds and removes request headers with the consumer, client address, request and route', async () => {
    const answer = await send(gateway, 'tx.localhost', '/headers/x', {
      headers: {
        'x-api-key': apiKey,
        'x-tag': 'client',
        'x-internal-debug': '1',
        'x-request-id': 'req-tx-1',
      },
    });
    expect(answer.status).toBe(200);
    const seen = lastSeen().headers;
    expect(seen['x-caller']).toBe(`key ${apiKeyId} from 127.0.0.1`);
    expect(seen['x-env']).toBe('prod');
    expect(seen['x-tag']).toBe('client, gateway');
    expect(seen['x-internal-debug']).toBeUndefined();
    expect(seen['x-vantageedge-api-key-id']).toBe(apiKeyId); // identity headers stay the gateway's
  });

  // PHP, Rack and WSGI servers read `X_Internal_Debug` as X-Internal-Debug (HTTP_X_INTERNAL_DEBUG).
  it('removes and replaces a request header in every spelling CGI-style origins read as its name', async () => {
    const answer = await send(gateway, 'tx.localhost', '/headers/x', {
      headers: {
        'x-api-key': apiKey,
        x_internal_debug: '1',
        'X-Internal_Debug': '1',
        x_env: 'staging',
        'x_debug_trace-of_the_caller': '1',
        'x-tag': 'client',
        x_other: 'kept',
      },
    });
    expect(answer.status).toBe(200);
    const seen = lastSeen().headers;
    const sent = Object.keys(seen).filter((name) =>
      /^x[-_](internal[-_]debug|env|debug[-_]trace[-_]of[-_]the[-_]caller)$/.test(name),
    );
    expect(sent.map((name) => `${name}: ${seen[name]}`)).toEqual(['x-env: prod']);
    expect(seen['x-tag']).toBe('client, gateway');
    expect(seen.x_other).toBe('kept');
  });

  // PHP reads `.` in a name as `_` (behind Caddy, FrankenPHP, lighttpd): X.Internal.Debug is HTTP_X_INTERNAL_DEBUG.
  it('removes and replaces a request header spelled with dots, as PHP origins read it', async () => {
    const answer = await send(gateway, 'tx.localhost', '/headers/x', {
      headers: {
        'x-api-key': apiKey,
        'x.internal.debug': '1',
        'x-internal.debug': '1',
        'x.env': 'staging',
        'x.debug.trace-of_the.caller': '1',
        'x.other': 'kept',
      },
    });
    expect(answer.status).toBe(200);
    const seen = lastSeen().headers;
    expect(Object.keys(seen).filter((name) => name.includes('.'))).toEqual(['x.other']);
    expect(seen['x-env']).toBe('prod');
  });

  it('sends the client-address and key headers a route sets, never the ones the client sent', async () => {
    const answer = await send(gateway, 'tx.localhost', '/forwarding/x', {
      headers: {
        'x-client-ip': '6.6.6.6',
        'true-client-ip': '6.6.6.6',
        'x-api-key': 'client-key',
        cf_connecting_ip: '6.6.6.6',
        'cf-connecting-ip': '6.6.6.6',
      },
    });
    expect(answer.status).toBe(200);
    const seen = lastSeen().headers;
    // The route spells it with `_`, as CGI-style origins read CF-Connecting-IP: still added to nothing.
    expect([seen['cf_connecting_ip'], seen['cf-connecting-ip']]).toEqual(['127.0.0.1', undefined]);
    expect(seen['x-client-ip']).toBe('127.0.0.1');
    expect(seen['true-client-ip']).toBe('127.0.0.1'); // added to nothing: the client's line is not kept
    expect(seen['x-api-key']).toBe('origin-credential');

    await send(gateway, 'tx.localhost', '/api/v1/x', {
      headers: { 'x-client-ip': '6.6.6.6', 'x-api-key': 'client-key' },
    });
    expect(lastSeen().headers['x-client-ip']).toBeUndefined();
    expect(lastSeen().headers['x-api-key']).toBeUndefined();
  });

  it('rewrites a path prefix and the query (set, add, remove) the origin sees', async () => {
    await send(gateway, 'tx.localhost', '/api/v1/orders/7?debug=1&page=2&source=client', {
      headers: { 'x-request-id': 'req-tx-2' },
    });
    const url = new URL(lastSeen().url, 'http://origin');
    expect(url.pathname).toBe('/internal/v2/orders/7');
    expect(url.searchParams.get('debug')).toBeNull();
    expect(url.searchParams.get('page')).toBe('2');
    expect(url.searchParams.getAll('source')).toHaveLength(1);
    expect(url.searchParams.get('source')?.startsWith('gw-')).toBe(true);
    expect(url.searchParams.get('trace')).toBe('req-tx-2');
  });

  // Regression: the query was parsed and written again, so every parameter the transform did not name
  // reached the origin re-encoded (`%20` as `+`, `/` as `%2F`, a byte that is not UTF-8 as U+FFFD).
  it('forwards the parameters a query transform does not name byte for byte, in their order', async () => {
    await send(
      gateway,
      'tx.localhost',
      '/api/v1/orders/7?a=b%20c&debug=1&x=%E9&source=client&q=a/b&t=x+y&source=again',
      {
        headers: { 'x-request-id': 'req-tx-3' },
      },
    );
    const seen = lastSeen().url;
    const query = seen.slice(seen.indexOf('?'));
    expect(query).toMatch(/^\?a=b%20c&x=%E9&source=gw-[^&]+&q=a\/b&t=x\+y&trace=req-tx-3$/);
  });

  // PHP reads a `[` that no `]` follows as `_`: `user[id=7` reaches the application as $_GET['user_id'].
  it('removes a parameter an origin reads under the removed name through an unclosed bracket', async () => {
    const originQuery = async (query: string) => {
      expect((await send(gateway, 'tx.localhost', `/profile/me?${query}`)).status).toBe(200);
      const seen = lastSeen().url;
      return seen.slice(seen.indexOf('?'));
    };
    for (const spelling of ['user[id=7', 'user%5Bid=7', 'user%5bid=7']) {
      expect(await originQuery(`a=1&${spelling}&b=2`), spelling).toBe('?a=1&b=2');
    }
    // `user_idx` to PHP: another name, kept.
    expect(await originQuery('a=1&user[idx=7')).toBe('?a=1&user[idx=7');
  });

  // PHP reads a name up to a NUL byte in it: `user_id%00x=7` reaches the application as $_GET['user_id'].
  it('removes a parameter an origin reads under the removed name up to a NUL byte', async () => {
    for (const spelling of ['user_id%00=7', 'user_id%00x=7', 'user.id%00[]=7']) {
      expect((await send(gateway, 'tx.localhost', `/profile/me?a=1&${spelling}&b=2`)).status).toBe(200);
      const seen = lastSeen().url;
      expect(seen.slice(seen.indexOf('?')), spelling).toBe('?a=1&b=2');
    }
  });

  // Rack 2 (Rails before 7.1) drops brackets before a name and after it: `[user_id]=7` is `user_id`.
  it('removes a parameter an origin reads under the removed name through brackets around it', async () => {
    for (const spelling of ['[user_id]=7', 'user_id]=7', '][user_id=7', '%5Buser_id%5D=7', 'user_id][x]=7']) {
      expect((await send(gateway, 'tx.localhost', `/profile/me?a=1&${spelling}&b=2`)).status).toBe(200);
      const seen = lastSeen().url;
      expect(seen.slice(seen.indexOf('?')), spelling).toBe('?a=1&b=2');
    }
  });

  // PHP, Rails and Express (qs) read `scopes[0]=admin` and `scopes=admin` as the `scopes` that
  // `scopes[]` writes: the route's `scopes[]` must be the only one the origin gets.
  it('sets and removes a name given with [] in every spelling origins read as it', async () => {
    const originQuery = async (query: string) => {
      expect((await send(gateway, 'tx.localhost', `/arrays/list?${query}`)).status).toBe(200);
      const seen = lastSeen().url;
      return seen.slice(seen.indexOf('?'));
    };
    expect(await originQuery('a=1&scopes[0]=admin&ids[0]=7&ids=8&b=2')).toBe('?a=1&scopes%5B%5D=read&b=2');
    expect(await originQuery('scopes[]=read&scopes=admin')).toBe('?scopes%5B%5D=read');
  });

  // ASP.NET Core and Spring bind `user.role` as `user`'s role and read `filter.status` as the
  // `filter[status]` a dictionary binds; PHP reads `filter[status]x` as `filter[status]`, Rack as
  // `filter[status][x]`; Spring reads `filter['status']` as `filter[status]`.
  it('removes and sets a name in the spellings with `.`, quotes or text after a `]` origins read as it', async () => {
    const originQuery = async (query: string) => {
      expect((await send(gateway, 'tx.localhost', `/bound/list?${query}`)).status).toBe(200);
      const seen = lastSeen().url;
      return seen.slice(seen.indexOf('?'));
    };
    for (const spelling of [
      'filter.status=x',
      'Filter.Status=x',
      'filter[status]x=1',
      "filter['status']=1",
      'user.role=admin',
      'User.Roles[0]=admin',
    ]) {
      expect(await originQuery(`a=1&${spelling}&b=2`), spelling).toBe('?a=1&b=2&page.size=50');
    }
    // The route's value takes the place of the client's, in either reading of `page.size`.
    for (const spelling of ['page[size]=100000', 'Page.Size=100000', 'page_size=100000']) {
      expect(await originQuery(`a=1&${spelling}&b=2`), spelling).toBe('?a=1&page.size=50&b=2');
    }
    expect(await originQuery('filter_status=x&users.role=y')).toBe(
      '?filter_status=x&users.role=y&page.size=50',
    );
  });

  it('rewrites a prefix written with escapes however the client spells the path its pattern matches', async () => {
    for (const path of ['/caf%C3%A9/today', '/caf%c3%a9/today']) {
      expect((await send(gateway, 'tx.localhost', path)).status).toBe(200);
      expect(lastSeen().url).toBe('/menu/today');
    }
    for (const path of ['/~board/x', '/%7Eboard/x']) {
      expect((await send(gateway, 'tx.localhost', path)).status).toBe(200);
      expect(lastSeen().url).toBe('/board/x');
    }
  });

  it('rewrites with a template: :id from the pattern, * for what the wildcard matched', async () => {
    await send(gateway, 'tx.localhost', '/users/42/photos/9');
    expect(lastSeen().url).toBe('/accounts/42/items/photos/9');
    await send(gateway, 'tx.localhost', '/users/43');
    expect(lastSeen().url).toBe('/accounts/43/items');
  });

  it('never forwards the hop-by-hop or routing-override headers a stored route writes; keeps its other writes', async () => {
    expect((await send(gateway, 'tx.localhost', '/stored/a')).status).toBe(200);
    const seen = lastSeen().headers;
    expect(seen['proxy-authorization']).toBeUndefined();
    expect(seen['x-original-url']).toBeUndefined();
    expect(seen['x-http-method-override']).toBeUndefined();
    expect(seen['x-kept']).toBe('1');
  });

  // PHP, Rack and WSGI servers read `_` and `-` in a header name alike (HTTP_X_REAL_IP either way): the
  // route's X_Real_IP reached them beside the gateway's X-Real-IP, and its X_VantageEdge_User_Id as the
  // identity header origins trust.
  it("regression: never forwards a stored route's header that origins read as one the gateway owns", async () => {
    expect((await send(gateway, 'tx.localhost', '/stored-underscored/a')).status).toBe(200);
    const seen = lastSeen().headers;
    expect(Object.keys(seen).filter((name) => name.includes('_'))).toEqual(['x_custom']);
    expect(seen['x-real-ip']).toBe('127.0.0.1');
    expect(seen['x-vantageedge-user-id']).toBeUndefined();
  });

  it('transforms response headers, and a cache HIT answers with the transformed headers', async () => {
    const miss = await send(gateway, 'tx.localhost', '/cached/a');
    expect(miss.headers['x-cache']).toBe('MISS');
    const hit = await send(gateway, 'tx.localhost', '/cached/a');
    expect(hit.headers['x-cache']).toBe('HIT');
    for (const answer of [miss, hit]) {
      expect(answer.headers['strict-transport-security']).toBe('max-age=63072000');
      expect(answer.headers['x-origin']).toBeUndefined();
      expect(answer.headers['x-served-by']).toBe('gateway');
    }
  });

  it("answers with a route's fixed response headers in place of the origin's and of the gateway's own, each once", async () => {
    const answer = await send(gateway, 'tx.localhost', '/fixed/a', {
      headers: { origin: 'https://app.example' },
      localAddress: '127.0.0.4',
    });
    expect(answer.status).toBe(200);
    expect(answer.json()['origin']).toBe('transform-origin');
    // node's client joins repeated lines of these names with ", ": one value means one line.
    expect(answer.headers['x-origin']).toBe('the route');
    expect(answer.headers['x-fixed']).toBe('one');
    expect(answer.headers['x-both']).toBe('set, added');
    expect(answer.headers['x-seen-from']).toBe('127.0.0.4');
    expect(answer.headers['access-control-expose-headers']).toBe('x-origin');
    expect(answer.headers['access-control-allow-origin']).toBe('https://app.example');
    expect(answer.headers['access-control-allow-credentials']).toBe('true');
    expect(answer.headers.vary).toBe('Origin');
    expect(answer.headers['x-request-id']).toBeDefined();
  });

  it('writes per-request response header values for each answer: a cache HIT never carries those of the MISS that filled it', async () => {
    const miss = await send(gateway, 'tx.localhost', '/cached-per-client/a', {
      localAddress: '127.0.0.2',
      headers: { 'x-request-id': 'first-client-request' },
    });
    expect(miss.headers['x-cache']).toBe('MISS');
    expect(miss.headers['x-seen-from']).toBe('127.0.0.2');
    expect(miss.headers['x-answered-request']).toBe('request first-client-request');
    const hit = await send(gateway, 'tx.localhost', '/cached-per-client/a', {
      localAddress: '127.0.0.3',
      headers: { 'x-request-id': 'second-client-request' },
    });
    expect(hit.headers['x-cache']).toBe('HIT');
    expect(hit.headers['x-seen-from']).toBe('127.0.0.3');
    expect(hit.headers['x-answered-request']).toBe('request second-client-request');
    for (const answer of [miss, hit]) expect(answer.headers['x-route']).toBeDefined();
  });
});
