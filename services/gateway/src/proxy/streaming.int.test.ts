import { createHash, randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { liveHeapAndBufferBytes } from '@vantageedge/shared/testing/live-memory';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

const FIFTY_MB = 50 * 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 7);

/**
 * Live memory may grow by 16 MB at most: a body held whole grows it by all 50 MB (plus the copies of its
 * chunks), while streaming keeps it to buffers in flight — the client, gateway and origin share this
 * process; about 1 MB, also with every core busy.
 */
const MAX_GROWTH_BYTES = 16 * 1024 * 1024;

/** Peak of the process's live heap + Buffer memory while `work` runs, above the value before it. */
async function peakGrowth<T>(work: () => Promise<T>): Promise<{ result: T; growthBytes: number }> {
  // Two full GCs before each sample (the default), so the samples show live memory (what buffering would
  // hold), not garbage: after one, the socket chunks already dropped still counted up to 16 MB of
  // `arrayBuffers` (a second, straight after, brought it to under 1 MB), and under a full run's load that
  // passed 40 MB.
  const sample = () => liveHeapAndBufferBytes();
  const before = sample();
  let peak = before;
  const sampler = setInterval(() => {
    peak = Math.max(peak, sample());
  }, 50);
  try {
    const result = await work();
    peak = Math.max(peak, sample());
    return { result, growthBytes: peak - before };
  } finally {
    clearInterval(sampler);
  }
}

/**
 * Bodies stream through the gateway in both directions: 50 MB of generated data (never a 50 MB
 * buffer) arrives intact while the process's heap + buffer memory stays far below 50 MB.
 */
describe('streaming through the gateway', () => {
  let origin: TestOrigin;
  let gateway: TestGateway;

  beforeAll(async () => {
    origin = await startTestOrigin('bulk');
    gateway = await startTestGateway({ GATEWAY_MAX_BODY_BYTES: String(100 * 1024 * 1024) });
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'bulk',
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [{ origin_id: originId, path_pattern: '/*' }],
      }),
    );
  });

  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
  });

  it('streams a 50 MB upload to the origin', async () => {
    const expected = createHash('sha256');
    const { result, growthBytes } = await peakGrowth(
      () =>
        new Promise<{ status: number; body: { bytes: number; sha256: string } }>((resolve, reject) => {
          const req = httpRequest(
            {
              host: '127.0.0.1',
              port: gateway.gateway.trafficPort,
              method: 'POST',
              path: '/upload',
              headers: { host: 'bulk.localhost', 'content-length': String(FIFTY_MB) },
            },
            (res) => {
              let text = '';
              res.setEncoding('utf8');
              res.on('data', (chunk: string) => {
                text += chunk;
              });
              res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
            },
          );
          req.on('error', reject);
          let sent = 0;
          const pump = () => {
            while (sent < FIFTY_MB) {
              sent += CHUNK.length;
              expected.update(CHUNK);
              if (!req.write(CHUNK)) {
                req.once('drain', pump);
                return;
              }
            }
            req.end();
          };
          pump();
        }),
    );
    expect(result.status).toBe(200);
    expect(result.body).toEqual({ bytes: FIFTY_MB, sha256: expected.digest('hex') });
    expect(growthBytes).toBeLessThan(MAX_GROWTH_BYTES);
  });

  it('streams a 50 MB download to the client', async () => {
    const { result, growthBytes } = await peakGrowth(
      () =>
        new Promise<{ status: number; bytes: number }>((resolve, reject) => {
          const req = httpRequest(
            {
              host: '127.0.0.1',
              port: gateway.gateway.trafficPort,
              path: `/download?bytes=${FIFTY_MB}`,
              headers: { host: 'bulk.localhost' },
            },
            (res) => {
              let bytes = 0;
              res.on('data', (chunk: Buffer) => {
                bytes += chunk.length;
              });
              res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes }));
              res.on('error', reject);
            },
          );
          req.on('error', reject);
          req.end();
        }),
    );
    expect(result).toEqual({ status: 200, bytes: FIFTY_MB });
    expect(growthBytes).toBeLessThan(MAX_GROWTH_BYTES);
  });
});
