import { http2Connect, http2Request } from '@vantageedge/shared/testing/tls-clients';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { catchAllTenant } from '../testing/raw-connections.js';
import { FLAG, floodHttp2, frame, headerBlock, TYPE } from '../testing/raw-http2.js';

/**
 * Frame floods one HTTP/2 client can send without ever completing a request: endless CONTINUATION
 * frames without END_HEADERS (CVE-2024-27316), SETTINGS and PING frames whose acknowledgements it never
 * reads. Each must end that client's session long before the flood does, and another client on the
 * replica is served meanwhile (nghttp2's CONTINUATION cap, the session's memory and outstanding-ACK
 * bounds in HTTP2_SESSION_PROTECTION).
 */
const HOST = 'h2floods.localhost';
/** Frames a flood may send; a session that is still open after them was never stopped. */
const FLOOD_FRAMES = 100_000;

let origin: TestOrigin;
let gateway: TestGateway;

beforeAll(async () => {
  origin = await startTestOrigin('h2-floods-origin');
  gateway = await startTestGateway({ GATEWAY_H2C: 'true' });
  gateway.store.apply(catchAllTenant('h2floods', origin.url));
});

afterAll(async () => {
  await gateway?.close();
  await origin?.close();
});

const flood = (next: (i: number) => Buffer, opening?: Buffer[]) =>
  floodHttp2(Number(new URL(gateway.url).port), next, {
    frames: FLOOD_FRAMES,
    ...(opening ? { opening } : {}),
  });

const requestHead = headerBlock([
  [':method', 'GET'],
  [':scheme', 'http'],
  [':authority', HOST],
  [':path', '/flood'],
]);

const FLOODS: Record<string, { next: (i: number) => Buffer; opening?: Buffer[] }> = {
  'CONTINUATION frames without END_HEADERS': {
    opening: [frame(TYPE.HEADERS, FLAG.END_STREAM, 1, requestHead)],
    next: (i) => frame(TYPE.CONTINUATION, 0, 1, headerBlock([[`x-${i % 1000}`, 'v'.repeat(64)]])),
  },
  'empty CONTINUATION frames': {
    opening: [frame(TYPE.HEADERS, FLAG.END_STREAM, 1, requestHead)],
    next: () => frame(TYPE.CONTINUATION, 0, 1),
  },
  'SETTINGS frames': { next: () => frame(TYPE.SETTINGS, 0, 0, Buffer.from([0, 3, 0, 0, 0, 100])) },
  'PING frames': { next: () => frame(TYPE.PING, 0, 0, Buffer.alloc(8)) },
};

const slug = (name: string) => name.toLowerCase().replaceAll(/[^a-z]+/g, '-');

describe('HTTP/2 frame floods from one client', () => {
  it.each(Object.keys(FLOODS))('%s end its session; another client is served', async (name) => {
    const { next, opening } = FLOODS[name]!;
    const other = http2Connect(gateway.url);
    try {
      const [{ sent, closed }, during] = await Promise.all([
        flood(next, opening),
        http2Request(other, { path: `/during/${slug(name)}`, authority: HOST }),
      ]);
      expect({ sent: sent < FLOOD_FRAMES, closed }).toEqual({ sent: true, closed: true });
      expect(during.status).toBe(200);
      const after = await http2Request(other, { path: `/after/${slug(name)}`, authority: HOST });
      expect(after.status).toBe(200);
      expect(origin.seen.some((entry) => entry.url === '/flood')).toBe(false);
    } finally {
      other.destroy();
    }
  });
});
