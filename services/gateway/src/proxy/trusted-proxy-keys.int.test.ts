import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { sendUpgrade } from '../testing/upgrade-request.js';

/**
 * True-Client-IP, CF-Connecting-IP, X-Forwarded-Ssl and the like reach an origin only from a trusted
 * proxy (GATEWAY_TRUSTED_PROXIES); from any other client the gateway drops them. A route's match
 * condition, split key or hash key on one reads the request as the origin gets it.
 */
describe('route keys on headers kept only from a trusted proxy', () => {
  let direct: TestGateway;
  let behindProxy: TestGateway;
  const origins: TestOrigin[] = [];

  beforeAll(async () => {
    for (const name of ['plain', 'office', 'h1', 'h2', 'h3', 'h4']) origins.push(await startTestOrigin(name));
    direct = await startTestGateway();
    // The test client connects from 127.0.0.1: to this gateway it is a trusted proxy.
    behindProxy = await startTestGateway({ GATEWAY_TRUSTED_PROXIES: '127.0.0.1/32' });
    const [plainId, officeId, hashedId] = [randomUUID(), randomUUID(), randomUUID()];
    const snapshot = buildSnapshot({
      subdomain: 'proxied',
      origins: [
        { id: plainId, targets: [origins[0]!.url] },
        { id: officeId, targets: [origins[1]!.url] },
        {
          id: hashedId,
          targets: origins.slice(2).map((origin) => origin.url),
          load_balancing: { algorithm: 'consistent_hash', hash_on: 'header', hash_key: 'True-Client-IP' },
        },
      ],
      routes: [
        {
          origin_id: officeId,
          path_pattern: '/office/*',
          priority: 10,
          match: { headers: [{ name: 'CF-Connecting-IP', prefix: '10.' }] },
        },
        { origin_id: plainId, path_pattern: '/office/*' },
        {
          origin_id: plainId,
          path_pattern: '/split/*',
          traffic_split: {
            origins: [
              { origin_id: plainId, weight: 1 },
              { origin_id: officeId, weight: 0 },
            ],
            overrides: [{ header: 'true_client_ip', value: '10.0.0.1', origin_id: officeId }],
          },
        },
        { origin_id: hashedId, path_pattern: '/hashed/*' },
        // The route writes the header itself: its value reaches the origin from every client.
        {
          origin_id: plainId,
          path_pattern: '/stamped/*',
          // biome-ignore lint/suspicious/noTemplateCurlyInString: ${…} is the route policies' value-template syntax
          request_headers: { set: { 'True-Client-IP': '${client_ip}' } },
          traffic_split: {
            origins: [
              { origin_id: plainId, weight: 1 },
              { origin_id: officeId, weight: 1 },
            ],
            sticky: { header: 'True-Client-IP' },
          },
        },
        {
          origin_id: hashedId,
          path_pattern: '/hashed-stamped/*',
          request_headers: { set: { 'True-Client-IP': 'shard-1' } },
        },
      ],
    });
    direct.store.apply(snapshot);
    behindProxy.store.apply(snapshot);
  });

  afterAll(async () => {
    await direct?.close();
    await behindProxy?.close();
    for (const origin of origins) await origin.close();
  });

  const originOf = async (gateway: TestGateway, path: string, headers: Record<string, string>) =>
    (await send(gateway, 'proxied.localhost', path, { headers })).json()['origin'];

  // Regression: a client's own CF-Connecting-IP or True-Client-IP (which the gateway drops: the origin
  // never sees it) chose the route meant for an office's addresses, and the split's origin.
  it('never lets a client that is no trusted proxy choose a route or split origin by its copy', async () => {
    expect(await originOf(direct, '/office/a', { 'cf-connecting-ip': '10.1.2.3' })).toBe('plain');
    expect(await originOf(direct, '/split/a', { 'true-client-ip': '10.0.0.1' })).toBe('plain');
    // A trusted proxy's header reaches the origin, and so decides as written.
    expect(await originOf(behindProxy, '/office/a', { 'cf-connecting-ip': '10.1.2.3' })).toBe('office');
    expect(await originOf(behindProxy, '/office/a', { 'cf-connecting-ip': '192.0.2.1' })).toBe('plain');
    expect(await originOf(behindProxy, '/split/a', { 'true-client-ip': '10.0.0.1' })).toBe('office');
    // Only its line of that very name: the gateway drops a trusted proxy's `_` spelling too.
    expect(await originOf(behindProxy, '/split/a', { true_client_ip: '10.0.0.1' })).toBe('plain');
  });

  it('chooses a WebSocket upgrade’s route the same way', async () => {
    const upgradeOrigin = async (gateway: TestGateway, headers: Record<string, string>) =>
      (await sendUpgrade(gateway, 'proxied.localhost', '/office/ws', headers)).headers['x-origin'];
    expect(await upgradeOrigin(direct, { 'cf-connecting-ip': '10.1.2.3' })).toBe('plain');
    expect(await upgradeOrigin(behindProxy, { 'cf-connecting-ip': '10.1.2.3' })).toBe('office');
    expect(await upgradeOrigin(behindProxy, { cf_connecting_ip: '10.1.2.3' })).toBe('plain');
  });

  // Regression: a client hashed on a dropped True-Client-IP chose its target by the value it wrote.
  it('hashes a client that is no trusted proxy on its address, whatever True-Client-IP it writes', async () => {
    const targets = async (gateway: TestGateway) => {
      const seen = new Set<unknown>();
      for (let i = 0; i < 24; i++)
        seen.add(await originOf(gateway, '/hashed/a', { 'true-client-ip': `198.51.100.${i}` }));
      return seen;
    };
    expect((await targets(direct)).size).toBe(1);
    expect((await targets(behindProxy)).size).toBeGreaterThan(1);
  });

  // Regression: a split sticky on, or a hash_key naming, a header the route's request_headers write
  // (which the origin gets from every client) read none from a client that is no trusted proxy: the
  // split went round robin, the hash spread one `shard-1` over every target by client address.
  it('reads a header the route’s own transform writes from every client, as the origin gets it', async () => {
    for (const gateway of [direct, behindProxy]) {
      const stamped = [];
      for (let i = 0; i < 6; i++)
        stamped.push((await send(gateway, 'proxied.localhost', '/stamped/a', { headers: {} })).json());
      expect(new Set(stamped.map((seen) => seen['origin'])).size).toBe(1);
      expect((stamped[0]!['headers'] as Record<string, unknown>)['true-client-ip']).toBe('127.0.0.1');
      const hashed = new Set<unknown>();
      for (let i = 1; i <= 24; i++) {
        const answer = await send(gateway, 'proxied.localhost', '/hashed-stamped/a', {
          headers: { 'true-client-ip': `198.51.100.${i}` },
          localAddress: `127.0.0.${i}`,
        });
        hashed.add(answer.json()['origin']);
      }
      expect(hashed.size).toBe(1);
    }
  });
});
