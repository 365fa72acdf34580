import { randomUUID } from 'node:crypto';
import {
  type ClientRequest,
  createServer,
  type IncomingMessage,
  request,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { RETRY_BODY_BUFFER_BYTES } from './retryable-body.js';

const NO_HEALTH_CHECKS = { active: { enabled: false }, passive: { enabled: false } };
/** The replica's retry buffer: four largest bodies, so one tenant's quarter holds exactly one. */
const BUDGET = 4 * RETRY_BODY_BUFFER_BYTES;

interface Target {
  url: string;
  /** Requests whose body arrived whole. */
  readonly seen: IncomingMessage[];
  /** Each of those requests' body. */
  readonly bodies: Map<IncomingMessage, Buffer>;
  close(): Promise<void>;
}

/** An origin target that reads each request's body, then does `behave` with it. */
async function target(behave: (req: IncomingMessage, res: ServerResponse) => void): Promise<Target> {
  const seen: IncomingMessage[] = [];
  const bodies = new Map<IncomingMessage, Buffer>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      seen.push(req);
      bodies.set(req, Buffer.concat(chunks));
      behave(req, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    bodies,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  expect(condition()).toBe(true);
}

/**
 * A retryable request with a body is read into memory first, so it can be sent again. Those bodies
 * share one budget per replica (GATEWAY_RETRY_BUFFER_BYTES), of which one tenant's requests hold at
 * most a quarter: a tenant whose clients send many bodies to an origin that never answers cannot make
 * the replica buffer (connections × HTTP/2 streams × 64 KiB, gigabytes), nor take the others' retries.
 * A body that does not fit is sent once, without retries.
 */
describe('retry body buffers shared by tenants', () => {
  let gateway: TestGateway;
  let holding: Target;
  let hogResetting: Target;
  let quietResetting: Target;
  let stallResetting: Target;
  let streaming: Target;

  /** A tenant whose `/reset/*` retries POSTs on `resetting`, and whose `/<name>/*` does on `other`. */
  function tenant(subdomain: string, resetting: Target, other?: { name: string; url: string }) {
    const resetOrigin = randomUUID();
    const otherOrigin = randomUUID();
    const retries = { methods: ['POST'], backoff: { base_ms: 0, max_ms: 0 } };
    return buildSnapshot({
      subdomain,
      origins: [
        {
          id: resetOrigin,
          targets: [resetting.url],
          health_check: NO_HEALTH_CHECKS,
          circuit_breaker: { enabled: false },
        },
        ...(other === undefined
          ? []
          : [{ id: otherOrigin, targets: [other.url], health_check: NO_HEALTH_CHECKS }]),
      ],
      routes: [
        { origin_id: resetOrigin, path_pattern: '/reset/*', retries },
        ...(other === undefined
          ? []
          : [{ origin_id: otherOrigin, path_pattern: `/${other.name}/*`, retries }]),
      ] as never,
    });
  }

  beforeAll(async () => {
    holding = await target(() => {}); // never answers
    hogResetting = await target((req) => req.socket.destroy());
    quietResetting = await target((req) => req.socket.destroy());
    stallResetting = await target((req) => req.socket.destroy());
    // Answers at once, then streams its body on, never ending it (server-sent events, say).
    streaming = await target((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: first\n\n');
    });
    gateway = await startTestGateway({ GATEWAY_RETRY_BUFFER_BYTES: String(BUDGET) });
    gateway.store.apply(tenant('hog', hogResetting, { name: 'hold', url: holding.url }));
    gateway.store.apply(tenant('quiet', quietResetting));
    // One tenant per test below, each with a share of its own: a request a test leaves is not in the next.
    gateway.store.apply(tenant('stall', stallResetting));
    gateway.store.apply(tenant('half', stallResetting));
    gateway.store.apply(tenant('stream', stallResetting, { name: 'stream', url: streaming.url }));
  });

  afterAll(async () => {
    await gateway?.close();
    await Promise.all(
      [holding, hogResetting, quietResetting, stallResetting, streaming].map((t) => t?.close()),
    );
  });

  const post = (host: string, path: string) => send(gateway, host, path, { method: 'POST', body: 'order' });

  /**
   * A POST announcing a body as large as a retry buffer, sent with `Expect: 100-continue`: resolves once
   * the gateway asked for the body (it is about to read it), with the request to write the body to.
   */
  function announcedBody(host: string, path: string): Promise<ClientRequest> {
    const req = request({
      host: '127.0.0.1',
      port: gateway.gateway.trafficPort,
      method: 'POST',
      path,
      headers: { host, 'content-length': String(RETRY_BODY_BUFFER_BYTES), expect: '100-continue' },
    });
    req.on('error', () => {});
    req.flushHeaders();
    return new Promise((resolve) => req.once('continue', () => resolve(req)));
  }

  it("holds one tenant's buffered bodies to its share, sending the rest once, and leaves the others' retries", async () => {
    // Both tenants' POSTs are retried while nothing is buffered.
    expect((await post('hog.localhost', '/reset/a')).status).toBe(502);
    expect(hogResetting.seen).toHaveLength(2);

    // One of the hog's bodies, as large as a retry buffer, waits for an origin that never answers.
    const held = request({
      host: '127.0.0.1',
      port: gateway.gateway.trafficPort,
      method: 'POST',
      path: '/hold/x',
      headers: { host: 'hog.localhost', 'content-length': String(RETRY_BODY_BUFFER_BYTES) },
    });
    held.on('error', () => {});
    held.end(Buffer.alloc(RETRY_BODY_BUFFER_BYTES, 'x'));
    await until(() => holding.seen.length === 1);

    // The hog's share is taken: its next body is sent once, not buffered for a retry.
    expect((await post('hog.localhost', '/reset/b')).status).toBe(502);
    expect(hogResetting.seen).toHaveLength(3);
    // Another tenant's request is still buffered and retried.
    expect((await post('quiet.localhost', '/reset/c')).status).toBe(502);
    expect(quietResetting.seen).toHaveLength(2);

    // The held request's client leaves: its buffer is given back, and the hog's POSTs retry again.
    held.destroy();
    await until(() => holding.seen[0]!.socket.destroyed);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect((await post('hog.localhost', '/reset/d')).status).toBe(502);
    expect(hogResetting.seen).toHaveLength(5);
  });
  // Regression test: the body's announced length was reserved before any of it arrived, so clients that
  // announced large bodies and sent nothing (held until the request timeout, at no cost to them) took
  // the tenant's share, and with a few tenants the replica's: every other body was sent without retries.
  it('holds what a body sent so far, not the length it announced: a client that stalls leaves the retries', async () => {
    const stalled = await announcedBody('stall.localhost', '/reset/stalled');
    onTestFinished(() => void stalled.destroy());
    stalled.write('x');
    const before = stallResetting.seen.length;
    expect((await post('stall.localhost', '/reset/after')).status).toBe(502);
    expect(stallResetting.seen.length - before).toBe(2);
  });

  it('sends a body whole, once, when the share runs out while it arrives', async () => {
    // Half of the tenant's share is held by a body that stops halfway.
    const stalled = await announcedBody('half.localhost', '/reset/half');
    onTestFinished(() => void stalled.destroy());
    stalled.write(Buffer.alloc(RETRY_BODY_BUFFER_BYTES / 2, 'h'));
    const body = Buffer.alloc(RETRY_BODY_BUFFER_BYTES * 0.75, 'b');
    body.write('first bytes');
    const before = stallResetting.seen.length;
    const answer = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: gateway.gateway.trafficPort,
          method: 'POST',
          path: '/reset/whole',
          headers: { host: 'half.localhost', 'content-length': String(body.length) },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      // Its first part fits the share, the second does not: the third arrives after the switch.
      req.write(body.subarray(0, 1024));
      setTimeout(() => req.write(body.subarray(1024, 40 * 1024)), 50);
      setTimeout(() => req.end(body.subarray(40 * 1024)), 100);
    });
    expect(answer).toBe(502);
    const sent = stallResetting.seen.slice(before);
    expect(sent.map((req) => req.url)).toEqual(['/reset/whole']);
    expect(stallResetting.bodies.get(sent[0]!)).toEqual(body);
  });

  // Regression test: a body stayed reserved until its exchange ended, long after its answer had begun
  // and it could never be sent again: a tenant's streaming answers (server-sent events, a download)
  // took its share and stopped its other requests' retries.
  it('gives a body back once its answer began: an answer that streams on holds no retry buffer', async () => {
    const streamingAnswer = new Promise<ClientRequest>((resolve) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: gateway.gateway.trafficPort,
          method: 'POST',
          path: '/stream/x',
          headers: { host: 'stream.localhost', 'content-length': String(RETRY_BODY_BUFFER_BYTES) },
        },
        (res) => res.once('data', () => resolve(req)),
      );
      req.on('error', () => {});
      req.end(Buffer.alloc(RETRY_BODY_BUFFER_BYTES, 's'));
    });
    const streaming = await streamingAnswer;
    onTestFinished(() => void streaming.destroy());
    const before = stallResetting.seen.length;
    expect((await post('stream.localhost', '/reset/beside-a-stream')).status).toBe(502);
    expect(stallResetting.seen.length - before).toBe(2);
  });
});
