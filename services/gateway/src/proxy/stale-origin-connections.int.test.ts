import type net from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { counted, send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { type RawOrigin, startRawOrigin } from '../testing/raw-origins.js';
import { tenantRoutingAllTo } from '../testing/snapshots.js';

/**
 * The keep-alive race: the origin closes a pooled connection as idle while the gateway's next request
 * is on its way on it. Regression test: such a request was answered `502 upstream_error` though the
 * origin never acted on it, as Envoy answers it (503 "upstream connect error or disconnect/reset before
 * headers") unless a retry policy says otherwise. nginx sends it again when it failed on a cached
 * connection; so does the gateway now, once, for a request without a body of an idempotent method.
 *
 * The origin here answers a connection's first request and closes the connection, unanswered, when a
 * later request on it is the first to name a `/closes-kept-*` path: what a keep-alive close crossing
 * the request looks like from the gateway, made certain instead of left to timing.
 */
const HOST = 'stale-connections.localhost';
/** How long the `/closes-late` origin holds a request before closing its connection unanswered. */
const LATE_CLOSE_MS = 1_500;

let gateway: TestGateway;
let origin: RawOrigin;

interface Sighting {
  /** The request line. */
  line: string;
  /** Which connection of the origin's it came on (from 1), and which request on it (from 1). */
  connection: number;
  request: number;
}
/** The requests the origin read, in order. */
let sightings: Sighting[] = [];
let connections = 0;
/** The `/closes-kept-*` paths that closed a connection already: each does so once. */
const closedFor = new Set<string>();

beforeAll(async () => {
  origin = await startRawOrigin((socket: net.Socket) => {
    socket.on('error', () => {});
    const connection = ++connections;
    let requests = 0;
    let received = '';
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      for (let headEnd = received.indexOf('\r\n\r\n'); headEnd >= 0; headEnd = received.indexOf('\r\n\r\n')) {
        const head = received.slice(0, headEnd);
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (received.length < headEnd + 4 + length) return;
        received = received.slice(headEnd + 4 + length);
        const line = head.slice(0, head.indexOf('\r\n'));
        const path = line.split(' ')[1] ?? '';
        requests += 1;
        sightings.push({ line, connection, request: requests });
        if (path.startsWith('/closes-kept-') && requests > 1 && !closedFor.has(path)) {
          closedFor.add(path);
          if (path.startsWith('/closes-kept-rst')) socket.resetAndDestroy();
          else socket.destroy();
          return;
        }
        if (path.startsWith('/closes-always')) {
          socket.destroy();
          return;
        }
        if (path.startsWith('/closes-late')) {
          setTimeout(() => socket.destroy(), LATE_CLOSE_MS);
          return;
        }
        socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${path.length}\r\n\r\n${path}`);
      }
    });
  });
  gateway = await startTestGateway();
  gateway.store.apply(tenantRoutingAllTo('stale-connections', origin.url));
});

afterAll(async () => {
  await gateway?.close();
  await origin?.close();
});

beforeEach(() => {
  sightings = [];
});

/** A pooled connection to the origin that answered a request, idle from now: the next request is given it. */
async function warmConnection(): Promise<void> {
  const warm = await send(gateway, HOST, '/warm');
  expect(warm.status).toBe(200);
}

const seen = (path: string): Sighting[] => sightings.filter((s) => s.line.split(' ')[1] === path);

/** The access log's `resends` of the requests to `path`, once each is logged. */
async function loggedResends(path: string, requests: number): Promise<unknown[]> {
  const lines = () => gateway.logLines.filter((line) => line['kind'] === 'access' && line['path'] === path);
  await vi.waitFor(() => expect(lines()).toHaveLength(requests));
  return lines().map((line) => line['resends']);
}

/** The replica's count of requests sent again because their connection closed before an answer. */
const resendsCounted = () =>
  counted(gateway, 'vantageedge_gateway_upstream_resends_total', 'reason="closed_before_answer"');

describe('a request the origin closed its kept connection under, before answering', () => {
  it.each([
    ['GET', 'closed', '/closes-kept-fin'],
    ['GET', 'reset', '/closes-kept-rst'],
    ['DELETE', 'closed', '/closes-kept-fin-delete'],
  ])(
    '%s, the connection %s: is sent once more on another connection and answered',
    async (method, _how, path) => {
      await warmConnection();
      const countedBefore = await resendsCounted();
      const answer = await send(gateway, HOST, path, { method });
      expect(answer.status).toBe(200);
      expect(answer.text).toBe(path);
      expect(await resendsCounted()).toBe(countedBefore + 1);
      expect(await loggedResends(path, 1)).toEqual([1]);
      const [first, second, ...more] = seen(path);
      // The first went on a kept connection (else this test proves nothing), the second on another.
      expect(first?.request).toBeGreaterThan(1);
      expect(second?.connection).not.toBe(first?.connection);
      expect(more).toEqual([]);
    },
  );

  it('a POST with a body is not sent again: 502, read by the origin once', async () => {
    await warmConnection();
    const countedBefore = await resendsCounted();
    const answer = await send(gateway, HOST, '/closes-kept-fin-post', { method: 'POST', body: 'order' });
    expect(answer.status).toBe(502);
    expect(answer.json()['error']).toMatchObject({ code: 'upstream_error' });
    const sent = seen('/closes-kept-fin-post');
    expect(sent).toHaveLength(1);
    expect(sent[0]?.request).toBeGreaterThan(1);
    expect(await resendsCounted()).toBe(countedBefore);
    expect(await loggedResends('/closes-kept-fin-post', 1)).toEqual([0]);
  });
});

describe('an origin that closes every connection it is sent a request on', () => {
  it('gets a GET twice at most, and the client a 502', async () => {
    const answer = await send(gateway, HOST, '/closes-always');
    expect(answer.status).toBe(502);
    expect(answer.json()['error']).toMatchObject({ code: 'upstream_error' });
    expect(seen('/closes-always')).toHaveLength(2);
    expect(await loggedResends('/closes-always', 1)).toEqual([1]);
  });

  it('gets a GET once when it closes the connection long after the request arrived', async () => {
    const answer = await send(gateway, HOST, '/closes-late');
    expect(answer.status).toBe(502);
    expect(seen('/closes-late')).toHaveLength(1);
  });
});
