import net from 'node:net';
import { eventually } from '@vantageedge/shared/snapshot-bus/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { applyOneOriginTenant } from '../testing/one-origin-tenants.js';
import { rawExchange } from '../testing/raw-exchange.js';
import { onRequestHeads } from '../testing/request-heads.js';
import { MAX_ANSWER_HEADER_LINES } from '../upstream/unasked-continue.js';
import type { InspectableUpstreamSet } from '../upstream/upstream-set.js';

/**
 * Regression tests: an answer the origin cut after its head had gone out to the client (a reset in the
 * middle of the body, a body shorter than its length, a malformed chunk, a trailer section past the
 * bounds, a body that stopped coming until the timeout) was released as `response <status>`, a success,
 * for passive health and the circuit; a half-open circuit closed on such an answer's head. A target that
 * sends good heads and then cuts every body kept all its traffic. Answers the client or the gateway's
 * own client-side limits cut must still count for nothing against the origin.
 *
 * Each origin here ejects its target and opens its circuit on the first failure, so one ending counted
 * either way shows.
 */
const BIG_BODY_BYTES = 32 * 1024 * 1024;
const answers: Record<string, (socket: net.Socket) => void> = {
  '/ok': (socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nhealthy'),
  '/reset-mid-body': (socket) => {
    socket.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf!');
    setTimeout(() => socket.resetAndDestroy(), 50);
  },
  '/short-body': (socket) => {
    socket.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf!');
    setTimeout(() => socket.end(), 50);
  },
  '/bad-chunk': (socket) => {
    socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
    setTimeout(() => socket.write('zz\r\nworld\r\n0\r\n\r\n'), 50);
  },
  '/trailer-flood': (socket) => {
    socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
    setTimeout(() => socket.write(`0\r\n${'x: v\r\n'.repeat(MAX_ANSWER_HEADER_LINES + 1)}\r\n`), 50);
  },
  // The rest of the body never comes: cut at the origin's timeout (1 s here).
  '/stalled-body': (socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf!'),
  '/stream': (socket) => socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n'),
  // An origin with a send timeout (nginx's send_timeout, Apache's Timeout): it gives up on a reader that
  // takes nothing of its answer for a while (here 300 ms), as the gateway is while its client reads nothing.
  '/download-to-give-up-on': (socket) => {
    socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${BIG_BODY_BYTES}\r\n\r\n`);
    if (socket.write(Buffer.alloc(BIG_BODY_BYTES, 0x61))) return;
    const giveUp = setTimeout(() => socket.destroy(), 300);
    socket.once('drain', () => clearTimeout(giveUp));
  },
  // A burst larger than every buffer towards the client, then the cut: the gateway pauses the origin
  // for its client again and again, each time only as long as a reading client takes to drain it.
  '/burst-then-reset': (socket) => {
    socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${BIG_BODY_BYTES}\r\n\r\n`);
    socket.write(Buffer.alloc(BIG_BODY_BYTES / 4, 0x61), () => socket.resetAndDestroy());
  },
  '/download': (socket) => {
    socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${BIG_BODY_BYTES}\r\n\r\n`);
    socket.write(Buffer.alloc(BIG_BODY_BYTES, 0x61));
  },
};

let gateway: TestGateway;
let origin: net.Server;
const originSockets = new Set<net.Socket>();

beforeAll(async () => {
  origin = net.createServer((socket) => {
    originSockets.add(socket);
    socket.on('close', () => originSockets.delete(socket));
    onRequestHeads(socket, (_head, path) => answers[path]?.(socket));
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  gateway = await startTestGateway();
});

afterAll(async () => {
  await gateway?.close();
  for (const socket of originSockets) socket.destroy();
  await new Promise<void>((resolve) => origin.close(() => resolve()));
});

/**
 * A tenant of its own (fresh health and circuit) whose target fails on its first failure, and stays so.
 * `timeoutSeconds`: the origin's timeout, which is also how long a client may read nothing.
 */
function tenantWithFragileOrigin(
  subdomain: string,
  timeoutSeconds = 1,
  failuresInARow = 1,
): () => InspectableUpstreamSet {
  return applyOneOriginTenant(
    gateway,
    subdomain,
    {
      targets: [`http://127.0.0.1:${(origin.address() as net.AddressInfo).port}`],
      timeout_seconds: timeoutSeconds,
      circuit_breaker: { consecutive_failures: failuresInARow, open_seconds: 60 },
      health_check: { active: { enabled: false }, passive: { unhealthy_threshold: failuresInARow } },
    },
    [{ path_pattern: '/download', timeouts: { idle_ms: 300 } }, { path_pattern: '/*' }],
  );
}

const released = (upstreams: () => InspectableUpstreamSet) =>
  eventually('every lease is released', () => upstreams().status()[0]?.in_flight === 0, 5_000);

/** A client that reads nothing of a large download for 2 s, so the origin gives up on it, then reads. */
async function holdBackUntilTheOriginGivesUp(subdomain: string, upstreams: () => InspectableUpstreamSet) {
  const socket = net.connect(gateway.gateway.trafficPort, '127.0.0.1');
  socket.on('error', () => {});
  socket.write(`GET /download-to-give-up-on HTTP/1.1\r\nHost: ${subdomain}.localhost\r\n\r\n`);
  socket.pause();
  await eventually('the download started', () => upstreams().status()[0]?.in_flight === 1, 5_000);
  // Past the origin's patience, within the gateway's: then the client reads what there is.
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('data', () => {});
  socket.resume();
  await closed;
  await released(upstreams);
}

