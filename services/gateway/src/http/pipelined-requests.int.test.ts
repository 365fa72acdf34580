import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { liveHeapAndBufferBytes, liveHeapBytes } from '@vantageedge/shared/testing/live-memory';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { catchAllTenant, connectRaw, type RawClient, within } from '../testing/raw-connections.js';

/**
 * HTTP/1.1 pipelining: a client writes many requests on one connection without waiting for answers.
 * Regression test: node hands the server every request it parses at once, and the gateway ran each at
 * once, so one connection started an origin request for every request pipelined on it (hundreds from
 * one write, past GATEWAY_MAX_CONNECTIONS_PER_CLIENT, which holds an HTTP/2 client to one request per
 * slot), and the answers of all but the first waited in memory for a client that might never read.
 * A connection's requests now run one after another, each once the answers before it are out.
 */
const HOST = 'pipelining.localhost';
const PIPELINED = 20;

/** An origin that counts the requests it is answering at once, and serves large bodies. */
interface CountingOrigin {
  url: string;
  server: Server;
  /** Paths of every request it saw, in order. */
  seen: string[];
  mostAtOnce: number;
}

async function startCountingOrigin(): Promise<CountingOrigin> {
  const origin: CountingOrigin = { url: '', server: createServer(), seen: [], mostAtOnce: 0 };
  let atOnce = 0;
  origin.server.on('request', (req, res) => {
    origin.seen.push(req.url ?? '');
    atOnce += 1;
    origin.mostAtOnce = Math.max(origin.mostAtOnce, atOnce);
    res.once('close', () => {
      atOnce -= 1;
    });
    if (req.url?.startsWith('/hang/')) return; // never answers: what is pipelined behind it waits
    if (req.url?.startsWith('/large/')) {
      // 8 MiB, more than any socket buffer holds: a client that does not read stops it.
      const chunk = Buffer.alloc(64 * 1024, 'x');
      let left = 128;
      res.writeHead(200, { 'content-length': String(left * chunk.length) });
      const pump = () => {
        while (left > 0) {
          left -= 1;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
      return;
    }
    // Answers a moment later, so that requests started together overlap at the origin.
    setTimeout(() => res.end(`answer to ${req.url}`), 20);
  });
  await new Promise<void>((resolve) => origin.server.listen(0, '127.0.0.1', resolve));
  origin.url = `http://127.0.0.1:${(origin.server.address() as AddressInfo).port}`;
  return origin;
}

let origin: CountingOrigin;
let gateway: TestGateway;
/** The same tenant behind a gateway whose connections each carry one request. */
let oneRequestGateway: TestGateway;
const clients: RawClient[] = [];

beforeAll(async () => {
  origin = await startCountingOrigin();
  gateway = await startTestGateway();
  gateway.store.apply(catchAllTenant('pipelining', origin.url));
  oneRequestGateway = await startTestGateway({ GATEWAY_MAX_REQUESTS_PER_CONNECTION: '1' });
  oneRequestGateway.store.apply(catchAllTenant('pipelining', origin.url));
});

afterAll(async () => {
  for (const client of clients) client.socket.destroy();
  await gateway?.close();
  await oneRequestGateway?.close();
  await new Promise<void>((resolve) => {
    origin?.server.close(() => resolve());
    origin?.server.closeAllConnections();
  });
});

async function pipeline(paths: readonly string[]): Promise<RawClient> {
  const client = await connectRaw('plain', gateway.gateway.trafficPort);
  clients.push(client);
  client.socket.write(paths.map((path) => `GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`).join(''));
  return client;
}

describe('requests pipelined on one HTTP/1.1 connection', () => {
  it('reach the origin one at a time, and are all answered in order', async () => {
    const paths = Array.from({ length: PIPELINED }, (_, i) => `/small/${i}`);
    const client = await pipeline(paths);
    await vi.waitFor(() => expect(client.received().match(/HTTP\/1\.1 200 OK/g)?.length).toBe(PIPELINED), {
      timeout: 10_000,
    });
    expect(origin.mostAtOnce).toBe(1);
    const answers = [...client.received().matchAll(/answer to (\/small\/\d+)/g)].map((match) => match[1]);
    expect(answers).toEqual(paths);
  });

  it('requests with small bodies are all answered in order', async () => {
    const paths = Array.from({ length: PIPELINED }, (_, i) => `/small/posted${i}`);
    const client = await connectRaw('plain', gateway.gateway.trafficPort);
    clients.push(client);
    const body = JSON.stringify({ note: 'n'.repeat(1_000) });
    client.socket.write(
      paths
        .map(
          (path) =>
            `POST ${path} HTTP/1.1\r\nHost: ${HOST}\r\nContent-Type: application/json\r\n` +
            `Content-Length: ${body.length}\r\n\r\n${body}`,
        )
        .join(''),
    );
    await vi.waitFor(() => expect(client.received().match(/HTTP\/1\.1 200 OK/g)?.length).toBe(PIPELINED), {
      timeout: 10_000,
    });
    const answers = [...client.received().matchAll(/answer to (\/small\/posted\d+)/g)].map(
      (match) => match[1],
    );
    expect(answers).toEqual(paths);
  });

  it('a client that does not read its answers starts no origin request behind the first', async () => {
    const paths = Array.from({ length: PIPELINED }, (_, i) => `/large/${i}`);
    const client = await pipeline(paths);
    client.socket.pause();
    await vi.waitFor(() => expect(origin.seen).toContain('/large/0'), { timeout: 10_000 });
    // A request on a connection of its own reaches the origin after every request the stuck one started.
    const probe = await pipeline(['/small/probe']);
    await vi.waitFor(() => expect(probe.received()).toContain('answer to /small/probe'), { timeout: 10_000 });
    expect(origin.seen.filter((path) => path.startsWith('/large/'))).toEqual(['/large/0']);
  });

  // Node parses every request a connection's bytes hold and hands each over at once; each waiting
  // request held its parsed head (≈ 2 KB of objects beside its header bytes) until its turn, up to
  // GATEWAY_MAX_REQUESTS_PER_CONNECTION of them: a thousand connections of one client address,
  // each a write of a thousand small requests behind one that hangs, held gigabytes.
  /**
   * The heap (and, `withBuffers`, array buffer) bytes held once each of `connections` connections has a
   * request hanging at the origin (`/hang/<tag>-<c>`) and `pipelineOf(c)` written behind it, measured after
   * a collection once every byte left the clients (the gateway read it or closed the connection). Waits
   * for the gateway to close them all.
   */
  async function heldBehindHungRequests(
    tag: string,
    connections: number,
    pipelineOf: (connection: number) => string,
    withBuffers = false,
    to: TestGateway = gateway,
  ): Promise<number> {
    const used = () =>
      withBuffers ? liveHeapAndBufferBytes({ collections: 1 }) : liveHeapBytes({ collections: 1 });
    const before = used();
    const hung: RawClient[] = [];
    for (let c = 0; c < connections; c++) {
      const client = await connectRaw('plain', to.gateway.trafficPort);
      clients.push(client);
      hung.push(client);
      client.socket.on('error', () => {});
      client.socket.write(`GET /hang/${tag}-${c} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
      await vi.waitFor(() => expect(origin.seen).toContain(`/hang/${tag}-${c}`), { timeout: 10_000 });
      client.socket.write(pipelineOf(c));
    }
    await vi.waitFor(
      () => {
        for (const client of hung)
          expect(client.socket.destroyed || client.socket.writableLength === 0).toBe(true);
      },
      { timeout: 10_000 },
    );
    await new Promise((resolve) => setTimeout(resolve, 200));
    const held = used() - before;
    await within(Promise.all(hung.map((client) => client.closed)), 10_000, 'the gateway closing them');
    return held;
  }

  // Node parses every request a connection's bytes hold and hands each over at once; each waiting
  // request held its parsed head (≈ 2 KB of objects beside its header bytes) until its turn, up to
  // GATEWAY_MAX_REQUESTS_PER_CONNECTION of them: a thousand connections of one client address,
  // each a write of a thousand small requests behind one that hangs, held gigabytes.
  it('a connection holding too many requests waiting is closed, and what they held is freed', async () => {
    const filler = 'f'.repeat(2_000);
    const held = await heldBehindHungRequests('heads', 4, (c) => {
      let text = '';
      for (let i = 0; i < 999; i++)
        text += `GET /small/${c}-${i} HTTP/1.1\r\nHost: ${HOST}\r\nX-Filler: ${filler}\r\n\r\n`;
      return text;
    });
    // Held until their turn: connections × behind × (2 KB head + 2 KB of objects) ≈ 16 MB.
    expect(held).toBeLessThan(4 * 1024 * 1024);
    expect(origin.seen.filter((path) => path.startsWith('/small/') && path.includes('-'))).toEqual([]);
  });

  // A request with an expectation other than 100-continue is refused by the listener (417), not by the
  // handler: answered at once, its answer waited in memory behind the answers before it on the
  // connection, with its request, outside the count of requests waiting.
  it('a connection holding too many refused expectations waiting is closed, and what they held is freed', async () => {
    const held = await heldBehindHungRequests('expect', 8, () =>
      `GET /e HTTP/1.1\r\nExpect: x\r\n\r\n`.repeat(2_000),
    );
    expect(held).toBeLessThan(4 * 1024 * 1024);
  });

  // A waiting request's body is not left in the socket: node reads it into the request (up to its
  // 64 KiB high-water mark) as it parses the requests behind. 31 requests of 60 KB bodies each, within
  // the count, held 1.9 MB a connection.
  it('a connection holding too many bytes of request bodies waiting is closed, and what they held is freed', async () => {
    const body = 'b'.repeat(60_000);
    const held = await heldBehindHungRequests(
      'body',
      8,
      (c) => {
        let text = '';
        for (let i = 0; i < 31; i++)
          text += `POST /small/body-${c}-${i} HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
        return text;
      },
      true,
    );
    // Held until their turn: connections × behind × 60 KB ≈ 15 MB.
    expect(held).toBeLessThan(4 * 1024 * 1024);
    expect(origin.seen.filter((path) => path.startsWith('/small/body-'))).toEqual([]);
  });

  // Requests pipelined past a connection's GATEWAY_MAX_REQUESTS_PER_CONNECTION are never handled, yet
  // node holds each parsed one until the connection closes: behind a budget's last request that hangs,
  // a write of a thousand small requests held them all, outside the count of requests waiting.
  it('a connection holding too many requests past its request budget is closed, and what they held is freed', async () => {
    const filler = 'f'.repeat(2_000);
    const held = await heldBehindHungRequests(
      'past-budget',
      4,
      (c) => {
        let text = '';
        for (let i = 0; i < 999; i++)
          text += `GET /small/past-${c}-${i} HTTP/1.1\r\nHost: ${HOST}\r\nX-Filler: ${filler}\r\n\r\n`;
        return text;
      },
      false,
      oneRequestGateway,
    );
    expect(held).toBeLessThan(4 * 1024 * 1024);
    expect(origin.seen.filter((path) => path.startsWith('/small/past-'))).toEqual([]);
  });
});
