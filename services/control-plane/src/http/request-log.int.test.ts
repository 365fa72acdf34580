import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlaneHarness, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * Every service's log lines share one bounded buffer (stdout, see createLogger): a client sending
 * request targets as long as the header limit allows would otherwise fill it, and the lines of other
 * tenants' requests would be dropped.
 */

const lines: Array<Record<string, unknown>> = [];
let cp: ControlPlaneHarness;

beforeAll(async () => {
  cp = await startControlPlane({
    logStream: new Writable({
      write(chunk: Buffer, _encoding, callback) {
        for (const line of chunk.toString('utf8').split('\n'))
          if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
        callback();
      },
    }),
  });
});
afterAll(async () => {
  await cp?.close();
});

describe('the control plane’s request log', () => {
  it('cuts a long request path to 2,048 characters and marks the cut', async () => {
    const long = `/api/v1/tenants/${'a'.repeat(8_000)}`;
    const answer = await cp.request('GET', long);
    expect(answer.status).toBeGreaterThanOrEqual(400);
    expect(answer.status).toBeLessThan(500);
    await expect.poll(() => lines.some((line) => line['message'] === 'request')).toBe(true);
    const logged = lines.find((line) => line['message'] === 'request')!['path'] as string;
    expect(logged).toBe(`${long.slice(0, 2048)}…`);
  });
});
