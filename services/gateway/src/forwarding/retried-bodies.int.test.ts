import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, request, type Server } from 'node:http';
import { type ClientHttp2Session, constants } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { http2Connect } from '@vantageedge/shared/testing/tls-clients';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { RETRY_BODY_BUFFER_BYTES } from './retryable-body.js';

const NO_HEALTH_CHECKS = { active: { enabled: false }, passive: { enabled: false } };
/** What the origin gets, and what it answers: a body's length and hash. */
const digest = (body: Buffer) => ({
  bytes: body.length,
  sha256: createHash('sha256').update(body).digest('hex'),
});

interface Arrival {
  headers: IncomingMessage['headers'];
  body: Buffer;
}

/**
 * An origin's two targets sharing one script: the first time a path arrives (at either) the target
 * reads the first KiB of its body and resets the connection; the next time it reads the body whole
 * and answers with its digest. Whichever target the balancer picks first, a retry is what succeeds.
 */
async function failingOnceTargets() {
  const tried = new Set<string>();
  const answered = new Map<string, Arrival>();
  const servers: Server[] = [];
  for (let i = 0; i < 2; i++) {
    const server = createServer((req, res) => {
      const url = req.url ?? '';
      const chunks: Buffer[] = [];
      let read = 0;
      const firstTry = !tried.has(url);
      tried.add(url);
      if (firstTry && req.headers['content-length'] === '0') return void req.socket.destroy();
      req.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        read += chunk.length;
        if (firstTry && read >= 1024) req.socket.destroy();
      });
      req.on('end', () => {
        if (firstTry) return void req.socket.destroy();
        const body = Buffer.concat(chunks);
        answered.set(url, { headers: req.headers, body });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(digest(body)));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
  }
  return {
    urls: servers.map((server) => `http://127.0.0.1:${(server.address() as AddressInfo).port}`),
    tried,
    answered,
    close: () =>
      Promise.all(
        servers.map(
          (server) =>
            new Promise<void>((resolve) => {
              server.closeAllConnections();
              server.close(() => resolve());
            }),
        ),
      ),
  };
}

interface Answer {
  status: number;
  text: string;
}

/**
 * A retried request's body reaches the next target byte for byte, however the client sent it: at once
 * or slowly, after a 100 (Continue), empty, over HTTP/2 — also when the first target had read part of it
 * before its connection was reset. A body larger than the retry buffer is sent once: never refused.
 */
describe('request bodies sent again on a retry', () => {
  let gateway: TestGateway;
  let targets: Awaited<ReturnType<typeof failingOnceTargets>>;
  let session: ClientHttp2Session;

  beforeAll(async () => {
    targets = await failingOnceTargets();
    gateway = await startTestGateway({ GATEWAY_H2C: 'true' });
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'bodies',
        origins: [
          {
            id: originId,
            targets: targets.urls,
            health_check: NO_HEALTH_CHECKS,
            circuit_breaker: { enabled: false },
          },
        ],
        routes: [
          {
            origin_id: originId,
            path_pattern: '/*',
            max_body_bytes: 1024 * 1024,
            retries: {
              methods: ['POST'],
              backoff: { base_ms: 0, max_ms: 0 },
              budget: { percent: 100, min_retries: 1000 },
            },
          },
        ] as never,
      }),
    );
    session = http2Connect(gateway.url);
  });

  afterAll(async () => {
    session?.close();
    await gateway?.close();
    await targets?.close();
  });

  /** A POST over HTTP/1.1 whose body goes out in `parts`, `gapMs` apart (after a 100 when it expects one). */
  function post(path: string, headers: Record<string, string>, parts: Buffer[], gapMs = 0): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: gateway.gateway.trafficPort,
          method: 'POST',
          path,
          headers: { host: 'bodies.localhost', ...headers },
          agent: false,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }),
          );
        },
      );
      req.on('error', reject);
      const writeFrom = (index: number) => {
        if (index === parts.length) return void req.end();
        req.write(parts[index]);
        setTimeout(() => writeFrom(index + 1), gapMs);
      };
      if (headers['expect'] === undefined) writeFrom(0);
      else req.once('continue', () => writeFrom(0));
    });
  }

  function expectSentAgainWhole(path: string, answer: Answer, body: Buffer): void {
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.text)).toEqual(digest(body));
    expect(targets.answered.get(path)?.headers['content-length']).toBe(String(body.length));
  }

  it('sends an HTTP/1.1 body again whole, when the first target read part of it before the reset', async () => {
    const body = Buffer.alloc(RETRY_BODY_BUFFER_BYTES, 'a');
    body.write('the first bytes', 0);
    const answer = await post('/h1/whole', { 'content-length': String(body.length) }, [body]);
    expectSentAgainWhole('/h1/whole', answer, body);
  });

  it('sends again a body that arrived slowly, in parts', async () => {
    const parts = ['one;', 'two;', 'three'].map((part) => Buffer.from(part.repeat(500)));
    const body = Buffer.concat(parts);
    const answer = await post('/h1/slow', { 'content-length': String(body.length) }, parts, 50);
    expectSentAgainWhole('/h1/slow', answer, body);
  });

  it('sends again a body the client sent after a 100 (Continue)', async () => {
    const body = Buffer.alloc(5000, 'c');
    const headers = { 'content-length': String(body.length), expect: '100-continue' };
    expectSentAgainWhole('/h1/continue', await post('/h1/continue', headers, [body]), body);
  });

  it('retries a POST with an empty body, sending it empty again', async () => {
    const answer = await post('/h1/empty', { 'content-length': '0' }, []);
    expectSentAgainWhole('/h1/empty', answer, Buffer.alloc(0));
  });

  it('sends an HTTP/2 body with a content-length again whole', async () => {
    const body = Buffer.alloc(30_000, 'h');
    const answer = await new Promise<Answer>((resolve, reject) => {
      const stream = session.request({
        [constants.HTTP2_HEADER_METHOD]: 'POST',
        [constants.HTTP2_HEADER_PATH]: '/h2/whole',
        [constants.HTTP2_HEADER_AUTHORITY]: 'bodies.localhost',
        'content-length': String(body.length),
      });
      let status = 0;
      const chunks: Buffer[] = [];
      stream.on('response', (headers) => {
        status = Number(headers[constants.HTTP2_HEADER_STATUS]);
      });
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => resolve({ status, text: Buffer.concat(chunks).toString() }));
      stream.on('error', reject);
      stream.write(body.subarray(0, 10_000));
      setTimeout(() => stream.end(body.subarray(10_000)), 50);
    });
    expectSentAgainWhole('/h2/whole', answer, body);
  });

  it('sends a body larger than the retry buffer once, streaming: the reset is the answer, never a 413', async () => {
    const body = Buffer.alloc(RETRY_BODY_BUFFER_BYTES + 1, 'l');
    const answer = await post('/h1/larger', { 'content-length': String(body.length) }, [body]);
    expect(answer.status).toBe(502);
    expect(JSON.parse(answer.text)['error']).toMatchObject({ code: 'upstream_error' });
    expect(targets.tried.has('/h1/larger')).toBe(true);
    expect(targets.answered.has('/h1/larger')).toBe(false);
  });
});
