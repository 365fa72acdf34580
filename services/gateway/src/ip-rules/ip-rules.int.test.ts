import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { errorCodeOf, rawExchange } from '../testing/raw-exchange.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { sendUpgrade } from '../testing/upgrade-request.js';

/**
 * IP rules through the real pipeline, on the client address the gateway resolved (here behind a
 * trusted proxy: the X-Forwarded-For entry). Tenant-wide rules apply to every route without its own;
 * a route's rules replace them; deny wins; the refusal comes before authentication.
 */
describe('IP rules route policy', () => {
  let gateway: TestGateway;
  let origin: TestOrigin;

  beforeAll(async () => {
    origin = await startTestOrigin('ip-origin');
    gateway = await startTestGateway({ GATEWAY_TRUST_PROXY: 'true' });
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'ips',
        settings: { ip_rules: { deny: ['203.0.113.0/24', '2001:db8:bad::/48'] } },
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [
          { origin_id: originId, path_pattern: '/tenant-rules/*' },
          { origin_id: originId, path_pattern: '/limited/*', max_body_bytes: 100, max_header_bytes: 2048 },
          // Open to every address (its own rules replace the tenant's), around a path that keeps them.
          { origin_id: originId, path_pattern: '/portal/*', ip_rules: { deny: ['192.0.2.66'] } },
          { origin_id: originId, path_pattern: '/portal/admin/*' },
          // Told apart by a query parameter and protected differently, both under the tenant's rules.
          {
            origin_id: originId,
            path_pattern: '/reports/*',
            match: { query: [{ name: 'format', exact: 'pdf' }] },
          },
          { origin_id: originId, path_pattern: '/reports/*', auth_mode: 'apikey_required' },
          {
            origin_id: originId,
            path_pattern: '/office-only/*',
            auth_mode: 'apikey_required',
            ip_rules: { allow: ['198.51.100.0/24', '2001:db8:1::/48'], deny: ['198.51.100.66'] },
          },
        ],
      }),
    );
  });

  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
  });

  const from = (address: string, path: string) =>
    send(gateway, 'ips.localhost', path, { headers: { 'x-forwarded-for': address } });

  it("refuses the tenant's denied ranges with 403 ip_denied before the origin sees anything", async () => {
    const seen = origin.seen.length;
    for (const address of ['203.0.113.7', '2001:db8:bad::1']) {
      const refused = await from(address, '/tenant-rules/x');
      expect(refused.status, address).toBe(403);
      expect(refused.json()['error']).toMatchObject({ code: 'ip_denied' });
    }
    expect(origin.seen.length).toBe(seen);
    expect((await from('192.0.2.1', '/tenant-rules/x')).status).toBe(200);
  });

  it("replaces the tenant's rules with the route's own: only the allow list gets in, deny wins, before auth", async () => {
    // The tenant-wide deny does not apply here: the route's own rules replace it (203.0.113.7 is not
    // in the route's allow list, so it is refused by the allow list instead).
    const outsider = await from('203.0.113.7', '/office-only/x');
    expect(outsider.status).toBe(403);
    const denied = await from('198.51.100.66', '/office-only/x');
    expect(denied.status).toBe(403);
    expect(denied.json()['error']).toMatchObject({ code: 'ip_denied' });
    // An allowed address gets as far as authentication (401: no API key).
    for (const address of ['198.51.100.10', '2001:db8:1::5']) {
      const allowed = await from(address, '/office-only/x');
      expect(allowed.status, address).toBe(401);
    }
  });

  it("keeps the tenant's rules of a route another reading of the path reaches (/portal/Admin → /portal/admin/*)", async () => {
    expect((await from('203.0.113.7', '/portal/x')).status).toBe(200);
    expect((await from('203.0.113.7', '/portal/admin/users')).status).toBe(403);
    // As written, /portal/Admin/users matches only /portal/*, whose own rules admit 203.0.113.7; a
    // case-insensitive origin serves it as /portal/admin/users, which the tenant's deny list covers.
    const seen = origin.seen.length;
    // Two different address lists cannot be ordered: the path is ambiguous.
    const folded = await from('203.0.113.7', '/portal/Admin/users');
    expect(folded.status).toBe(403);
    expect(folded.json()['error']).toMatchObject({ code: 'ambiguous_path' });
    expect(origin.seen.length).toBe(seen);
  });

  it("refuses the tenant's denied ranges on paths no route takes as on its routes: a refused address cannot map the routes", async () => {
    const refused = await from('203.0.113.7', '/no-such-route/x');
    expect(refused.status).toBe(403);
    expect(refused.json()['error']).toEqual((await from('203.0.113.7', '/tenant-rules/x')).json()['error']);
    const upgrade = await sendUpgrade(gateway, 'ips.localhost', '/no-such-route/ws', {
      'x-forwarded-for': '203.0.113.7',
    });
    expect(upgrade.status).toBe(403);
    expect(JSON.parse(upgrade.text).error).toMatchObject({ code: 'ip_denied' });
    // Any other address is told there is no such route.
    const unknown = await from('192.0.2.1', '/no-such-route/x');
    expect(unknown.status).toBe(404);
    expect(unknown.json()['error']).toMatchObject({ code: 'route_not_found' });
  });

  it('refuses a denied address a request no route alone takes (an ambiguous query) as on a path without one', async () => {
    const ambiguous = '/reports/q3?format=pdf&format=csv';
    const refused = await from('203.0.113.7', ambiguous);
    expect(refused.status).toBe(403);
    expect(refused.json()['error']).toEqual((await from('203.0.113.7', '/no-such-route/x')).json()['error']);
    const upgrade = await sendUpgrade(gateway, 'ips.localhost', ambiguous, {
      'x-forwarded-for': '203.0.113.7',
    });
    expect(`${upgrade.status} ${JSON.parse(upgrade.text).error.code}`).toBe('403 ip_denied');
    // An address the routes admit is told why the request is refused.
    const admitted = await from('192.0.2.1', ambiguous);
    expect(admitted.status).toBe(403);
    expect(admitted.json()['error']).toMatchObject({ code: 'ambiguous_query' });
  });

  it('refuses a denied address before any other refusal of a route it names: limits and loops do not tell routes apart', async () => {
    const code = async (path: string, headers: string) => {
      const answer = await rawExchange(
        gateway.gateway.trafficPort,
        Buffer.from(
          `POST ${path} HTTP/1.1\r\nHost: ips.localhost\r\nX-Forwarded-For: 203.0.113.7\r\n${headers}Connection: close\r\n\r\n`,
        ),
        ['POST'],
        5_000,
      );
      return `${answer.responses[0]?.status} ${errorCodeOf(answer.responses[0]!)}`;
    };
    const huge = 'Content-Length: 999999999999\r\n';
    const routeLimit = 'Content-Length: 1000\r\n';
    const longHeader = `X-Padding: ${'p'.repeat(4096)}\r\nContent-Length: 0\r\n`;
    const looping = 'CDN-Loop: vantageedge, vantageedge, vantageedge\r\nContent-Length: 0\r\n';
    for (const headers of [huge, routeLimit, longHeader, looping]) {
      expect(await code('/limited/x', headers), headers.slice(0, 20)).toBe('403 ip_denied');
      expect(await code('/no-such-route/x', headers), headers.slice(0, 20)).toBe('403 ip_denied');
    }
    const upgrade = await sendUpgrade(gateway, 'ips.localhost', '/limited/ws', {
      'x-forwarded-for': '203.0.113.7',
      'cdn-loop': 'vantageedge, vantageedge, vantageedge',
    });
    expect(`${upgrade.status} ${JSON.parse(upgrade.text).error.code}`).toBe('403 ip_denied');
  });
});
