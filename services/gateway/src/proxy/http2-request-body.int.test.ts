import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type ClientHttp2Session, connect, constants } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

/** A target that records each request's body and answers with `status`. */
interface RecordingTarget {
  seen: Array<{ url: string; body: string }>;
  url: string;
  close(): Promise<void>;
}

async function recordingTarget(status: number): Promise<RecordingTarget> {
  const seen: RecordingTarget['seen'] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      seen.push({ url: req.url ?? '', body: Buffer.concat(chunks).toString() });
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(String(status));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    seen,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

interface H2Answer {
  status: number;
  body: string;
}

/**
 * One HTTP/2 request whose body goes out as DATA frames after the HEADERS frame (no END_STREAM on it),
 * one part at a time with a pause between them; no content-length unless `headers` has one.
 */
function h2Request(
  session: ClientHttp2Session,
  path: string,
  parts: readonly string[],
  options: { method?: string; headers?: Record<string, string> } = {},
): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request(
      {
        [constants.HTTP2_HEADER_METHOD]: options.method ?? 'POST',
        [constants.HTTP2_HEADER_PATH]: path,
        [constants.HTTP2_HEADER_AUTHORITY]: 'h2body.localhost',
        ...options.headers,
      },
      { endStream: parts.length === 0 },
    );
    let status = 0;
    const chunks: Buffer[] = [];
    stream.on('response', (headers) => {
      status = Number(headers[constants.HTTP2_HEADER_STATUS]);
    });
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => resolve({ status, body: Buffer.concat(chunks).toString() }));
    stream.on('error', reject);
    const writeFrom = (index: number) => {
      if (index === parts.length) return;
      if (index === parts.length - 1) {
        stream.end(parts[index]);
        return;
      }
      stream.write(parts[index]);
      setTimeout(() => writeFrom(index + 1), 50);
    };
    writeFrom(0);
  });
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/**
 * Regression: an HTTP/2 request body (h2 or h2c) without a content-length, which HTTP/2 allows, never
 * reached the origin: the gateway decided "has a body" from content-length / transfer-encoding only, so
 * the origin got `content-length: 0` and the client a 200; a route retrying POSTs even sent it again,
 * still empty, to another target. Such a body now streams like a chunked HTTP/1.1 one (counted against
 * the body limit) and is sent once: never retried, since it was not read ahead.
 */
describe('HTTP/2 request bodies without a content-length', () => {
  let gateway: TestGateway;
  let origin: TestOrigin;
  let unavailable: RecordingTarget;
  let healthy: RecordingTarget;
  let session: ClientHttp2Session;

  beforeAll(async () => {
    origin = await startTestOrigin('h2-body');
    unavailable = await recordingTarget(503);
    healthy = await recordingTarget(200);
    gateway = await startTestGateway({ GATEWAY_H2C: 'true', GATEWAY_MAX_BODY_BYTES: '100000' });
    const originId = randomUUID();
    const pairId = randomUUID();
    const disabled = { active: { enabled: false }, passive: { enabled: false } };
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'h2body',
        origins: [
          { id: originId, targets: [origin.url] },
          {
            id: pairId,
            targets: [unavailable.url, healthy.url],
            health_check: disabled,
            circuit_breaker: { enabled: false },
          },
        ],
        routes: [
          { origin_id: originId, path_pattern: '/upload', max_body_bytes: 100 },
          { origin_id: originId, path_pattern: '/*' },
          {
            origin_id: pairId,
            path_pattern: '/retry/*',
            retries: {
              methods: ['POST'],
              on: ['503'],
              backoff: { base_ms: 0, max_ms: 0 },
              budget: { percent: 100, min_retries: 1000 },
            },
          },
        ],
      }),
    );
    session = connect(gateway.url);
  });

  afterAll(async () => {
    session?.close();
    await gateway?.close();
    await Promise.all([origin?.close(), unavailable?.close(), healthy?.close()]);
  });

  it('streams the DATA frames to the origin, framed as a body of unknown length', async () => {
    const parts = ['hello ', 'streamed ', 'world'];
    const answer = await h2Request(session, '/upload?via=h2c', parts);
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toEqual({ bytes: 20, sha256: sha256(parts.join('')) });
    const seen = origin.seen.at(-1)!;
    expect(seen).toMatchObject({ method: 'POST', url: '/upload?via=h2c' });
    expect(seen.headers['content-length']).not.toBe('0');
  });

  it('still forwards a declared content-length, and no body for a stream ended with its headers', async () => {
    const declared = await h2Request(session, '/echo/declared', ['12345', '67890'], {
      headers: { 'content-length': '10' },
    });
    expect(declared.status).toBe(200);
    expect(origin.seen.at(-1)!.headers['content-length']).toBe('10');

    const bodiless = await h2Request(session, '/echo/get', [], { method: 'GET' });
    expect(bodiless.status).toBe(200);
    const seen = origin.seen.at(-1)!;
    expect(seen.url).toBe('/echo/get');
    expect(seen.headers['transfer-encoding']).toBeUndefined();
    expect(seen.headers['content-length']).toBeUndefined();
  });

  it("cuts such a body at the route's body limit: 413", async () => {
    const answer = await h2Request(session, '/upload', ['y'.repeat(80), 'y'.repeat(80)]);
    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.body)['error']).toMatchObject({ code: 'payload_too_large' });
  });

  it('sends it once, never retried on another target; a declared small body still is retried', async () => {
    const unavailableBefore = unavailable.seen.length;
    const healthyBefore = healthy.seen.length;
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      statuses.push((await h2Request(session, `/retry/unknown-${i}`, [`{"order":`, `${i}}`])).status);
    }
    const refused = statuses.filter((status) => status === 503).length;
    // The round robin sends some of them to the target answering 503: its answer reaches the client.
    expect(refused).toBeGreaterThan(0);
    expect(statuses.filter((status) => status === 200).length).toBe(4 - refused);
    const toUnavailable = unavailable.seen.slice(unavailableBefore);
    const toHealthy = healthy.seen.slice(healthyBefore);
    expect(toUnavailable.length).toBe(refused);
    expect(toHealthy.length).toBe(4 - refused);
    for (const request of [...toUnavailable, ...toHealthy]) {
      expect(request.body).toBe(`{"order":${request.url.slice('/retry/unknown-'.length)}}`);
    }

    // With a content-length within the retry buffer the body is read first and sent again.
    for (let i = 0; i < 4; i++) {
      const body = `{"order":${i}}`;
      const answer = await h2Request(session, `/retry/declared-${i}`, [body], {
        headers: { 'content-length': String(body.length) },
      });
      expect(answer.status).toBe(200);
      expect(healthy.seen.at(-1)).toEqual({ url: `/retry/declared-${i}`, body });
    }
  });
});
