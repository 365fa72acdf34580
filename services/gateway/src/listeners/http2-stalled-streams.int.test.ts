import { randomUUID } from 'node:crypto';
import { type ClientHttp2Session, type ClientHttp2Stream, connect } from 'node:http2';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCacheStage } from '../cache/cache-stage.js';
import { MemoryCacheStore } from '../cache/memory-cache-store.js';
import { createResponseCache } from '../cache/response-cache.js';
import {
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { pause, within } from '../testing/raw-connections.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * An HTTP/2 client that never opens its flow-control window (SETTINGS_INITIAL_WINDOW_SIZE 0) gets no
 * DATA frame of any response. Regression test: a response the gateway had finished writing (a 404, a
 * small proxied body) then waited for that window for ever, and the idle timeout's GOAWAY waits for open
 * streams: one request held a connection slot of GATEWAY_MAX_CONNECTIONS (and the response's bytes)
 * for as long as the client liked.
 */
const HOST = 'h2stall.localhost';
const IDLE_TIMEOUT_MS = 1_000;

let origin: TestOrigin;
let gateway: TestGateway;
const sessions: ClientHttp2Session[] = [];

/** A session that gives the gateway no window to send response bodies in. */
function connectWithShutWindow(): ClientHttp2Session {
  const session = connect(gateway.url, { settings: { initialWindowSize: 0 } });
  session.on('error', () => {});
  sessions.push(session);
  return session;
}

function request(session: ClientHttp2Session, path: string, authority = HOST): ClientHttp2Stream {
  const stream = session.request({ ':method': 'GET', ':path': path, ':authority': authority });
  stream.on('error', () => {});
  stream.end();
  return stream;
}

const closedOf = (emitter: { once(event: 'close', listener: () => void): unknown }) =>
  new Promise<void>((resolve) => emitter.once('close', () => resolve()));

beforeAll(async () => {
  origin = await startTestOrigin('h2-stall-origin');
  const cache = createResponseCache({
    store: new MemoryCacheStore({ maxBytes: 8_000_000 }),
    l1MaxBytes: 8_000_000,
    registry: new Registry(),
    logger: createLogger({ service: 'test', level: 'error' }),
  });
  gateway = await startTestGateway(
    { GATEWAY_H2C: 'true', GATEWAY_HTTP2_IDLE_TIMEOUT_SECONDS: String(IDLE_TIMEOUT_MS / 1000) },
    { stages: [createCacheStage(cache)] },
  );
  const originId = randomUUID();
  gateway.store.apply(
    buildSnapshot({
      subdomain: 'h2stall',
      origins: [{ id: originId, targets: [origin.url] }],
      routes: [
        {
          origin_id: originId,
          path_pattern: '/cached/*',
          strip_prefix: '/cached',
          cache_policy: { mode: 'override', ttl_seconds: 60 },
        },
        { origin_id: originId, path_pattern: '/*' },
      ],
    }),
  );
});

afterAll(async () => {
  for (const session of sessions) session.destroy();
  await gateway?.close();
  await origin?.close();
});

describe('HTTP/2 streams the client never lets the gateway finish', () => {
  it('regression: a finished response the client takes nothing of is reset after GATEWAY_HTTP2_IDLE_TIMEOUT_SECONDS, and the connection closed', async () => {
    const session = connectWithShutWindow();
    const sessionClosed = closedOf(session);
    // The gateway's own answer (no tenant on this host) and an origin's small body, both written whole.
    const refused = request(session, '/anything', 'nobody.localhost');
    const proxied = request(session, '/download?bytes=1000');
    await within(
      Promise.all([closedOf(refused), closedOf(proxied)]),
      4 * IDLE_TIMEOUT_MS,
      'both stalled streams reset',
    );
    expect(refused.rstCode).not.toBe(0);
    expect(proxied.rstCode).not.toBe(0);
    await within(sessionClosed, 4 * IDLE_TIMEOUT_MS, 'the idle connection closed');
  });

  it('regression: a stalled response is reset even while PINGs and other requests keep the session busy', async () => {
    const session = connectWithShutWindow();
    const stalled = request(session, '/download?bytes=1000');
    // PINGs and HEAD requests (no DATA: they complete through the shut window) keep the session active,
    // and node's own stream timer counts the frames the session sends as the stalled stream's progress.
    const busy = setInterval(() => {
      if (session.closed || session.destroyed) return;
      session.ping(() => {});
      const head = session.request({ ':method': 'HEAD', ':path': '/busy', ':authority': HOST });
      head.on('error', () => {});
      head.resume();
      head.end();
    }, IDLE_TIMEOUT_MS / 4);
    try {
      await within(closedOf(stalled), 4 * IDLE_TIMEOUT_MS, 'the stalled stream reset');
      expect(stalled.rstCode).not.toBe(0);
      expect(session.closed).toBe(false);
    } finally {
      clearInterval(busy);
    }
  });

  it('a stream still waiting for its origin is not reset by the idle timeout', async () => {
    const session = connectWithShutWindow();
    const waiting = request(session, '/slow/long-poll');
    await pause(3 * IDLE_TIMEOUT_MS);
    expect(waiting.closed).toBe(false);
    waiting.close();
  });

  it('a large stored body a slow client takes steadily is delivered whole, not reset as stalled', async () => {
    const bytes = 800 * 1024;
    const path = `/cached/download?bytes=${bytes}`;
    const fill = await send(gateway, HOST, path);
    expect(fill.status).toBe(200);
    expect(fill.text.length).toBe(bytes);
    // Written in one piece, the HIT's body counted as undelivered until all of it went out.
    const session = connect(gateway.url, { settings: { initialWindowSize: 16_384 } });
    session.on('error', () => {});
    sessions.push(session);
    const stream = request(session, path);
    const cacheStatus = new Promise<unknown>((resolve) =>
      stream.once('response', (headers) => resolve(headers['x-cache'])),
    );
    let received = 0;
    let sincePause = 0;
    stream.on('data', (chunk: Buffer) => {
      received += chunk.length;
      sincePause += chunk.length;
      if (sincePause < 64 * 1024) return;
      sincePause = 0;
      stream.pause();
      setTimeout(() => stream.resume(), IDLE_TIMEOUT_MS / 4);
    });
    await within(closedOf(stream), 30 * IDLE_TIMEOUT_MS, 'the slow download ends');
    expect(await cacheStatus).toBe('HIT');
    expect(stream.rstCode).toBe(0);
    expect(received).toBe(bytes);
  });
});
