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
 * reads, PRIORITY frames, empty DATA frames (CVE-2019-9518), empty HEADERS on a stream already closed,
 * and WINDOW_UPDATE frames. Each must end that client's session long before the flood does, and another
 * client on the replica is served meanwhile (nghttp2's CONTINUATION cap, the session's memory and
 * outstanding-ACK bounds and its invalid-frame cap in HTTP2_SESSION_PROTECTION, Http2ReadBudget).
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

/** A request the gateway serves (or waits for the body of) before the flood goes on. */
const servedHead = headerBlock([
  [':method', 'POST'],
  [':scheme', 'http'],
  [':authority', HOST],
  [':path', '/before-flood'],
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
  'PRIORITY frames': { next: (i) => frame(TYPE.PRIORITY, 0, 3, Buffer.from([0, 0, 0, i % 2 ? 5 : 7, 16])) },
  'PRIORITY frames for new streams': {
    next: (i) => frame(TYPE.PRIORITY, 0, 2 * i + 3, Buffer.from([0, 0, 0, 0, 16])),
  },
  'empty DATA frames': {
    opening: [frame(TYPE.HEADERS, FLAG.END_HEADERS, 1, servedHead)],
    next: () => frame(TYPE.DATA, 0, 1),
  },
  'empty HEADERS frames ending a closed stream': {
    opening: [frame(TYPE.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, servedHead)],
    next: () => frame(TYPE.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1),
  },
};

const slug = (name: string) => name.toLowerCase().replaceAll(/[^a-z]+/g, '-');

const increment = (by: number) => {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(by);
  return payload;
};
const served = frame(TYPE.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, servedHead);

/**
 * Frames nghttp2 processes without limit when no ACK piles up: a window increment of 1 (on the
 * connection, on a stream whose upload never comes, or on a stream already closed, which RFC 9113 §6.9
 * lets a server ignore). Each costs the replica as much as a PING; Envoy's
 * max_inbound_window_update_frames_per_data_frame_sent ends such a connection, and so must the gateway
 * long before the flood's end. Millions of frames: the budget is checked a few times a second.
 */
const WINDOW_FLOOD_FRAMES = 5_000_000;
const WINDOW_FLOODS: Record<string, { next: () => Buffer; opening?: Buffer[] }> = {
  'WINDOW_UPDATE frames on the connection': { next: () => frame(TYPE.WINDOW_UPDATE, 0, 0, increment(1)) },
  'WINDOW_UPDATE frames on an open stream': {
    opening: [frame(TYPE.HEADERS, FLAG.END_HEADERS, 1, servedHead)],
    next: () => frame(TYPE.WINDOW_UPDATE, 0, 1, increment(1)),
  },
  'WINDOW_UPDATE frames on a closed stream': {
    opening: [served],
    next: () => frame(TYPE.WINDOW_UPDATE, 0, 1, increment(1)),
  },
};

/** What the replica's /metrics says of sessions the read budget ended. */
async function sessionsOverReadBudget(): Promise<number> {
  const metric = await gateway.registry
    .getSingleMetric('vantageedge_gateway_http2_sessions_over_read_budget_total')
    ?.get();
  return metric?.values[0]?.value ?? 0;
}

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

  it.each(Object.keys(WINDOW_FLOODS))('%s end its session; another client is served', async (name) => {
    const { next, opening } = WINDOW_FLOODS[name]!;
    const endedBefore = await sessionsOverReadBudget();
    const other = http2Connect(gateway.url);
    try {
      const [{ sent, closed }, during] = await Promise.all([
        floodHttp2(Number(new URL(gateway.url).port), next, {
          frames: WINDOW_FLOOD_FRAMES,
          reads: true,
          ...(opening ? { opening } : {}),
        }),
        http2Request(other, { path: `/during/${slug(name)}`, authority: HOST }),
      ]);
      expect({ sent: sent < WINDOW_FLOOD_FRAMES, closed }).toEqual({ sent: true, closed: true });
      expect(during.status).toBe(200);
      expect((await http2Request(other, { path: `/after/${slug(name)}`, authority: HOST })).status).toBe(200);
      expect(await sessionsOverReadBudget()).toBe(endedBefore + 1);
    } finally {
      other.destroy();
    }
  });

  it('a session that uploads and downloads megabytes, its client sending the windows they take, is served on', async () => {
    const session = http2Connect(gateway.url);
    try {
      const body = Buffer.alloc(4 * 1024 * 1024, 1);
      const upload = await http2Request(session, { path: '/upload', authority: HOST, method: 'POST', body });
      expect({ status: upload.status, bytes: JSON.parse(upload.body).bytes }).toEqual({
        status: 200,
        bytes: body.length,
      });
      // The budget is checked a few times a second: the upload's bytes are weighed before anything else
      // is written to the session.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect((await http2Request(session, { path: '/after/upload', authority: HOST })).status).toBe(200);
      const download = await http2Request(session, { path: '/download?bytes=16000000', authority: HOST });
      expect({ status: download.status, bytes: download.body.length }).toEqual({
        status: 200,
        bytes: 16_000_000,
      });
      expect((await http2Request(session, { path: '/after/transfers', authority: HOST })).status).toBe(200);
    } finally {
      session.destroy();
    }
  });
});
