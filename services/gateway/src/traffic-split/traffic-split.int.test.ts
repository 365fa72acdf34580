import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { rawExchange } from '../testing/raw-exchange.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * Traffic split through the real pipeline: weights, stickiness by header or cookie, header overrides,
 * and an origin without an available target falling back to the others.
 */
describe('traffic split route policy', () => {
  let gateway: TestGateway;
  let stable: TestOrigin;
  let canary: TestOrigin;

  beforeAll(async () => {
    stable = await startTestOrigin('stable');
    canary = await startTestOrigin('canary');
    gateway = await startTestGateway();
    const stableId = randomUUID();
    const canaryId = randomUUID();
    const deadId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'split',
        origins: [
          { id: stableId, targets: [stable.url] },
          { id: canaryId, targets: [canary.url] },
          { id: deadId, targets: ['http://127.0.0.1:9'] },
        ],
        routes: [
          {
            origin_id: stableId,
            path_pattern: '/weighted/*',
            traffic_split: {
              origins: [
                { origin_id: stableId, weight: 95 },
                { origin_id: canaryId, weight: 5 },
              ],
              overrides: [{ header: 'x-canary', value: 'always', origin_id: canaryId }],
            },
          },
          {
            origin_id: stableId,
            path_pattern: '/sticky/*',
            traffic_split: {
              origins: [
                { origin_id: stableId, weight: 50 },
                { origin_id: canaryId, weight: 50 },
              ],
              sticky: { cookie: 'session' },
            },
          },
          // The transform adds a Cookie line to the client's: the split reads a Cookie array.
          {
            origin_id: stableId,
            path_pattern: '/sticky-added/*',
            request_headers: { add: { cookie: 'gw=1' } },
            traffic_split: {
              origins: [
                { origin_id: stableId, weight: 50 },
                { origin_id: canaryId, weight: 50 },
              ],
              sticky: { cookie: 'session' },
              overrides: [{ cookie: 'canary', value: 'yes', origin_id: canaryId }],
            },
          },
          // A sticky and override header name that every object has as an inherited property (`{}.constructor`).
          {
            origin_id: stableId,
            path_pattern: '/sticky-inherited/*',
            traffic_split: {
              origins: [
                { origin_id: stableId, weight: 50 },
                { origin_id: canaryId, weight: 50 },
              ],
              sticky: { header: 'constructor' },
              overrides: [{ header: 'constructor', value: 'always', origin_id: canaryId }],
            },
          },
          // Stored before commands refused it: overrides on headers the gateway writes for the origin.
          {
            origin_id: stableId,
            path_pattern: '/stored-identity/*',
            traffic_split: {
              origins: [
                { origin_id: stableId, weight: 1 },
                { origin_id: canaryId, weight: 0 },
              ],
              overrides: [
                { header: 'X-VantageEdge-Auth-Kind', value: 'service', origin_id: canaryId },
                { header: 'x_real_ip', value: '10.0.0.1', origin_id: canaryId },
                { header: 'x-internal', value: 'yes', origin_id: canaryId },
              ],
            },
          },
          // "voilà" as a gateway reads a UTF-8 client's bytes (Latin-1): it ends in U+00A0.
          {
            origin_id: stableId,
            path_pattern: '/cookie-override/*',
            traffic_split: {
              origins: [
                { origin_id: stableId, weight: 1 },
                { origin_id: canaryId, weight: 0 },
              ],
              overrides: [{ cookie: 'lang', value: 'voil\u00c3\u00a0', origin_id: canaryId }],
            },
          },
          {
            origin_id: deadId,
            path_pattern: '/fallback/*',
            traffic_split: {
              origins: [
                { origin_id: deadId, weight: 99 },
                { origin_id: stableId, weight: 1 },
              ],
            },
          },
        ],
      }),
    );
  });

  afterAll(async () => {
    await gateway?.close();
    await stable?.close();
    await canary?.close();
  });

  const originOf = (answer: { json: () => Record<string, unknown> }) => answer.json()['origin'];

  it('splits by weight: 95/5 over 200 requests', async () => {
    const counts = new Map<unknown, number>();
    for (let i = 0; i < 200; i++) {
      const origin = originOf(await send(gateway, 'split.localhost', `/weighted/${i}`));
      counts.set(origin, (counts.get(origin) ?? 0) + 1);
    }
    expect(counts.get('stable')).toBe(190);
    expect(counts.get('canary')).toBe(10);
  });

  it('sends a cookie override whose value a UTF-8 client sends to its origin, the last byte 0xA0 included', async () => {
    const answer = await rawExchange(
      gateway.gateway.trafficPort,
      Buffer.concat([
        Buffer.from('GET /cookie-override/x HTTP/1.1\r\nHost: split.localhost\r\nCookie: lang='),
        Buffer.from('voilà', 'utf8'),
        Buffer.from('; theme=dark\r\nConnection: close\r\n\r\n'),
      ]),
      ['GET'],
      5_000,
    );
    expect(JSON.parse(answer.responses[0]!.body)['origin']).toBe('canary');
  });

  it('sends x-canary: always to the canary, whatever the weights', async () => {
    for (let i = 0; i < 10; i++) {
      const answer = await send(gateway, 'split.localhost', `/weighted/o${i}`, {
        headers: { 'x-canary': 'always' },
      });
      expect(originOf(answer)).toBe('canary');
    }
  });

  it('keeps a session cookie on one origin, and spreads sessions over both', async () => {
    const seen = new Set<unknown>();
    for (let session = 0; session < 20; session++) {
      const cookie = `theme=dark; session=s-${session}`;
      const first = originOf(await send(gateway, 'split.localhost', '/sticky/a', { headers: { cookie } }));
      for (let again = 0; again < 3; again++) {
        const next = await send(gateway, 'split.localhost', `/sticky/${again}`, { headers: { cookie } });
        expect(originOf(next)).toBe(first);
      }
      seen.add(first);
    }
    expect(seen).toEqual(new Set(['stable', 'canary']));
  });

  it('regression: reads the cookie when the route adds a Cookie line (an array), instead of answering 500', async () => {
    const seen = new Set<unknown>();
    for (let session = 0; session < 10; session++) {
      const cookie = `session=s-${session}`;
      const plain = originOf(await send(gateway, 'split.localhost', '/sticky/a', { headers: { cookie } }));
      for (let again = 0; again < 2; again++) {
        const answer = await send(gateway, 'split.localhost', `/sticky-added/${again}`, {
          headers: { cookie },
        });
        expect(answer.status).toBe(200);
        // The same session goes where it goes on a route without the added line.
        expect(originOf(answer)).toBe(plain);
      }
      seen.add(plain);
    }
    expect(seen).toEqual(new Set(['stable', 'canary']));
    for (let i = 0; i < 5; i++) {
      const answer = await send(gateway, 'split.localhost', `/sticky-added/o${i}`, {
        headers: { cookie: `session=s-${i}; canary=yes` },
      });
      expect(answer.status).toBe(200);
      expect(originOf(answer)).toBe('canary');
    }
    expect(String(canary.seen.at(-1)?.headers.cookie)).toContain('gw=1');
  });

  // Regression: the split read the sticky header by name from the request's headers object, inherited
  // properties included: `constructor` is a function, whose hash threw, so every request answered 500.
  it('reads only the headers the client sent for sticky and override headers, whatever their names', async () => {
    const seen = new Set<unknown>();
    for (let i = 0; i < 20; i++) {
      const answer = await send(gateway, 'split.localhost', '/sticky-inherited/a');
      expect(answer.status).toBe(200);
      seen.add(originOf(answer));
    }
    expect(seen).toEqual(new Set(['stable', 'canary'])); // no header: weighted round robin
    const pinned = await send(gateway, 'split.localhost', '/sticky-inherited/a', {
      headers: { constructor: 'user-1' },
    });
    expect(pinned.status).toBe(200);
    const again = await send(gateway, 'split.localhost', '/sticky-inherited/a', {
      headers: { constructor: 'user-1' },
    });
    expect(originOf(again)).toBe(originOf(pinned));
    const forced = await send(gateway, 'split.localhost', '/sticky-inherited/a', {
      headers: { constructor: 'always' },
    });
    expect(originOf(forced)).toBe('canary');
  });

  it('never lets a client pick an origin with its copy of a header the gateway writes, on a route stored before commands refused it', async () => {
    for (const headers of [{ 'x-vantageedge-auth-kind': 'service' }, { x_real_ip: '10.0.0.1' }]) {
      const answer = await send(gateway, 'split.localhost', '/stored-identity/a', { headers });
      expect(answer.status).toBe(200);
      expect(originOf(answer)).toBe('stable');
    }
    // The route's other overrides still apply.
    const internal = await send(gateway, 'split.localhost', '/stored-identity/a', {
      headers: { 'x-internal': 'yes' },
    });
    expect(originOf(internal)).toBe('canary');
  });

  it('falls back to the other origin when the chosen one has no available target', async () => {
    // The dead origin's only target is ejected after its failures (passive checks); from then on the
    // split's other origin serves every request.
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++)
      statuses.push((await send(gateway, 'split.localhost', `/fallback/${i}`)).status);
    expect(statuses.slice(-5)).toEqual([200, 200, 200, 200, 200]);
  });
});

