import { randomUUID } from 'node:crypto';
import { type ClientHttp2Session, constants } from 'node:http2';
import net from 'node:net';
import { liveHeapAndBufferBytes } from '@vantageedge/shared/testing/live-memory';
import { http2Connect } from '@vantageedge/shared/testing/tls-clients';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { onRequestHeads } from '../testing/request-heads.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * An origin's body in chunks of a byte each. Regression test: each chunk undici handed over went to the
 * client as a write of its own, a Buffer view keeping its whole socket read alive plus node's bookkeeping
 * of a write, held while the client did not read: 20 responses to clients reading nothing held 217 MB of
 * the replica's memory (6 MB for the same bodies in large chunks), so one tenant's origin and clients
 * could run a replica out of memory, every tenant's traffic with it.
 */
const HOST = 'pieces.localhost';
/** An origin write of one-byte chunks. */
const PIECES = Buffer.from('1\r\nx\r\n'.repeat(10_000), 'latin1');
const STALLED_CLIENTS = 20;
/** Live memory 20 stalled responses may add: what the large-chunk bodies add (~6 MB), with room for noise. */
const MAX_GROWTH_BYTES = 40 * 1024 * 1024;

let gateway: TestGateway;
let origin: net.Server;
let session: ClientHttp2Session;
const stalledClients: net.Socket[] = [];
/** Origin connections whose writes wait for the gateway to read (it paused for its client). */
const blockedOriginSockets = new Set<net.Socket>();

beforeAll(async () => {
  origin = net.createServer((socket) =>
    onRequestHeads(socket, (_head, path) => {
      socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n');
      if (path === '/whole') {
        socket.write(PIECES);
        setTimeout(() => socket.write(Buffer.concat([PIECES, Buffer.from('0\r\n\r\n')])), 20);
        return;
      }
      // Without end, as fast as the gateway reads.
      const more = (): void => {
        while (!socket.destroyed) {
          if (socket.write(PIECES)) continue;
          blockedOriginSockets.add(socket);
          socket.once('drain', () => {
            blockedOriginSockets.delete(socket);
            more();
          });
          return;
        }
      };
      more();
    }),
  );
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  gateway = await startTestGateway({ GATEWAY_H2C: 'true' });
  const originId = randomUUID();
  gateway.store.apply(
    buildSnapshot({
      subdomain: 'pieces',
      origins: [
        {
          id: originId,
          targets: [`http://127.0.0.1:${(origin.address() as net.AddressInfo).port}`],
          timeout_seconds: 60,
        },
      ],
      routes: [{ origin_id: originId, path_pattern: '/*' }],
    }),
  );
  session = http2Connect(gateway.url);
});

afterAll(async () => {
  for (const client of stalledClients) client.destroy();
  session?.close();
  await gateway?.close();
  await new Promise<void>((resolve) => origin?.close(() => resolve()));
});

/** Resolves once every one of `count` origin connections has waited for the gateway a while. */
async function originsBlocked(count: number): Promise<void> {
  let steady = 0;
  while (steady < 3) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    steady = blockedOriginSockets.size >= count ? steady + 1 : 0;
  }
}

describe("an origin's body in one-byte chunks", () => {
  it('reaches HTTP/1.1 and HTTP/2 clients whole', async () => {
    const whole = 'x'.repeat(20_000);
    expect((await send(gateway, HOST, '/whole')).text).toBe(whole);
    const stream = session.request({
      [constants.HTTP2_HEADER_PATH]: '/whole',
      [constants.HTTP2_HEADER_AUTHORITY]: HOST,
    });
    const frames: Buffer[] = [];
    stream.on('data', (frame: Buffer) => frames.push(frame));
    await new Promise((resolve) => stream.on('end', resolve));
    expect(Buffer.concat(frames).toString('latin1')).toBe(whole);
  });

  it('held for clients that read none of it, takes about its bytes of the replica’s memory', async () => {
    const before = liveHeapAndBufferBytes();
    for (let i = 0; i < STALLED_CLIENTS; i++) {
      const client = net.connect(gateway.gateway.trafficPort, '127.0.0.1');
      client.on('error', () => {});
      client.pause();
      client.write(`GET /endless/${i} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
      stalledClients.push(client);
    }
    await originsBlocked(STALLED_CLIENTS);
    expect(liveHeapAndBufferBytes() - before).toBeLessThan(MAX_GROWTH_BYTES);
  });
});
