import { randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { eventually } from '@vantageedge/shared/snapshot-bus/testing';
import { http2Connect } from '@vantageedge/shared/testing/tls-clients';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { type HttpOrigin, startHttpOrigin } from '../testing/http-origins.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * Regression tests: a route's response_headers_ms and idle_ms were left to undici's timers, which tick
 * every half second, so a sub-second value fired up to a second late — an idle_ms of 100 let an origin
 * go silent for 400 ms (or trickle a chunk every 400 ms for ever), a response_headers_ms of 100 let it
 * answer after 400 ms — where Envoy and nginx hold a timeout to the millisecond.
 */
const GAP_MS = 400;
/**
 * The route timeouts of an origin that answers at once: still sub-second, but far past the milliseconds
 * this in-process origin takes, which a loaded machine (busy cores, a GC pause) stretches past 100 ms
 * now and then, and past 400 ms at worst.
 */
const ANSWERED_WITHIN_MS = 900;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Received {
  status: number;
  body: string;
  /** False when the response was cut before its end. */
  complete: boolean;
}

let gateway: TestGateway;
let origin: HttpOrigin;

beforeAll(async () => {
  origin = await startHttpOrigin(async (req, res) => {
    req.resume();
    if (req.url === '/late-head') {
      await sleep(GAP_MS);
      res.end('late head');
      return;
    }
    if (req.url === '/silent-gap') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first part;');
      await sleep(GAP_MS);
      res.end('second part');
      return;
    }
    if (req.url === '/trickle') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      for (let i = 0; i < 3; i++) {
        if (res.destroyed) return;
        res.write(`part ${i};`);
        await sleep(GAP_MS);
      }
      res.end('end');
      return;
    }
    if (req.url === '/upload') {
      req.on('end', () => res.end('stored'));
      return;
    }
    res.end('prompt');
  });
  // h2c beside HTTP/1.1 on the plain listener: a cut response over either protocol.
  gateway = await startTestGateway({ GATEWAY_H2C: 'true' });
  const originId = randomUUID();
  gateway.store.apply(
    buildSnapshot({
      subdomain: 'route-timeouts',
      origins: [
        {
          id: originId,
          targets: [origin.url],
          timeout_seconds: 30,
          // Each cut here is the origin's timeout, a failure of its one target: neither passive health
          // nor the circuit may take it out of the tests that follow.
          circuit_breaker: { enabled: false },
          health_check: { active: { enabled: false }, passive: { enabled: false } },
        },
      ],
      routes: [
        { origin_id: originId, path_pattern: '/late-head', timeouts: { response_headers_ms: 100 } },
        { origin_id: originId, path_pattern: '/silent-gap', timeouts: { idle_ms: 100 } },
        { origin_id: originId, path_pattern: '/trickle', timeouts: { idle_ms: 100 } },
        {
          origin_id: originId,
          path_pattern: '/prompt',
          timeouts: { response_headers_ms: ANSWERED_WITHIN_MS, idle_ms: ANSWERED_WITHIN_MS },
        },
        {
          origin_id: originId,
          path_pattern: '/upload',
          timeouts: { response_headers_ms: ANSWERED_WITHIN_MS },
        },
      ],
    }),
  );
});

afterAll(async () => {
  await gateway?.close();
  await origin?.close();
});

/** A request body written in `parts`, each followed by a pause of `gapMs`. */
interface SlowUpload {
  parts: readonly string[];
  gapMs: number;
}

/** A GET, or a POST of a slow upload. */
function get(
  path: string,
  headers: Record<string, string> = {},
  upload: SlowUpload = { parts: [], gapMs: 0 },
): Promise<Received> {
  const { parts, gapMs } = upload;
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: gateway.gateway.trafficPort,
        path,
        method: parts.length === 0 ? 'GET' : 'POST',
        headers: {
          host: 'route-timeouts.localhost',
          'content-length': String(parts.join('').length),
          ...headers,
        },
        agent: false,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, complete: res.complete }));
        res.on('error', () => resolve({ status: res.statusCode ?? 0, body, complete: false }));
      },
    );
    req.on('error', reject);
    void (async () => {
      for (const part of parts) {
        req.write(part);
        await sleep(gapMs);
      }
      req.end();
    })();
  });
}

/** The same GET over HTTP/2 (h2c); `complete` false when its stream was reset before its end. */
function getOverHttp2(path: string): Promise<Received> {
  return new Promise((resolve) => {
    const session = http2Connect(gateway.url);
    const stream = session.request({ ':path': path, ':authority': 'route-timeouts.localhost' });
    let status = 0;
    let body = '';
    stream.setEncoding('utf8');
    stream.on('response', (headers) => {
      status = Number(headers[':status']);
    });
    stream.on('data', (chunk: string) => {
      body += chunk;
    });
    stream.on('error', () => {});
    stream.on('close', () => {
      resolve({ status, body, complete: stream.rstCode === 0 });
      session.close();
    });
    stream.end();
  });
}

describe("a route's sub-second timeouts", () => {
  it('answer 504 upstream_timeout when the head comes after response_headers_ms', async () => {
    const answer = await get('/late-head');
    expect(answer.status).toBe(504);
    expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'upstream_timeout' } });
  });

  it('cut a response whose origin goes silent for longer than idle_ms, once', async () => {
    expect(await get('/silent-gap')).toEqual({ status: 200, body: 'first part;', complete: false });
  });

  it('log such a cut with the status that went out and why it was cut (not as a client that left)', async () => {
    const requestId = randomUUID();
    await get('/silent-gap', { 'x-request-id': requestId });
    await eventually('the access-log line', () =>
      gateway.logLines.some((l) => l['request_id'] === requestId),
    );
    expect(gateway.logLines.find((line) => line['request_id'] === requestId)).toMatchObject({
      status: 200,
      error_code: 'upstream_timeout',
      response_complete: false,
    });
  });

  it('cut a response whose origin goes silent over HTTP/2 by resetting its stream', async () => {
    expect(await getOverHttp2('/silent-gap')).toEqual({ status: 200, body: 'first part;', complete: false });
  });

  it('cut a response the origin trickles with gaps longer than idle_ms', async () => {
    expect(await get('/trickle')).toEqual({ status: 200, body: 'part 0;', complete: false });
  });

  it('count response_headers_ms from the request’s end: a slow upload is not the origin’s time', async () => {
    // The body's last byte comes twice response_headers_ms after its first.
    const upload = { parts: ['a', 'b', 'c'], gapMs: ANSWERED_WITHIN_MS };
    expect(await get('/upload', {}, upload)).toEqual({
      status: 200,
      body: 'stored',
      complete: true,
    });
  });

  it('leave an origin that answers within them alone', async () => {
    expect(await get('/prompt')).toEqual({ status: 200, body: 'prompt', complete: true });
  });
});