/**
 * Regression: once a split route falls back (its chosen origin has no available target), every attempt
 * of the request belongs to the origin that took it: a retry goes to that origin's other targets (it
 * went back to the origin without targets: 502), and the attempt runs with that origin's timeout_seconds
 * (it ran with the first origin's: 504).
 */
describe('traffic split fallback: the origin fallen back to serves every attempt', () => {
  let gateway: TestGateway;
  const servers: Server[] = [];
  let healthyHits = 0;

  async function listen(server: Server): Promise<string> {
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  beforeAll(async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const resetting = await listen(createServer((req) => req.socket.destroy()));
    const healthy = await listen(
      createServer((req, res) => {
        healthyHits++;
        req.resume();
        res.end('healthy');
      }),
    );
    // Answers after 1.5 s: within its own origin's 10 s, past the dead origin's 1 s.
    const slow = await listen(
      createServer((req, res) => {
        req.resume();
        setTimeout(() => res.end('slow'), 1500);
      }),
    );
    gateway = await startTestGateway();
    const dead = randomUUID();
    const pair = randomUUID();
    const patient = randomUUID();
    const noHealth = { active: { enabled: false }, passive: { enabled: false } };
    const retries = {
      attempts: 3,
      on: ['connect_error', 'reset', '503'],
      backoff: { base_ms: 0, max_ms: 0 },
    };
    const split = (other: string) => ({
      origins: [
        { origin_id: dead, weight: 1000 },
        { origin_id: other, weight: 1 },
      ],
    });
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'fallback',
        origins: [
          {
            id: dead,
            targets: [closedUrl],
            timeout_seconds: 1,
            health_check: noHealth,
            circuit_breaker: { consecutive_failures: 1, open_seconds: 600 },
          },
          {
            id: pair,
            targets: [resetting, healthy],
            health_check: noHealth,
            circuit_breaker: { enabled: false },
          },
          { id: patient, targets: [slow], timeout_seconds: 10, health_check: noHealth },
        ],
        routes: [
          { origin_id: dead, path_pattern: '/open/*' },
          { origin_id: dead, path_pattern: '/retry/*', retries, traffic_split: split(pair) },
          { origin_id: dead, path_pattern: '/slow/*', traffic_split: split(patient) },
          { origin_id: dead, path_pattern: '/slow-retries/*', retries, traffic_split: split(patient) },
          {
            origin_id: dead,
            path_pattern: '/forced/*',
            retries,
            traffic_split: {
              ...split(pair),
              overrides: [{ header: 'x-origin', value: 'dead', origin_id: dead }],
            },
          },
        ],
      }),
    );
    // One connect error opens the dead origin's only circuit: from now on every split falls back.
    expect((await send(gateway, 'fallback.localhost', '/open/x')).status).toBe(502);
  });

  afterAll(async () => {
    await gateway?.close();
    for (const server of servers) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('retries a reset on the fallback origin’s other target, not on the origin without targets', async () => {
    // The fallback origin's round robin alternates its two targets: some requests meet the reset first.
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++)
      statuses.push((await send(gateway, 'fallback.localhost', `/retry/${i}`)).status);
    expect(statuses).toEqual([200, 200, 200, 200]);
    expect(healthyHits).toBe(4);
  });

  it('answers 503 to an override naming the origin without targets, instead of sending it elsewhere', async () => {
    const forced = await send(gateway, 'fallback.localhost', '/forced/a', {
      headers: { 'x-origin': 'dead' },
    });
    expect(forced.status).toBe(503);
    expect(forced.json()['error']).toMatchObject({ code: 'no_healthy_upstream' });
    expect((await send(gateway, 'fallback.localhost', '/forced/a')).status).toBe(200);
  });

  it('gives the fallback target its own origin’s timeout, without and with a retry policy', async () => {
    const answers: string[] = [];
    for (const path of ['/slow/a', '/slow-retries/a']) {
      const answer = await send(gateway, 'fallback.localhost', path);
      answers.push(`${path} ${answer.status} ${answer.status === 200 ? answer.text : answer.text}`);
    }
    expect(answers).toEqual(['/slow/a 200 slow', '/slow-retries/a 200 slow']);
  });
});
