// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${…} is the route policies' own value-template syntax
import { randomUUID } from 'node:crypto';
import { http2Connect, http2Request } from '@vantageedge/shared/testing/tls-clients';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * Matching beyond path and method, through the real pipeline: of routes with the same path, the one
 * whose header / query / host conditions hold wins over the path-only one; priority still comes first.
 */
describe('route match conditions', () => {
  let gateway: TestGateway;
  let v1: TestOrigin;
  let v2: TestOrigin;

  beforeAll(async () => {
    v1 = await startTestOrigin('v1');
    v2 = await startTestOrigin('v2');
    gateway = await startTestGateway({ GATEWAY_H2C: 'true' });
    const v1Id = randomUUID();
    const v2Id = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'match',
        customDomains: ['api.match.example'],
        origins: [
          { id: v1Id, targets: [v1.url] },
          { id: v2Id, targets: [v2.url] },
        ],
        routes: [
          { origin_id: v1Id, path_pattern: '/items/*' },
          {
            origin_id: v2Id,
            path_pattern: '/items/*',
            match: { headers: [{ name: 'X-Api-Version', exact: '2' }] },
          },
          { origin_id: v2Id, path_pattern: '/items/*', match: { query: [{ name: 'beta', present: true }] } },
          { origin_id: v2Id, path_pattern: '/items/*', match: { hosts: ['api.match.example'] } },
          {
            origin_id: v2Id,
            path_pattern: '/agents/*',
            match: { headers: [{ name: 'user-agent', prefix: 'curl/' }] },
          },
          {
            origin_id: v1Id,
            path_pattern: '/agents/*',
            priority: 10,
            match: { query: [{ name: 'pin', exact: 'v1' }] },
          },
          { origin_id: v1Id, path_pattern: '/agents/*' },
          // Header names that every object has as inherited properties (`{}.constructor`, `{}.__proto__`).
          {
            origin_id: v2Id,
            path_pattern: '/inherited/*',
            match: { headers: [{ name: 'constructor', prefix: 'x' }] },
          },
          {
            origin_id: v2Id,
            path_pattern: '/inherited/*',
            match: { headers: [{ name: '__proto__', present: true }] },
          },
          { origin_id: v1Id, path_pattern: '/inherited/*' },
          // A deny gate: the origin behind the path-only route reads the parameter and the header itself.
          {
            origin_id: null,
            path_pattern: '/gated/*',
            priority: 10,
            match: { query: [{ name: 'admin', exact: 'true' }] },
            fixed_response: { status: 403, body: 'admin is refused' },
          },
          {
            origin_id: null,
            path_pattern: '/gated/*',
            priority: 10,
            match: { headers: [{ name: 'x-canary', exact: 'always' }] },
            fixed_response: { status: 403, body: 'canary is refused' },
          },
          { origin_id: v1Id, path_pattern: '/gated/*' },
          // Stored before commands refused them: conditions on headers the gateway writes for the origin.
          {
            origin_id: v2Id,
            path_pattern: '/stored/*',
            priority: 10,
            match: { headers: [{ name: 'X-Real-IP', prefix: '10.' }] },
          },
          {
            origin_id: v2Id,
            path_pattern: '/stored/*',
            priority: 10,
            match: { headers: [{ name: 'x_vantageedge_auth_kind', exact: 'service' }] },
          },
          {
            origin_id: v2Id,
            path_pattern: '/stored/*',
            priority: 10,
            match: { headers: [{ name: 'X-Forwarded-For', present: false }] },
          },
          { origin_id: v1Id, path_pattern: '/stored/*' },
          {
            origin_id: v2Id,
            path_pattern: '/stored-cors/*',
            match: { headers: [{ name: 'x-request-id', present: true }] },
            cors: { allow_origins: ['https://app.example'] },
          },
          { origin_id: v1Id, path_pattern: '/stored-cors/*' },
          {
            origin_id: null,
            path_pattern: '/moved/*',
            redirect: { status: 301, location: 'https://${host}/new${path}' },
          },
        ],
      }),
    );
  });

  afterAll(async () => {
    await gateway?.close();
    await v1?.close();
    await v2?.close();
  });

  const originOf = async (host: string, path: string, headers: Record<string, string> = {}) =>
    (await send(gateway, host, path, { headers })).json()['origin'];

  it('sends a request with the header to the header-matched route, others to the path-only route', async () => {
    expect(await originOf('match.localhost', '/items/1', { 'x-api-version': '2' })).toBe('v2');
    expect(await originOf('match.localhost', '/items/1', { 'x-api-version': '3' })).toBe('v1');
    expect(await originOf('match.localhost', '/items/1')).toBe('v1');
  });

  // A header the client names in Connection is the hop's: the gateway drops it, so the origin behind a
  // route chosen by it would read the request without it (a public `X-Api-Version: 2` route serving
  // what the path-only route protects).
  it('reads a header the client names in Connection as not sent, as the origin receives the request', async () => {
    for (const connection of ['x-api-version', 'keep-alive, X-Api-Version']) {
      const headers = { 'x-api-version': '2', connection };
      const answer = await send(gateway, 'match.localhost', '/items/1', { headers });
      expect({ connection, origin: answer.json()['origin'] }).toEqual({ connection, origin: 'v1' });
      expect(v1.seen.at(-1)!.headers['x-api-version']).toBeUndefined();
    }
    // Another spelling is forwarded (Connection names only its own): the origin reads it as the field.
    const spelled = { x_api_version: '2', connection: 'x-api-version' };
    expect(await originOf('match.localhost', '/items/1', spelled)).toBe('v2');
    expect(await originOf('match.localhost', '/items/1', { 'x-api-version': '2', connection: 'close' })).toBe(
      'v2',
    );
  });

  it('matches query conditions and host conditions', async () => {
    expect(await originOf('match.localhost', '/items/1?beta')).toBe('v2');
    expect(await originOf('match.localhost', '/items/1?beta=yes&x=1')).toBe('v2');
    expect(await originOf('api.match.example', '/items/1')).toBe('v2');
    expect(await originOf('API.Match.Example:443', '/items/1')).toBe('v2');
    // The host is the Host the client connected for, never the one it claims was forwarded.
    expect(await originOf('match.localhost', '/items/1', { 'x-forwarded-host': 'api.match.example' })).toBe(
      'v1',
    );
  });

  it('puts priority before conditions, and matches header prefixes', async () => {
    expect(await originOf('match.localhost', '/agents/1', { 'user-agent': 'curl/8.0' })).toBe('v2');
    expect(await originOf('match.localhost', '/agents/1', { 'user-agent': 'Mozilla/5.0' })).toBe('v1');
    expect(await originOf('match.localhost', '/agents/1?pin=v1', { 'user-agent': 'curl/8.0' })).toBe('v1');
  });

  // Regression: a header condition read the request's headers object by name, inherited properties
  // included: `constructor` (a function) made a prefix condition throw, so every request to the path
  // answered 500, and `present: true` held for `__proto__` without the client sending it.
  it('reads only the headers the client sent, whatever the condition names', async () => {
    const plain = await send(gateway, 'match.localhost', '/inherited/1');
    expect(plain.status).toBe(200);
    expect(plain.json()['origin']).toBe('v1');
    expect(await originOf('match.localhost', '/inherited/1', { constructor: 'xyz' })).toBe('v2');
  });

  // Regression: a query condition read only the parameter spelled exactly as named, and a header
  // condition only the header spelled with `-`, while origins read other spellings as the same field:
  // ASP.NET reads `Admin` as `admin`, PHP, Rails and Express `admin[]`, PHP ` admin`, Rack 2 `[admin]`,
  // Go before 1.17 and Python before 3.9.2 a pair after `;`, and PHP, Rack and WSGI `x_canary` as
  // X-Canary. Each passed a deny route and reached the origin.
  it('holds a query or header condition for every spelling an origin reads as its name', async () => {
    const refused = ['Admin=true', 'ADMIN=true', 'admin[]=true', 'admin[0]=true', '%20admin=true'];
    refused.push('[admin]=true', 'admin]=true', 'x=1;admin=true', 'admin=true;x=1', 'a%64min=true');
    // PHP ends a name at a NUL, classic ASP.NET decodes %u, Spring binds `!admin` as admin's default.
    refused.push('admin%00=true', 'admin%00x=true', '%u0061dmin=true', '!admin=true');
    for (const query of refused) {
      const answer = await send(gateway, 'match.localhost', `/gated/1?${query}`);
      expect({ query, status: answer.status }).toEqual({ query, status: 403 });
    }
    const canary = await send(gateway, 'match.localhost', '/gated/1', { headers: { x_canary: 'always' } });
    expect(canary.status).toBe(403);
    expect(v1.seen.filter((request) => request.url.startsWith('/gated/'))).toEqual([]);
    // Other names and other values are not the gated ones.
    for (const query of ['admins=true', 'admin_id=true', 'admin=false', 'admin=TRUE']) {
      expect(await originOf('match.localhost', `/gated/1?${query}`)).toBe('v1');
    }
    expect(await originOf('match.localhost', '/gated/1', { x_canary: 'never' })).toBe('v1');
  });

  // Regression: a route stored before commands refused such conditions kept one on X-Real-IP (or an
  // identity header, or `X-Forwarded-For` absent), and the client's copy decided it: any client writing
  // `X-Real-IP: 10.1.2.3` reached the route meant for internal addresses, and every client sending no
  // X-Forwarded-For the one meant for none, while the origin got the gateway's values.
  it('never meets a stored condition on a header the gateway writes for the origin, whatever the client sends', async () => {
    for (const headers of [
      {},
      { 'x-real-ip': '10.1.2.3' },
      { x_real_ip: '10.1.2.3' },
      { 'x-vantageedge-auth-kind': 'service' },
      { 'x-forwarded-for': '10.1.2.3' },
    ]) {
      expect({ headers, origin: await originOf('match.localhost', '/stored/1', headers) }).toEqual({
        headers,
        origin: 'v1',
      });
    }
    // Nor does its CORS policy answer the path's preflights: the route takes no request.
    const preflight = await send(gateway, 'match.localhost', '/stored-cors/1', {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'GET' },
    });
    expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
  });

  // Regression: host conditions and the redirect's ${host} read the Host header, which HTTP/2 clients
  // do not send (they send :authority): an HTTP/2 request to a host-matched route went to another route.
  it('reads the host of an HTTP/2 request from :authority for host conditions and redirects', async () => {
    const session = http2Connect(gateway.url);
    try {
      const h2 = (authority: string, path: string) => http2Request(session, { path, authority });
      const matched = await h2('api.match.example', '/items/1');
      expect(JSON.parse(matched.body.toString())['origin']).toBe('v2');
      const plain = await h2('match.localhost', '/items/1');
      expect(JSON.parse(plain.body.toString())['origin']).toBe('v1');
      const moved = await h2('api.match.example', '/moved/a');
      expect(moved.status).toBe(301);
      expect(moved.headers['location']).toBe('https://api.match.example/new/moved/a');
    } finally {
      session.close();
    }
  });
});
