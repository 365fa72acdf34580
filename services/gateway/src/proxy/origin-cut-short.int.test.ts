import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { receivedUntilClosed } from '../testing/raw-exchange.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * Regression tests (found by the replica robustness property test): an origin that sent its status
 * line and headers and then closed before any body byte — or sent a status node cannot write — left
 * the client with a connection closed before any status line. undici destroyed the client response
 * itself, and node had not sent the held-back head yet. Now the head goes out with the first body byte,
 * so such a client gets a clean 502. (The other cases are standing checks of the same path.)
 */
const answers: Record<string, string> = {
  '/headers-then-close': 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\n',
  '/status-099': 'HTTP/1.1 099 Too Low\r\nContent-Length: 2\r\n\r\nhi',
  '/half-body': 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf!',
};

let gateway: TestGateway;
let origin: net.Server;

beforeAll(async () => {
  origin = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.once('data', (chunk: Buffer) => {
      const path = chunk.toString('latin1').split(' ')[1] ?? '';
      socket.write(answers[path] ?? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
      socket.destroy();
    });
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  gateway = await startTestGateway();
  const originId = randomUUID();
  gateway.store.apply(
    buildSnapshot({
      subdomain: 'cut',
      origins: [
        { id: originId, targets: [`http://127.0.0.1:${(origin.address() as net.AddressInfo).port}`] },
      ],
      routes: [{ origin_id: originId, path_pattern: '/*' }],
    }),
  );
});

afterAll(async () => {
  await gateway?.close();
  await new Promise<void>((resolve) => origin.close(() => resolve()));
});

describe('an origin that fails after starting its answer', () => {
  it.each([
    ['closes after its headers, before any body byte', '/headers-then-close'],
    ['sends a status outside 100-999', '/status-099'],
  ])('%s: the client gets 502 upstream_error', async (_what, path) => {
    const answer = await send(gateway, 'cut.localhost', path);
    expect(answer.status).toBe(502);
    expect((answer.json()['error'] as { code: string }).code).toBe('upstream_error');
  });

  it('closes in the middle of its body: the client gets the status line, the first bytes, then the cut', async () => {
    const received = await receivedUntilClosed(
      gateway.gateway.trafficPort,
      'GET /half-body HTTP/1.1\r\nHost: cut.localhost\r\n\r\n',
    );
    expect(received.startsWith('HTTP/1.1 200 OK\r\n')).toBe(true);
    expect(received.toLowerCase()).toContain('content-length: 10');
    expect(received.endsWith('\r\n\r\nhalf!')).toBe(true);
  });
});
