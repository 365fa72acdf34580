import { createServer, request as httpRequest, type Server } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { eventually } from '@vantageedge/shared/snapshot-bus/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { applyOneOriginTenant } from '../testing/one-origin-tenants.js';
import type { InspectableUpstreamSet } from '../upstream/upstream-set.js';

/**
 * Regression tests: exchanges ended by the client, not the origin, were released as origin failures,
 * so any client could eject a healthy target and open its circuit for every other client:
 * - a chunked body over GATEWAY_MAX_BODY_BYTES (413) counted as a `reset`;
 * - a client leaving after the origin's response head but before its first body byte counted as a `reset`;
 * - a slow upload to an origin that sends 103 Early Hints got 504 mid-upload, counted as a `timeout`
 *   (the final-head deadline ran from the request's start, upload included, not from its end); so did
 *   one pausing its upload for longer than the origin timeout (the deadline between two chunks of the
 *   body ran while the client sent nothing, not only while the origin took nothing);
 * - a 501 Not Implemented, an origin's answer to a method it does not know (the client's choice), counted
 *   as a server error.
 * Each origin here ejects its target and opens its circuit on the first failure, so a single miscounted
 * ending shows.
 */
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const FRAGILE = {
  timeout_seconds: 1,
  circuit_breaker: { consecutive_failures: 1 },
  health_check: { active: { enabled: false }, passive: { unhealthy_threshold: 1 } },
};

let gateway: TestGateway;
let origin: Server;
const timers = new Set<NodeJS.Timeout>();

beforeAll(async () => {
  origin = createServer((req, res) => {
    if (req.url === '/upload') {
      req.resume();
      req.on('end', () => res.end('stored'));
      return;
    }
    if (req.url === '/hints-upload') {
      // 103 at once (before reading the body), the final answer once the whole upload is in.
      res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
      req.resume();
      req.on('end', () => res.end('stored'));
      return;
    }
    if (req.method === 'PROPFIND') {
      // What RFC 9110 §15.6.2 asks of a server that does not recognise the request method.
      res.writeHead(501, { allow: 'GET, POST' });
      res.end('not implemented');
      return;
    }
    if (req.url === '/events') {
      // A stream (SSE, long poll): the head now, the first event much later.
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.flushHeaders();
      const timer = setTimeout(() => res.end('data: hi\n\n'), 10_000);
      timers.add(timer);
      res.on('close', () => clearTimeout(timer));
      return;
    }
    req.resume();
    res.end('healthy');
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  gateway = await startTestGateway({ GATEWAY_MAX_BODY_BYTES: '1024' });
});

afterAll(async () => {
  for (const timer of timers) clearTimeout(timer);
  await gateway?.close();
  origin.closeAllConnections();
  await new Promise<void>((resolve) => origin.close(() => resolve()));
});

/** A tenant of its own (a fresh circuit) whose one origin is the test origin. */
function tenantWithFragileOrigin(subdomain: string): () => InspectableUpstreamSet {
  return applyOneOriginTenant(gateway, subdomain, {
    targets: [`http://127.0.0.1:${(origin.address() as AddressInfo).port}`],
    ...FRAGILE,
  });
}

async function expectTargetUntouched(upstreams: () => InspectableUpstreamSet, host: string): Promise<void> {
  await eventually('every lease is released', () => upstreams().status()[0]?.in_flight === 0, 5_000);
  expect(upstreams().status()[0]).toMatchObject({ healthy: true, circuit: 'closed' });
  const after = await send(gateway, host, '/x');
  expect({ status: after.status, text: after.text }).toEqual({ status: 200, text: 'healthy' });
}

function post(
  host: string,
  path: string,
  headers: Record<string, string>,
  write: (req: ReturnType<typeof httpRequest>) => void,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port: gateway.gateway.trafficPort,
        method: 'POST',
        path,
        headers: { host, ...headers },
        agent: false,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    write(req);
  });
}

