import { randomUUID } from 'node:crypto';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
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

let gateway: TestGateway;
let hogOrigins: GatedOrigin[];
let otherOrigin: GatedOrigin;

beforeAll(async () => {
  hogOrigins = await Promise.all(Array.from({ length: TARGETS }, () => startGatedOrigin()));
  otherOrigin = await startGatedOrigin();
  gateway = await startTestGateway({ GATEWAY_MAX_UPSTREAM_REQUESTS_PER_TENANT: String(LIMIT) });
  const ids = hogOrigins.map(() => randomUUID());
  gateway.store.apply(
    buildSnapshot({
      subdomain: 'hog',
      origins: hogOrigins.map((origin, index) => ({ id: ids[index]!, targets: [origin.url] })),
      routes: ids.map((id, index) => ({ origin_id: id, path_pattern: `/t${index}/*` })),
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
  await Promise.all([...(hogOrigins ?? []), otherOrigin].map((origin) => origin?.close()));
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
});
