import { createHash, randomUUID } from 'node:crypto';
import { liveHeapAndBufferBytes } from '@vantageedge/shared/testing/live-memory';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RoutePolicy } from '../pipeline/stage.js';
import {
  type DefaultCertificateFiles,
  writeDefaultCertificateFiles,
} from '../testing/default-certificate-files.js';
import {
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { connectRawHttp2, dataFrame, headersFrame, type RawHttp2Client } from '../testing/raw-http2.js';
import { buildSnapshot } from '../testing/snapshots.js';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

const HOST = 'unread.localhost';
/** Connections, each with one request held in a stage before its body is read. */
const CLIENTS = 8;
/** What each sends of its body before the stage lets it through: one byte per DATA frame. */
const BYTES_SENT = 60_000;
/**
 * The 8 bodies' 480 KB, and what 8 connections with a request each hold, are well under it; their
 * 480,000 DATA frames kept as node hands them over (an object of ~100 bytes each) are 40 MB and more.
 */
const MAX_GROWTH_BYTES = 8 * 1024 * 1024;

/** A stage that holds every request to /upload from `hold()` until `release()`. */
function holdingStage(): { policy: RoutePolicy; hold(): void; release(): void } {
  let release = () => {};
  let released = Promise.resolve();
  return {
    policy: {
      name: 'hold',
      compileRoute: ({ route }) =>
        route.path_pattern === '/upload'
          ? { name: 'hold', onRequest: () => released.then(() => 'continue' as const) }
          : null,
    },
    hold: () => {
      released = new Promise<void>((resolve) => {
        release = resolve;
      });
    },
    release: () => release(),
  };
}

/**
 * A request body the gateway has not read yet (its request waits in a stage: authentication, a rate
 * limit's Redis round trip, a pooled origin connection) waits in its stream. Over HTTP/2 node hands each
 * DATA frame to the stream as a Buffer of its own (an object of ~100 bytes, a view keeping its whole
 * socket read alive), so a client sending one byte per frame made each byte cost a hundred, on every
 * stream of every connection, up to the stream's flow-control window.
 */
describe('HTTP/2 request bodies not read yet', () => {
  let gateway: TestGateway;
  let origin: TestOrigin;
  let certificates: DefaultCertificateFiles;
  const hold = holdingStage();
  const clients: RawHttp2Client[] = [];

  beforeAll(async () => {
    origin = await startTestOrigin('unread');
    certificates = await writeDefaultCertificateFiles('unread-bodies');
    gateway = await startTestGateway(
      { GATEWAY_H2C: 'true', ...certificates.tlsListenerEnv },
      { stages: [hold.policy] },
    );
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'unread',
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [{ origin_id: originId, path_pattern: '/upload' }],
      }),
    );
  });

  afterAll(async () => {
    hold.release();
    for (const client of clients) client.destroy();
    await gateway?.close();
    await origin?.close();
    await certificates?.remove();
  });

  const post = (scheme: string) =>
    headersFrame(
      1,
      [
        [':method', 'POST'],
        [':scheme', scheme],
        [':authority', HOST],
        [':path', '/upload'],
        ['content-length', String(BYTES_SENT + 1)],
      ],
      false,
    );

  /** Not in the test's async function: a suspended one keeps its locals (the frames) alive across awaits. */
  const sendByteFrames = (client: RawHttp2Client, scheme: string) => {
    const frames = [post(scheme)];
    for (let sent = 0; sent < BYTES_SENT; sent++) frames.push(dataFrame(1, 'x', false));
    client.send(...frames);
  };

  it.each([
    { listener: 'h2c', kind: 'plain' as const, scheme: 'http' },
    { listener: 'TLS (ALPN h2)', kind: 'tls' as const, scheme: 'https' },
  ])(
    '$listener: holds the bytes of bodies sent a byte per DATA frame, not the frames, and forwards them whole',
    async ({ kind, scheme }) => {
      const port = kind === 'tls' ? (gateway.gateway.tlsPort as number) : Number(new URL(gateway.url).port);
      hold.hold();
      // A first client warms the code paths up before the baseline is taken.
      const warm = await connectRawHttp2(kind, port);
      clients.push(warm);
      warm.send(post(scheme), dataFrame(1, 'x', false));
      await warm.ping();
      const before = liveHeapAndBufferBytes();

      const held: RawHttp2Client[] = [];
      for (let i = 0; i < CLIENTS; i++) {
        const client = await connectRawHttp2(kind, port);
        clients.push(client);
        held.push(client);
        sendByteFrames(client, scheme);
        await client.ping();
      }
      // Taken by the gateway, and the requests still wait in their stage.
      for (const client of held)
        expect(client.answer(1)).toMatchObject({ status: undefined, resetCode: undefined });
      expect(liveHeapAndBufferBytes() - before).toBeLessThan(MAX_GROWTH_BYTES);

      hold.release();
      for (const client of held) client.send(dataFrame(1, 'x', true));
      await expect
        .poll(() => held.map((client) => client.answer(1).ended), { timeout: 10_000 })
        .toEqual(held.map(() => true));
      const body = 'x'.repeat(BYTES_SENT + 1);
      for (const client of held) {
        const answer = client.answer(1);
        expect(answer.status).toBe(200);
        expect(JSON.parse(answer.body)).toEqual({ bytes: body.length, sha256: sha256(body) });
      }
    },
  );
});
