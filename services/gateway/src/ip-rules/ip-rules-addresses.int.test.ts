import { randomUUID } from 'node:crypto';
import { type ClientHttp2Session, connect, constants } from 'node:http2';
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
 * IP rules on every spelling of a client address the gateway reads: IPv4-mapped IPv6 both ways, the
 * all-addresses ranges of each family, allow and deny overlapping, and the X-Forwarded-For of a trusted
 * proxy (the gateway's peer here, loopback) in the shapes proxies write it: several lines, spaces,
 * ports, brackets, zone ids, garbage a client put first, a chain longer than the trusted hops. HTTP/2
 * clients and WebSocket upgrades are refused the same way.
 */
describe('IP rules on the client address, however it is written', () => {
  let gateway: TestGateway;
  let origin: TestOrigin;
  let session: ClientHttp2Session;

  beforeAll(async () => {
    origin = await startTestOrigin('ip-addresses');
    gateway = await startTestGateway({
      GATEWAY_TRUSTED_PROXIES: '127.0.0.0/8,::1/128,10.200.0.0/16',
      GATEWAY_H2C: 'true',
    });
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'ipaddr',
        settings: { ip_rules: { allow: [], deny: ['203.0.113.0/24', '2001:db8:bad::/48', 'fe80::/10'] } },
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [
          { origin_id: originId, path_pattern: '/tenant/*' },
          { origin_id: originId, path_pattern: '/open/*', ip_rules: { allow: [], deny: [] } },
          { origin_id: originId, path_pattern: '/deny-v4/*', ip_rules: { allow: [], deny: ['10.0.0.0/8'] } },
          {
            origin_id: originId,
            path_pattern: '/deny-mapped/*',
            ip_rules: { allow: [], deny: ['::ffff:198.51.100.0/120'] },
          },
          { origin_id: originId, path_pattern: '/deny-all-v6/*', ip_rules: { allow: [], deny: ['::/0'] } },
          {
            origin_id: originId,
            path_pattern: '/deny-all-v4/*',
            ip_rules: { allow: [], deny: ['0.0.0.0/0'] },
          },
          {
            origin_id: originId,
            path_pattern: '/office/*',
            ip_rules: { allow: ['198.51.100.0/24', '2001:db8:1::/48'], deny: ['198.51.100.64/26'] },
          },
        ],
      }),
    );
    session = connect(gateway.url);
  });

  afterAll(async () => {
    session?.close();
    await gateway?.close();
    await origin?.close();
  });

  const statusFrom = async (forwardedFor: string, path: string) =>
    (await send(gateway, 'ipaddr.localhost', path, { headers: { 'x-forwarded-for': forwardedFor } })).status;

  it('matches an IPv4-mapped IPv6 client against IPv4 ranges, and an IPv4 client against mapped ranges', async () => {
    expect(await statusFrom('::ffff:10.0.0.1', '/deny-v4/x')).toBe(403);
    expect(await statusFrom('::FFFF:a00:1', '/deny-v4/x')).toBe(403);
    expect(await statusFrom('10.0.0.1', '/deny-v4/x')).toBe(403);
    expect(await statusFrom('198.51.100.7', '/deny-mapped/x')).toBe(403);
    expect(await statusFrom('::ffff:198.51.100.7', '/deny-mapped/x')).toBe(403);
    expect(await statusFrom('198.51.101.7', '/deny-mapped/x')).toBe(200);
    expect(await statusFrom('11.0.0.1', '/deny-v4/x')).toBe(200);
  });

  it('::/0 covers every client, 0.0.0.0/0 only the IPv4 ones', async () => {
    expect(await statusFrom('192.0.2.1', '/deny-all-v6/x')).toBe(403);
    expect(await statusFrom('2001:db8::1', '/deny-all-v6/x')).toBe(403);
    expect(await statusFrom('192.0.2.1', '/deny-all-v4/x')).toBe(403);
    expect(await statusFrom('::ffff:192.0.2.1', '/deny-all-v4/x')).toBe(403);
    expect(await statusFrom('2001:db8::1', '/deny-all-v4/x')).toBe(200);
  });

  it('deny wins inside an allowed range; outside the allow list is refused; the tenant deny is replaced', async () => {
    expect(await statusFrom('198.51.100.70', '/office/x')).toBe(403);
    expect(await statusFrom('198.51.100.10', '/office/x')).toBe(200);
    expect(await statusFrom('2001:db8:1::5', '/office/x')).toBe(200);
    expect(await statusFrom('192.0.2.1', '/office/x')).toBe(403);
    // The route's own rules replace the tenant's, whose deny list holds 203.0.113.0/24.
    expect(await statusFrom('203.0.113.9', '/deny-v4/x')).toBe(200);
    expect(await statusFrom('203.0.113.9', '/tenant/x')).toBe(403);
    // Empty, they still replace the tenant's: the route is open to every address.
    expect(await statusFrom('203.0.113.9', '/open/x')).toBe(200);
  });

  it('reads X-Forwarded-For entries with spaces, ports, brackets and zone ids', async () => {
    expect(await statusFrom('  203.0.113.9  ', '/tenant/x')).toBe(403);
    expect(await statusFrom('203.0.113.9:4711', '/tenant/x')).toBe(403);
    expect(await statusFrom('[2001:db8:bad::1]:4711', '/tenant/x')).toBe(403);
    expect(await statusFrom('[2001:DB8:BAD:0:0:0:0:1]', '/tenant/x')).toBe(403);
    expect(await statusFrom('fe80::1%eth0', '/tenant/x')).toBe(403);
    expect(await statusFrom('192.0.2.1:4711', '/tenant/x')).toBe(200);
  });

  it('takes the address the last trusted proxy saw, whatever a client wrote to its left', async () => {
    // A client's own entry first (garbage, or an address in the allow list) is not its address.
    expect(await statusFrom('garbage, 203.0.113.9', '/tenant/x')).toBe(403);
    expect(await statusFrom('unknown, 203.0.113.9', '/tenant/x')).toBe(403);
    // What a proxy wrote that is no address ends the walk there: the client is the proxy it came from.
    expect(await statusFrom('203.0.113.9, unknown', '/tenant/x')).toBe(200);
    expect(await statusFrom('198.51.100.10, 192.0.2.1', '/office/x')).toBe(403);
    // A chain longer than the trusted hops: the first untrusted address from the right is the client.
    expect(await statusFrom('198.51.100.10, 203.0.113.9, 10.200.0.1, 10.200.0.2', '/tenant/x')).toBe(403);
    expect(await statusFrom('203.0.113.9, 198.51.100.10, 10.200.0.1, 10.200.0.2', '/office/x')).toBe(200);
  });

  it('reads several X-Forwarded-For lines as one list, in order', async () => {
    const lines = (first: string, second: string) =>
      Buffer.from(
        `GET /tenant/x HTTP/1.1\r\nHost: ipaddr.localhost\r\nX-Forwarded-For: ${first}\r\n` +
          `X-Forwarded-For: ${second}\r\nConnection: close\r\n\r\n`,
      );
    const refused = await rawExchange(
      gateway.gateway.trafficPort,
      lines('192.0.2.1', '203.0.113.9'),
      ['GET'],
      5_000,
    );
    expect(refused.responses[0]?.status).toBe(403);
    expect(errorCodeOf(refused.responses[0]!)).toBe('ip_denied');
    const admitted = await rawExchange(
      gateway.gateway.trafficPort,
      lines('203.0.113.9', '192.0.2.1'),
      ['GET'],
      5_000,
    );
    expect(admitted.responses[0]?.status).toBe(200);
  });

  // The client address is X-Forwarded-For's: a trusted proxy's Forwarded header is passed on, not read.
  it('does not take the client address from Forwarded', async () => {
    const answer = await send(gateway, 'ipaddr.localhost', '/tenant/x', {
      headers: { forwarded: 'for="[2001:db8:bad::1]:4711"' },
    });
    expect(answer.status).toBe(200);
    const hidden = await send(gateway, 'ipaddr.localhost', '/tenant/x', {
      headers: { forwarded: 'for=_hidden, for=unknown', 'x-forwarded-for': '203.0.113.9' },
    });
    expect(hidden.status).toBe(403);
  });

  it('refuses HTTP/2 clients the same way; several X-Forwarded-For fields are one list', async () => {
    const status = (forwardedFor: string | string[]) =>
      new Promise<number>((resolve, reject) => {
        const stream = session.request({
          [constants.HTTP2_HEADER_PATH]: '/tenant/x',
          [constants.HTTP2_HEADER_AUTHORITY]: 'ipaddr.localhost',
          'x-forwarded-for': forwardedFor,
        });
        stream.on('response', (head) => resolve(Number(head[constants.HTTP2_HEADER_STATUS])));
        stream.on('error', reject);
        stream.resume();
      });
    expect(await status('::ffff:203.0.113.9')).toBe(403);
    expect(await status('192.0.2.1')).toBe(200);
    expect(await status(['192.0.2.1', '203.0.113.9'])).toBe(403);
    expect(await status(['203.0.113.9', '192.0.2.1'])).toBe(200);
  });

  it('refuses a WebSocket upgrade from a denied address with 403 ip_denied, never forwarded', async () => {
    const seen = origin.seen.length;
    const refused = await sendUpgrade(gateway, 'ipaddr.localhost', '/tenant/ws', {
      'x-forwarded-for': '203.0.113.9',
    });
    expect(refused.status).toBe(403);
    expect(JSON.parse(refused.text).error).toMatchObject({ code: 'ip_denied' });
    expect(origin.seen.length).toBe(seen);
  });
});
