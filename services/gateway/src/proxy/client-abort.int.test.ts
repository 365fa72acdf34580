import { randomUUID } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { eventually } from '@vantageedge/shared/snapshot-bus/testing';
import { plainHttpRequest } from '@vantageedge/shared/testing/plain-http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';
import type { InspectableUpstreamSet } from '../upstream/upstream-set.js';

/**
 * Regression tests: a client that went away did not cancel the origin request. The gateway kept the
 * upstream exchange running (and a pooled origin connection pinned, and the target's in-flight count
 * up) until the origin answered or the origin timeout passed. Now the client's abort aborts the
 * upstream exchange, and the lease is released as cancelled, not as an origin failure.
 */
interface AbortWatchingOrigin {
  url: string;
  /** Resolves when the origin's connection for `path` closed before it finished answering. */
  abandoned(path: string): Promise<void>;
  /** Resolves when the origin received a request for `path`. */
  received(path: string): Promise<void>;
  close(): Promise<void>;
}

async function startAbortWatchingOrigin(): Promise<AbortWatchingOrigin> {
  const received = new Map<string, () => void>();
  const abandoned = new Map<string, () => void>();
  const promises = new Map<string, Promise<void>>();
  const signal = (map: Map<string, () => void>, key: string): Promise<void> => {
    const id = `${map === received ? 'r' : 'a'}:${key}`;
    let promise = promises.get(id);
    if (!promise) {
      promise = new Promise<void>((resolve) => map.set(key, resolve));
      promises.set(id, promise);
    }
    return promise;
  };
  const server: Server = createServer((req: IncomingMessage, res) => {
    const path = req.url ?? '/';
    void signal(received, path);
    void signal(abandoned, path);
    received.get(path)?.();
    res.once('close', () => {
      if (!res.writableFinished) abandoned.get(path)?.();
    });
    if (path.startsWith('/hang')) return; // answers nothing: only the gateway can end this exchange
    if (path.startsWith('/trickle')) {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first part;');
      return; // the rest never comes
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('fast');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    abandoned: (path) => signal(abandoned, path),
    received: (path) => signal(received, path),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function withinMs<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)),
  ]);
}

describe('a client that goes away', () => {
  let origin: AbortWatchingOrigin;
  let gateway: TestGateway;
  const tenantId = randomUUID();
  const originId = randomUUID();

  beforeAll(async () => {
    origin = await startAbortWatchingOrigin();
    gateway = await startTestGateway();
    gateway.store.apply(
      buildSnapshot({
        tenantId,
        subdomain: 'leaver',
        // A long origin timeout (the old behaviour held the exchange this long) and a circuit that
        // opens on the first failure, so a cancellation counted as a failure would show.
        origins: [
          {
            id: originId,
            targets: [origin.url],
            timeout_seconds: 120,
            circuit_breaker: { consecutive_failures: 1 },
            load_balancing: { algorithm: 'least_connections' },
          },
        ],
        routes: [{ origin_id: originId, path_pattern: '/*' }],
      }),
    );
  });

  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
  });

  const upstreams = () =>
    gateway.store.get(tenantId)?.origins.get(originId)?.upstreams as InspectableUpstreamSet;

  /** Starts a request and destroys it once the origin has it (or once response headers arrived). */
  function leaveAfter(path: string, when: 'origin_received' | 'headers'): Promise<void> {
    return new Promise((resolve) => {
      const request = httpRequest(
        {
          host: '127.0.0.1',
          port: gateway.gateway.trafficPort,
          path,
          headers: { host: 'leaver.localhost' },
          agent: false,
        },
        (response) => {
          if (when === 'headers') {
            response.once('data', () => request.destroy());
          }
        },
      );
      request.on('error', () => {});
      request.on('close', () => resolve());
      request.end();
      if (when === 'origin_received') void origin.received(path).then(() => request.destroy());
    });
  }

  it('before the origin answered: the origin request is aborted and the lease released as cancelled', async () => {
    await leaveAfter('/hang/1', 'origin_received');
    await withinMs(origin.abandoned('/hang/1'), 10_000, 'the origin request was aborted');

    await eventually('the lease is released', () => upstreams().status()[0]?.in_flight === 0, 5_000);
    const [target] = upstreams().status();
    expect(target?.circuit).toBe('closed');
    expect(target?.healthy).toBe(true);
    // The origin is still served: the cancellation did not count as a failure.
    const next = await fetchText('/fast');
    expect(next).toEqual({ status: 200, body: 'fast' });
  });

  it('in the middle of the response body: the origin exchange is aborted too', async () => {
    await leaveAfter('/trickle/1', 'headers');
    await withinMs(origin.abandoned('/trickle/1'), 10_000, 'the origin response was abandoned');
    await eventually('the lease is released', () => upstreams().status()[0]?.in_flight === 0, 5_000);
    const [target] = upstreams().status();
    expect(target?.circuit).toBe('closed');
  });

  function fetchText(path: string): Promise<{ status: number; body: string }> {
    return plainHttpRequest({
      host: '127.0.0.1',
      port: gateway.gateway.trafficPort,
      path,
      headers: { host: 'leaver.localhost' },
      agent: false,
    });
  }
});
