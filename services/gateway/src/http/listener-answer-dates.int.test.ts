import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { receivedUntilClosed } from '../testing/raw-exchange.js';

/**
 * The answers a listener writes itself (a request node's parser refused, a head too large or too late, a
 * CONNECT) carry a Date, as every answer of the pipeline does (RFC 9110 §6.6.1: a server with a clock
 * sends one in every 4xx). Regression test: these four had none.
 */
let gateway: TestGateway;

beforeAll(async () => {
  gateway = await startTestGateway({ GATEWAY_MAX_HEADER_BYTES: '1024', GATEWAY_HEADERS_TIMEOUT_MS: '200' });
});

afterAll(async () => {
  await gateway.close();
});

/** The answer's head, read until the gateway closes the connection. */
async function answerHead(request: string): Promise<string> {
  const text = await receivedUntilClosed(gateway.gateway.trafficPort, request);
  return text.split('\r\n\r\n')[0] ?? '';
}

function dateOf(head: string): number {
  const value = /\r\ndate: ([^\r]*)/i.exec(head)?.[1];
  return value === undefined ? Number.NaN : Date.parse(value);
}

describe('answers a listener writes itself', () => {
  it.each([
    ['400 malformed_request', 'GET / HTTP/1.1\r\nHost: a.localhost\r\nBad Header\r\n\r\n'],
    ['431 headers_too_large', `GET / HTTP/1.1\r\nHost: a.localhost\r\nX-Big: ${'x'.repeat(2048)}\r\n\r\n`],
    ['408 request_timeout', 'GET / HTTP/1.1\r\nHost: a.localhost\r\n'],
    ['405 method_not_supported', 'CONNECT a.localhost:443 HTTP/1.1\r\nHost: a.localhost:443\r\n\r\n'],
  ])('%s carries the Date it was sent', async (answer, request) => {
    const before = Math.floor(Date.now() / 1000) * 1000;
    const head = await answerHead(request);
    expect(head.startsWith(`HTTP/1.1 ${answer.split(' ')[0]} `), head).toBe(true);
    const date = dateOf(head);
    expect(date, head).toBeGreaterThanOrEqual(before);
    expect(date, head).toBeLessThanOrEqual(Date.now());
  });
});