/** A request whose answer the origin resets in the middle of its body, from a client that reads it all. */
async function resetMidBody(subdomain: string, upstreams: () => InspectableUpstreamSet) {
  const exchange = await rawExchange(
    gateway.gateway.trafficPort,
    Buffer.from(`GET /reset-mid-body HTTP/1.1\r\nHost: ${subdomain}.localhost\r\n\r\n`),
    ['GET'],
    5_000,
  );
  // The answer's head went out and then the connection was cut (a whole answer here, or none, would be
  // a refusal: the circuit open, say).
  const firstLine =
    exchange.responses[0]?.statusLine ?? exchange.unread.slice(0, exchange.unread.indexOf('\r\n'));
  expect({ closed: exchange.closed, firstLine }).toEqual({ closed: true, firstLine: 'HTTP/1.1 200 OK' });
  await released(upstreams);
}

describe('an answer the origin cuts after its head went out', () => {
  it.each([
    ['reset in the middle of its body', '/reset-mid-body'],
    ['a body shorter than its Content-Length', '/short-body'],
    ['a malformed chunk', '/bad-chunk'],
    ['a trailer section of more than MAX_ANSWER_HEADER_LINES lines', '/trailer-flood'],
    ['a body that stops coming until the origin timeout', '/stalled-body'],
    ['a reset after a burst that kept the gateway pausing it for its client', '/burst-then-reset'],
  ])(
    '%s: the client gets the head, then the cut; the target is ejected and its circuit opens',
    async (_what, path) => {
      const subdomain = `cut-${path.slice(1)}`;
      const upstreams = tenantWithFragileOrigin(subdomain);
      const exchange = await rawExchange(
        gateway.gateway.trafficPort,
        Buffer.from(`GET ${path} HTTP/1.1\r\nHost: ${subdomain}.localhost\r\n\r\n`),
        ['GET'],
        5_000,
      );
      expect(exchange.unread.startsWith('HTTP/1.1 200 OK\r\n')).toBe(true);
      expect(exchange.closed).toBe(true);
      await released(upstreams);
      expect(upstreams().status()[0]).toMatchObject({ healthy: false, circuit: 'open' });
      const after = await send(gateway, `${subdomain}.localhost`, '/ok');
      expect(after.status).toBe(503);
    },
  );
});

describe('an answer the client or the gateway cuts is not held against the origin', () => {
  it('a client leaving in the middle of the body', async () => {
    const upstreams = tenantWithFragileOrigin('cut-by-client');
    for (let i = 0; i < 3; i++) {
      const socket = net.connect(gateway.gateway.trafficPort, '127.0.0.1');
      socket.on('error', () => {});
      const firstBytes = new Promise<void>((resolve) => {
        let received = '';
        socket.on('data', (chunk: Buffer) => {
          received += chunk.toString('latin1');
          if (received.includes('first')) resolve();
        });
      });
      socket.write('GET /stream HTTP/1.1\r\nHost: cut-by-client.localhost\r\n\r\n');
      await firstBytes;
      socket.destroy();
      await released(upstreams);
    }
    expect(upstreams().status()[0]).toMatchObject({ healthy: true, circuit: 'closed' });
    const after = await send(gateway, 'cut-by-client.localhost', '/ok');
    expect({ status: after.status, text: after.text }).toEqual({ status: 200, text: 'healthy' });
  });

  it('a client reading nothing of a large body, cut off by the gateway after the idle timeout', async () => {
    const upstreams = tenantWithFragileOrigin('cut-slow-reader');
    const socket = net.connect(gateway.gateway.trafficPort, '127.0.0.1');
    socket.on('error', () => {});
    socket.write('GET /download HTTP/1.1\r\nHost: cut-slow-reader.localhost\r\n\r\n');
    socket.pause();
    await eventually('the download started', () => upstreams().status()[0]?.in_flight === 1, 5_000);
    await released(upstreams);
    socket.destroy();
    expect(upstreams().status()[0]).toMatchObject({ healthy: true, circuit: 'closed' });
    const after = await send(gateway, 'cut-slow-reader.localhost', '/ok');
    expect({ status: after.status, text: after.text }).toEqual({ status: 200, text: 'healthy' });
  });

  it('regression: an origin giving up on a client that read nothing for a while (its send timeout)', async () => {
    const upstreams = tenantWithFragileOrigin('cut-origin-gave-up', 10);
    await holdBackUntilTheOriginGivesUp('cut-origin-gave-up', upstreams);
    expect(upstreams().status()[0]).toMatchObject({ healthy: true, circuit: 'closed' });
    const after = await send(gateway, 'cut-origin-gave-up.localhost', '/ok');
    expect({ status: after.status, text: after.text }).toEqual({ status: 200, text: 'healthy' });
  });

  it('regression: nor for it: a slow reader between two cuts leaves them two failures in a row', async () => {
    const subdomain = 'cut-around-slow-reader';
    const upstreams = tenantWithFragileOrigin(subdomain, 10, 2);
    await resetMidBody(subdomain, upstreams);
    await holdBackUntilTheOriginGivesUp(subdomain, upstreams);
    await resetMidBody(subdomain, upstreams);
    expect(upstreams().status()[0]).toMatchObject({ healthy: false, circuit: 'open' });
    const after = await send(gateway, `${subdomain}.localhost`, '/ok');
    expect(after.status).toBe(503);
  });
});
