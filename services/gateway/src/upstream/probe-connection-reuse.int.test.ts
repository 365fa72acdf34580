import net from 'node:net';
import { originConfig } from '@vantageedge/shared/domain/gateway-config';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { onRequestHeads } from '../testing/request-heads.js';
import { startActiveHealthChecks } from './active-health-checks.js';
import { loopbackOriginsAllowed } from './testing/test-origin.js';

/**
 * Regression test: a health probe answered with `Connection: close` in its trailer section left its
 * connection open for the next probe (proxied requests close theirs), and that probe, sent to an origin
 * that had closed its side, failed: a healthy target was marked down. The origin here resets whatever
 * it reads after such an answer on that connection, as a server that has closed its side does.
 */
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function originClosingInTrailers(trailer: string): Promise<string> {
  const server = net.createServer((socket) => {
    let closed = false;
    onRequestHeads(socket, () => {
      if (closed) {
        socket.resetAndDestroy();
        return;
      }
      socket.write(
        `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: Connection\r\n\r\n2\r\nok\r\n0\r\n${trailer}\r\n\r\n`,
      );
      closed = true;
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

describe('a health probe answered with trailers saying Connection: close', () => {
  it.each(['Connection: close', 'connection: TE, Close'])(
    '%s: the next probe goes on a new connection and succeeds',
    async (trailer) => {
      const url = await originClosingInTrailers(trailer);
      const results: boolean[] = [];
      const active = originConfig.parse({
        id: '00000000-0000-4000-8000-000000000001',
        name: 'probed',
        targets: [{ url }],
        // A reset fails a probe at once: the timeout only leaves a busy machine time to answer.
        health_check: { active: { interval_seconds: 1, timeout_seconds: 10 } },
      }).health_check.active;
      const checks = startActiveHealthChecks(
        [{ probeUrl: `${url}/health`, onProbe: (success) => results.push(success) }],
        active,
        loopbackOriginsAllowed(),
      );
      cleanups.push(() => checks.stop());
      await vi.waitFor(() => expect(results.length).toBeGreaterThanOrEqual(3), { timeout: 10_000 });
      expect(results.slice(0, 3)).toEqual([true, true, true]);
    },
  );
});
