import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { type ClientHttp2Session, connect, constants } from 'node:http2';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * What the access log, the request metrics and the usage counts record for exchanges that did not end
 * normally. Regression: a request the client abandoned before any answer (an HTTP/1.1 client gone, an
 * HTTP/2 stream reset) was logged as `status: 200` (res.statusCode's default), and a response whose
 * body the client cut short read the same as a complete one.
 */
const HOST = 'abandon.localhost';
const tenantId = randomUUID();
let origin: TestOrigin;
let gateway: TestGateway;
let closedPort: number;
const sessions: ClientHttp2Session[] = [];

beforeAll(async () => {
  origin = await startTestOrigin('origin');
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  closedPort = (probe.address() as { port: number }).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  gateway = await startTestGateway({ GATEWAY_H2C: 'true' });
  const originId = randomUUID();
  const quickId = randomUUID();
  const deadId = randomUUID();
  gateway.store.apply(
    buildSnapshot({
      tenantId,
      subdomain: 'abandon',
      origins: [
        { id: originId, targets: [origin.url], timeout_seconds: 60 },
        { id: quickId, targets: [origin.url], timeout_seconds: 1 },
        { id: deadId, targets: [`http://127.0.0.1:${closedPort}`] },
      ],
      routes: [
        { origin_id: quickId, path_pattern: '/quick/*', strip_prefix: '/quick' },
        { origin_id: deadId, path_pattern: '/dead/*' },
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

async function accessLine(requestId: string): Promise<Record<string, unknown>> {
  return vi.waitFor(
    () => {
      const found = gateway.logLines.find(
        (entry) => entry['kind'] === 'access' && entry['request_id'] === requestId,
      );
      if (found === undefined) throw new Error(`no access-log line for ${requestId} yet`);
      return found;
    },
    { timeout: 5_000 },
  );
}

/** The sum of a series' samples whose labels include every given `name="value"`. */
async function scraped(name: string, labels: string[]): Promise<number> {
  const text = await gateway.registry.metrics();
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) || !labels.every((label) => line.includes(label))) continue;
    total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

async function originSaw(path: string): Promise<void> {
  await vi.waitFor(
    () => {
      if (!origin.seen.some((seen) => seen.url === path)) throw new Error(`origin has not seen ${path}`);
    },
    { timeout: 5_000 },
  );
}

function abandonHttp1(path: string, requestId: string, when: 'before-answer' | 'mid-body'): void {
  const req = httpRequest({
    host: '127.0.0.1',
    port: gateway.gateway.trafficPort,
    path,
    headers: { host: HOST, 'x-request-id': requestId },
    agent: false,
  });
  req.on('error', () => {});
  if (when === 'mid-body') req.on('response', (res) => res.once('data', () => req.destroy()));
  else void originSaw(path).then(() => req.destroy());
  req.end();
}

async function h2Session(): Promise<ClientHttp2Session> {
  const session = connect(gateway.url);
  session.on('error', () => {});
  sessions.push(session);
  await new Promise<void>((resolve) => session.once('connect', () => resolve()));
  return session;
}

describe('an exchange the client abandoned', () => {
  it('HTTP/1.1 client gone before the origin answered: 499, not a success, and counted as a 499 in the metrics', async () => {
    const requestId = randomUUID();
    const before = await scraped('vantageedge_gateway_error_responses_total', ['status="499"']);
    abandonHttp1('/slow/h1', requestId, 'before-answer');
    const line = await accessLine(requestId);
    expect({ status: line['status'], complete: line['response_complete'], code: line['error_code'] }).toEqual(
      {
        status: 499,
        complete: false,
        code: 'client_closed_request',
      },
    );
    expect(
      await scraped('vantageedge_gateway_error_responses_total', [
        'status="499"',
        'code="client_closed_request"',
      ]),
    ).toBe(before + 1);
    expect(await scraped('vantageedge_gateway_request_duration_seconds_count', ['status_class="0xx"'])).toBe(
      0,
    );
  });

  it('HTTP/2 stream reset before the answer: 499', async () => {
    const session = await h2Session();
    const requestId = randomUUID();
    const stream = session.request({
      ':method': 'GET',
      ':path': '/slow/h2',
      ':authority': HOST,
      'x-request-id': requestId,
    });
    stream.on('error', () => {});
    await originSaw('/slow/h2');
    stream.close(constants.NGHTTP2_CANCEL);
    const line = await accessLine(requestId);
    expect({ status: line['status'], complete: line['response_complete'], code: line['error_code'] }).toEqual(
      {
        status: 499,
        complete: false,
        code: 'client_closed_request',
      },
    );
  });

  it('client gone in the middle of the body: the status sent, and the response marked incomplete', async () => {
    const requestId = randomUUID();
    abandonHttp1('/download?bytes=50000000', requestId, 'mid-body');
    const line = await accessLine(requestId);
    expect({ status: line['status'], complete: line['response_complete'] }).toEqual({
      status: 200,
      complete: false,
    });
  });

  it('HTTP/2 stream reset in the middle of the body: the status sent, and the response marked incomplete', async () => {
    const session = await h2Session();
    const requestId = randomUUID();
    const stream = session.request({
      ':method': 'GET',
      ':path': '/download?bytes=50000000',
      ':authority': HOST,
      'x-request-id': requestId,
    });
    stream.on('error', () => {});
    stream.once('data', () => stream.close(constants.NGHTTP2_CANCEL));
    const line = await accessLine(requestId);
    expect({ status: line['status'], complete: line['response_complete'] }).toEqual({
      status: 200,
      complete: false,
    });
  });

  it('a complete response is marked complete', async () => {
    const requestId = randomUUID();
    abandonHttp1('/download?bytes=10', requestId, 'mid-body'); // ten bytes: one chunk, read whole
    const line = await accessLine(requestId);
    expect({ status: line['status'], complete: line['response_complete'] }).toEqual({
      status: 200,
      complete: true,
    });
  });

  it('the origin timing out or unreachable: 504/502 with their codes', async () => {
    const timedOut = randomUUID();
    const unreachable = randomUUID();
    const send = (path: string, requestId: string) =>
      new Promise<number>((resolve, reject) => {
        const req = httpRequest(
          {
            host: '127.0.0.1',
            port: gateway.gateway.trafficPort,
            path,
            headers: { host: HOST, 'x-request-id': requestId },
            agent: false,
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('error', reject);
        req.end();
      });
    expect(await send('/quick/slow/t', timedOut)).toBe(504);
    expect(await send('/dead/x', unreachable)).toBe(502);
    const timeoutLine = await accessLine(timedOut);
    const deadLine = await accessLine(unreachable);
    expect([timeoutLine['status'], timeoutLine['error_code'], timeoutLine['response_complete']]).toEqual([
      504,
      'upstream_timeout',
      true,
    ]);
    expect(deadLine['status']).toBe(502);
    expect(deadLine['error_code']).toBe('upstream_unreachable');
  });
});
