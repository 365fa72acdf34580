import { randomUUID } from 'node:crypto';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import net from 'node:net';
import { eventually } from '@vantageedge/shared/snapshot-bus/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * A tenant's open origin sockets, busy and idle, stay within GATEWAY_MAX_UPSTREAM_REQUESTS_PER_TENANT.
 * Regression test: only requests in flight were bounded, so a tenant bursting to its limit at one target,
 * then at the next, and so on (it may have 1,000), left each target's pool holding its sockets idle for
 * the keep-alive time: the replica held the limit times the targets of the tenant's sockets (file
 * descriptors), which ran out for every tenant.
 */
const LIMIT = 4;
const TARGETS = 3;
const HOG = 'hog.localhost';
const OTHER = 'other.localhost';
const STALL = 'stall.localhost';

/** An origin that holds every request until `answerAll`, and counts the sockets open to it. */
interface GatedOrigin {
  url: string;
  readonly open: Set<Socket>;
  readonly waiting: ServerResponse[];
  answerAll(): void;
  close(): Promise<void>;
}

async function startGatedOrigin(): Promise<GatedOrigin> {
  const open = new Set<Socket>();
  const waiting: ServerResponse[] = [];
  const server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    req.resume();
    waiting.push(res);
  });
  server.on('connection', (socket: Socket) => {
    open.add(socket);
    socket.on('close', () => open.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    open,
    waiting,
    answerAll() {
      for (const res of waiting.splice(0)) res.end('ok');
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** An https origin that accepts TCP and never answers the ClientHello: each connect to it hangs. */
interface SilentTlsOrigin {
  url: string;
  readonly open: Set<Socket>;
  close(): Promise<void>;
}

async function startSilentTlsOrigin(): Promise<SilentTlsOrigin> {
  const open = new Set<Socket>();
  const server = net.createServer((socket) => {
    open.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => open.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    open,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of open) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

let gateway: TestGateway;
let stallOrigins: SilentTlsOrigin[];
let hogOrigins: GatedOrigin[];
let otherOrigin: GatedOrigin;

beforeAll(async () => {
  hogOrigins = await Promise.all(Array.from({ length: TARGETS }, () => startGatedOrigin()));
  otherOrigin = await startGatedOrigin();
  stallOrigins = await Promise.all(Array.from({ length: TARGETS }, () => startSilentTlsOrigin()));
  gateway = await startTestGateway({ GATEWAY_MAX_UPSTREAM_REQUESTS_PER_TENANT: String(LIMIT) });
  const ids = hogOrigins.map(() => randomUUID());
  gateway.store.apply(
    buildSnapshot({
      subdomain: 'hog',
      origins: hogOrigins.map((origin, index) => ({ id: ids[index]!, targets: [origin.url] })),
      routes: ids.map((id, index) => ({ origin_id: id, path_pattern: `/t${index}/*` })),
    }),
  );
  const stallIds = stallOrigins.map(() => randomUUID());
  gateway.store.apply(
    buildSnapshot({
      subdomain: 'stall',
      origins: stallOrigins.map((origin, index) => ({
        id: stallIds[index]!,
        targets: [origin.url],
        timeout_seconds: 30,
        health_check: { active: { enabled: false }, passive: { enabled: false } },
        circuit_breaker: { enabled: false },
      })),
      routes: stallIds.map((id, index) => ({ origin_id: id, path_pattern: `/t${index}/*` })),
    }),
  );
  const otherId = randomUUID();
  gateway.store.apply(
    buildSnapshot({
      subdomain: 'other',
      origins: [{ id: otherId, targets: [otherOrigin.url] }],
      routes: [{ origin_id: otherId, path_pattern: '/*' }],
    }),
  );
});

afterAll(async () => {
  await gateway?.close();
  await Promise.all(
    [...(hogOrigins ?? []), ...(stallOrigins ?? []), otherOrigin].map((origin) => origin?.close()),
  );
});

/** LIMIT requests at once to `origin` (each on its own socket), answered once all arrived. */
async function burst(host: string, origin: GatedOrigin, path: string): Promise<void> {
  const answers = Array.from({ length: LIMIT }, () => send(gateway, host, path));
  await eventually('the burst reaches the origin', () => origin.waiting.length === LIMIT, 10_000);
  origin.answerAll();
  for (const answer of await Promise.all(answers)) expect(answer.status).toBe(200);
}

const hogSockets = () => hogOrigins.reduce((sum, origin) => sum + origin.open.size, 0);

/** The gateway closes sockets asynchronously: a moment to do so, then the count. */
async function expectWithinLimit(): Promise<void> {
  await eventually('the tenant’s sockets are within its limit', () => hogSockets() <= LIMIT, 2_000).catch(
    () => {},
  );
  expect(hogSockets(), 'sockets open to the tenant’s origins').toBeLessThanOrEqual(LIMIT);
}

describe('one tenant’s sockets to its origins', () => {
  it('stay within its limit when it bursts to one target after another, oldest idle ones closed first; another tenant’s are kept', async () => {
    // The other tenant's request leaves it one idle socket.
    const otherAnswer = send(gateway, OTHER, '/x');
    await eventually('the other tenant’s request arrives', () => otherOrigin.waiting.length === 1, 10_000);
    otherOrigin.answerAll();
    expect((await otherAnswer).status).toBe(200);

    for (let index = 0; index < TARGETS; index += 1) {
      await burst(HOG, hogOrigins[index]!, `/t${index}/x`);
      await expectWithinLimit();
    }
    // The sockets kept are those of the last burst (the oldest idle ones went first).
    expect(hogOrigins.at(-1)!.open.size).toBe(LIMIT);
    expect(otherOrigin.open.size).toBe(1);

    // Every target is still served: the idle sockets closed were replaced by new ones.
    await burst(HOG, hogOrigins[0]!, '/t0/again');
    await expectWithinLimit();
  });

  it('stay within twice its limit while its clients abort requests to targets whose connects never complete; past it 503, another tenant served', async () => {
    const stalled = () => stallOrigins.reduce((sum, origin) => sum + origin.open.size, 0);
    // Each request is aborted as soon as its connect to the origin has started: its in-flight slot is
    // free at once, while the connect would run on for the 30 s connect timeout.
    for (let index = 0; index < 6 * LIMIT; index += 1) {
      const before = stalled();
      const client = net.connect(gateway.gateway.trafficPort, '127.0.0.1');
      client.on('error', () => {});
      client.write(`GET /t${index % TARGETS}/x HTTP/1.1\r\nhost: ${STALL}\r\n\r\n`);
      await eventually('the connect starts, or is refused', () => stalled() > before, 200).catch(() => {});
      client.destroy();
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(stalled(), 'connects pending to the tenant’s origins').toBeLessThanOrEqual(2 * LIMIT);

    const refused = await send(gateway, STALL, '/t0/refused');
    expect(refused.status).toBe(503);
    expect(refused.json().error).toMatchObject({ code: 'tenant_upstream_limit' });
    expect(refused.headers['retry-after']).toBe('1');

    const otherAnswer = send(gateway, OTHER, '/after-stall');
    await eventually('the other tenant’s request arrives', () => otherOrigin.waiting.length === 1, 10_000);
    otherOrigin.answerAll();
    expect((await otherAnswer).status).toBe(200);
  });
});
