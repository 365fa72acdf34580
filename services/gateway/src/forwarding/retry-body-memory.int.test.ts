import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { liveHeapAndBufferBytes } from '@vantageedge/shared/testing/live-memory';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { connectRawHttp2, dataFrame, headersFrame, type RawHttp2Client } from '../testing/raw-http2.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { RETRY_BODY_BUFFER_BYTES } from './retryable-body.js';

const HOST = 'retry-memory.localhost';
/** Clients, each with one request whose body stops short of its announced length. */
const CLIENTS = 8;
/** What each sends of its body: one byte per DATA frame (within HTTP/2's initial 64 KiB windows). */
const BYTES_SENT = 60_000;
/**
 * The 8 bodies' 480 KB, and what 8 connections with a request each hold, are well under it; their
 * 480,000 DATA frames kept as they arrived (an object of ~100 bytes each) are 50 MB and more.
 */
const MAX_GROWTH_BYTES = 10 * 1024 * 1024;

/**
 * A retryable request's body is read into memory (so it can be sent again) within the replica's retry
 * buffer budget, which counts its bytes. What the gateway holds must be those bytes, not the chunks
 * they came in: an HTTP/2 client sending one byte per DATA frame made each byte an object of its own
 * (and each chunk a view keeping its whole socket read alive), a hundred times what the budget counted.
 */
describe('retry body memory', () => {
  let gateway: TestGateway;
  let origin: Server;
  const clients: RawHttp2Client[] = [];

  beforeAll(async () => {
    origin = createServer((req) => req.resume()); // never answers; no body here ever ends anyway
    await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
    gateway = await startTestGateway({ GATEWAY_H2C: 'true' });
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'retry-memory',
        origins: [
          {
            id: originId,
            targets: [`http://127.0.0.1:${(origin.address() as AddressInfo).port}`],
            health_check: { active: { enabled: false }, passive: { enabled: false } },
          },
        ],
        routes: [{ origin_id: originId, path_pattern: '/orders/*', retries: { methods: ['POST'] } }],
      }),
    );
  });

  afterAll(async () => {
    for (const client of clients) client.destroy();
    await gateway?.close();
    await new Promise<void>((resolve) => {
      origin?.closeAllConnections();
      origin?.close(() => resolve());
    });
  });

  const post = (path: string) =>
    headersFrame(
      1,
      [
        [':method', 'POST'],
        [':scheme', 'http'],
        [':authority', HOST],
        [':path', path],
        ['content-length', String(RETRY_BODY_BUFFER_BYTES)],
      ],
      false,
    );

  it('holds the bytes of bodies sent one byte per HTTP/2 DATA frame, not each frame', async () => {
    const port = Number(new URL(gateway.url).port);
    // A first client warms the code paths up before the baseline is taken.
    const warm = await connectRawHttp2('plain', port);
    clients.push(warm);
    warm.send(post('/orders/warm-up'), dataFrame(1, 'x', false));
    await warm.ping();
    const before = liveHeapAndBufferBytes();

    for (let i = 0; i < CLIENTS; i++) {
      const client = await connectRawHttp2('plain', port);
      clients.push(client);
      const frames = [post(`/orders/${i}`)];
      for (let sent = 0; sent < BYTES_SENT; sent++) frames.push(dataFrame(1, 'x', false));
      client.send(...frames);
      await client.ping();
    }
    // Taken by the gateway, and the requests still wait for the rest of their bodies.
    for (const client of clients)
      expect(client.answer(1)).toMatchObject({ status: undefined, resetCode: undefined });

    let growth = liveHeapAndBufferBytes() - before;
    // What a request's stages had not read yet when the frames arrived is read (and copied) just after.
    for (let i = 0; i < 20 && growth > MAX_GROWTH_BYTES; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      growth = liveHeapAndBufferBytes() - before;
    }
    expect(growth).toBeLessThan(MAX_GROWTH_BYTES);
  });
});