describe('an exchange the client ends is not held against the origin', () => {
  it('a chunked body over GATEWAY_MAX_BODY_BYTES: 413, the target stays healthy with its circuit closed', async () => {
    const upstreams = tenantWithFragileOrigin('oversize');
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      statuses.push(
        await post('oversize.localhost', '/upload', { 'transfer-encoding': 'chunked' }, (req) => {
          req.write(Buffer.alloc(800, 1));
          setTimeout(() => req.end(Buffer.alloc(800, 1)), 50);
        }),
      );
    }
    expect(statuses).toEqual([413, 413, 413]);
    await expectTargetUntouched(upstreams, 'oversize.localhost');
  });

  it('a client leaving after the origin sent its head, before the first body byte', async () => {
    const upstreams = tenantWithFragileOrigin('early-leaver');
    for (let i = 0; i < 3; i++) {
      const socket = net.connect(gateway.gateway.trafficPort, '127.0.0.1');
      socket.on('error', () => {});
      socket.write('GET /events HTTP/1.1\r\nHost: early-leaver.localhost\r\n\r\n');
      await sleep(300); // the origin's head has reached the gateway; its body is 10 s away
      socket.destroy();
    }
    await expectTargetUntouched(upstreams, 'early-leaver.localhost');
  });

  it('a client leaving in the middle of its upload', async () => {
    const upstreams = tenantWithFragileOrigin('upload-leaver');
    for (let i = 0; i < 3; i++) {
      const req = httpRequest({
        host: '127.0.0.1',
        port: gateway.gateway.trafficPort,
        method: 'POST',
        path: '/upload',
        headers: { host: 'upload-leaver.localhost', 'content-length': '1000' },
        agent: false,
      });
      req.on('error', () => {});
      req.write(Buffer.alloc(500, 1));
      await sleep(200);
      req.destroy();
    }
    await expectTargetUntouched(upstreams, 'upload-leaver.localhost');
  });

  it('a slow upload to an origin that sends 103 Early Hints: answered 200, though it outlasts the origin timeout', async () => {
    const upstreams = tenantWithFragileOrigin('hints');
    // 15 bytes, one every 100 ms: 1.5 s of upload against an origin timeout of 1 s.
    const slowUpload = () =>
      post('hints.localhost', '/hints-upload', { 'content-length': '15' }, (req) => {
        let sent = 0;
        const tick = setInterval(() => {
          req.write('x');
          if (++sent === 15) {
            clearInterval(tick);
            req.end();
          }
        }, 100);
      });
    expect(await Promise.all([slowUpload(), slowUpload()])).toEqual([200, 200]);
    await expectTargetUntouched(upstreams, 'hints.localhost');
  });

  it('a client pausing its upload after the origin sent 103 Early Hints: answered 200, the pause is not the origin timing out', async () => {
    const upstreams = tenantWithFragileOrigin('hints-pause');
    // The origin reads what comes; the client goes quiet for longer than the origin timeout (1 s).
    const pausedUpload = () =>
      post('hints-pause.localhost', '/hints-upload', { 'content-length': '10' }, (req) => {
        req.write('xxxxx');
        setTimeout(() => req.end('xxxxx'), 1_600);
      });
    expect(await pausedUpload()).toBe(200);
    await expectTargetUntouched(upstreams, 'hints-pause.localhost');
  });

  it('a method the origin does not implement: its 501 reaches the client, the target stays healthy', async () => {
    const upstreams = tenantWithFragileOrigin('unknown-method');
    const propfind = () =>
      new Promise<number>((resolve, reject) => {
        const req = httpRequest(
          {
            host: '127.0.0.1',
            port: gateway.gateway.trafficPort,
            method: 'PROPFIND',
            path: '/x',
            headers: { host: 'unknown-method.localhost' },
            agent: false,
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('error', reject);
        req.end();
      });
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push(await propfind());
    expect(statuses).toEqual([501, 501, 501]);
    await expectTargetUntouched(upstreams, 'unknown-method.localhost');
  });
});
