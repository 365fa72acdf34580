import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * A rewrite_path template names what the route's pattern matched, and the client chooses it: a
 * template naming one segment many times (stored before commands refused it) would make the path the
 * origin gets many times what the client sent, built and sent by the replica for every request.
 */
describe('rewrite_path templates that repeat what the client sent', () => {
  let gateway: TestGateway;
  let origin: Server;
  /** Bytes each request the origin received had before its head ended. */
  const heads: number[] = [];

  beforeAll(async () => {
    // Reads request heads of any length (node's own server stops at 16 KiB) and answers each.
    origin = createServer((socket: Socket) => {
      let bytes = 0;
      let text = '';
      socket.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        text = (text + chunk.toString('latin1')).slice(-4);
        if (text.endsWith('\r\n\r\n')) {
          heads.push(bytes);
          bytes = 0;
          socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
        }
      });
      socket.on('error', () => {});
    });
    origin.listen(0, '127.0.0.1');
    await once(origin, 'listening');
    const address = origin.address() as { port: number };
    gateway = await startTestGateway();
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'rewrites',
        origins: [{ id: originId, targets: [`http://127.0.0.1:${address.port}`] }],
        routes: [
          {
            origin_id: originId,
            path_pattern: '/copies/:n',
            rewrite_path: { template: `/${Array(160).fill(':n').join('/')}` },
          },
          {
            origin_id: originId,
            path_pattern: '/twice/:name/*',
            rewrite_path: { template: '/v2/:name/:name/*' },
          },
        ],
      }),
    );
  });

  afterAll(async () => {
    await gateway?.close();
    origin?.close();
  });

  it('answers 414 uri_too_long, never sending the origin a path of 160 copies of a long segment', async () => {
    heads.length = 0;
    const segment = 'a'.repeat(12_000);
    const answer = await send(gateway, 'rewrites.localhost', `/copies/${segment}`);
    expect(heads).toEqual([]);
    expect(answer.status).toBe(414);
    expect(answer.json()['error']).toMatchObject({ code: 'uri_too_long' });
  });

  it('still sends a template that repeats a short segment', async () => {
    heads.length = 0;
    const answer = await send(gateway, 'rewrites.localhost', '/copies/abc');
    expect(answer.status).toBe(200);
    expect(heads).toHaveLength(1);
    const twice = await send(gateway, 'rewrites.localhost', `/twice/${'b'.repeat(5_000)}/rest`);
    expect(twice.status).toBe(200);
  });
});
