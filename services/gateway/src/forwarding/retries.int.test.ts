import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';
import { constants } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { http2Connect } from '@vantageedge/shared/testing/tls-clients';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

/** Targets that fail stay in rotation: these tests count where each request went. */
const NO_HEALTH_CHECKS = { active: { enabled: false }, passive: { enabled: false } };

/** An origin target that records what it got and answers with `behave`. */
interface ScriptedTarget {
  url: string;
  seen: Array<{ method: string; url: string; body: string }>;
  close(): Promise<void>;
}

async function scriptedTarget(
  behave: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<ScriptedTarget> {
  const seen: ScriptedTarget['seen'] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', body: Buffer.concat(chunks).toString() });
      behave(req, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const resets = (req: IncomingMessage) => req.socket.destroy();

/** The access-log line of the request for `path`, once the gateway has written it. */
async function logLineOf(gateway: TestGateway, path: string): Promise<Record<string, unknown>> {
  for (let i = 0; i < 200; i++) {
    const line = gateway.logLines.find((entry) => entry['path'] === path);
    if (line !== undefined) return line;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`no access-log line for ${path}`);
}
const answers = (name: string) => (req: IncomingMessage, res: ServerResponse) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'x-target': name });
  res.end(`${name}:${req.method}`);
};

/**
 * Timeouts and retries through the real pipeline against real sockets: a reset or a 503 of an
 * idempotent request is retried on the origin's other target, a POST is not (unless the route lists
 * it; its body is sent again intact), the retry budget stops a retry storm, and the route's
 * response_headers_ms / idle_ms replace the origin's timeout.
 */
describe('timeouts and retries route policies', () => {
  let gateway: TestGateway;
  let resetting: ScriptedTarget;
  let healthy: ScriptedTarget;
  let unavailable: ScriptedTarget;
  let alsoUnavailable: ScriptedTarget;
  let trickling: ScriptedTarget;
  let alsoResetting: ScriptedTarget;
  let answersThenCuts: ScriptedTarget;
  let slow: TestOrigin;
  let stalling: Server;

  beforeAll(async () => {
    resetting = await scriptedTarget(resets);
    alsoResetting = await scriptedTarget(resets);
    // Answers (its head goes out), then its connection is cut before the body.
    answersThenCuts = await scriptedTarget((req, res) => {
      res.writeHead(201, { 'content-type': 'text/plain', 'content-length': '7' });
      res.flushHeaders();
      setTimeout(() => req.socket.destroy(), 50);
    });
    healthy = await scriptedTarget(answers('healthy'));
    const downForAMoment = (_req: IncomingMessage, res: ServerResponse) => {
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('down for a moment');
    };
    unavailable = await scriptedTarget(downForAMoment);
    alsoUnavailable = await scriptedTarget(downForAMoment);
    // A 503 whose body never ends: a byte every 100 ms.
    trickling = await scriptedTarget((_req, res) => {
      res.writeHead(503, { 'content-type': 'text/plain' });
      const timer = setInterval(() => res.write('.'), 100);
      res.on('close', () => clearInterval(timer));
    });
    slow = await startTestOrigin('slow');
    stalling = createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first part, then silence');
    });
    await new Promise<void>((resolve) => stalling.listen(0, '127.0.0.1', resolve));
    // h2c beside HTTP/1.1 on the plain listener: a client that leaves, over either protocol.
    gateway = await startTestGateway({ GATEWAY_H2C: 'true' });
    const bothUnavailable = randomUUID();
    const resetPair = randomUUID();
    const unavailablePair = randomUUID();
    const tricklingPair = randomUUID();
    const bothReset = randomUUID();
    const slowOrigin = randomUUID();
    const stallingOrigin = randomUUID();
    const answeredPair = randomUUID();
    const ejectedAtOnce = randomUUID();
    const generousBudget = { percent: 100, min_retries: 1000 };
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'retry',
        origins: [
          {
            id: resetPair,
            targets: [resetting.url, healthy.url],
            health_check: NO_HEALTH_CHECKS,
            circuit_breaker: { enabled: false },
          },
          {
            id: unavailablePair,
            targets: [unavailable.url, healthy.url],
            health_check: NO_HEALTH_CHECKS,
            circuit_breaker: { enabled: false },
          },
          {
            id: tricklingPair,
            targets: [trickling.url, healthy.url],
            health_check: NO_HEALTH_CHECKS,
            circuit_breaker: { enabled: false },
          },
          {
            id: bothReset,
            targets: [resetting.url, alsoResetting.url],
            health_check: NO_HEALTH_CHECKS,
            circuit_breaker: { enabled: false },
          },
          {
            id: bothUnavailable,
            targets: [unavailable.url, alsoUnavailable.url],
            health_check: NO_HEALTH_CHECKS,
            circuit_breaker: { enabled: false },
          },
          {
            id: answeredPair,
            targets: [answersThenCuts.url, healthy.url],
            health_check: NO_HEALTH_CHECKS,
            circuit_breaker: { enabled: false },
          },
          {
            id: ejectedAtOnce,
            targets: [unavailable.url],
            health_check: { active: { enabled: false }, passive: { enabled: true, unhealthy_threshold: 1 } },
            circuit_breaker: { enabled: false },
          },
          { id: slowOrigin, targets: [slow.url], timeout_seconds: 30 },
          {
            id: stallingOrigin,
            targets: [`http://127.0.0.1:${(stalling.address() as AddressInfo).port}`],
            timeout_seconds: 30,
          },
        ],
        routes: [
          { origin_id: resetPair, path_pattern: '/reset/*', retries: { budget: generousBudget } },
          {
            origin_id: resetPair,
            path_pattern: '/reset-post/*',
            retries: { methods: ['POST'], budget: generousBudget },
          },
          {
            origin_id: unavailablePair,
            path_pattern: '/unavailable/*',
            retries: { on: ['503'], budget: generousBudget },
          },
          {
            origin_id: tricklingPair,
            path_pattern: '/trickling/*',
            timeouts: { response_headers_ms: 1000, idle_ms: 1000 },
            retries: { on: ['503'], budget: generousBudget },
          },
          {
            origin_id: bothReset,
            path_pattern: '/storm/*',
            retries: {
              attempts: 2,
              backoff: { base_ms: 0, max_ms: 0 },
              budget: { percent: 10, min_retries: 2 },
            },
          },
          {
            origin_id: answeredPair,
            path_pattern: '/answered/*',
            retries: { methods: ['GET', 'POST'], budget: generousBudget },
          },
          {
            origin_id: ejectedAtOnce,
            path_pattern: '/ejected/*',
            retries: { on: ['503'], budget: generousBudget },
          },
          {
            origin_id: bothUnavailable,
            path_pattern: '/left/*',
            // A backoff long enough that the client leaves while it runs.
            retries: { on: ['503'], backoff: { base_ms: 10_000, max_ms: 10_000 }, budget: generousBudget },
          },
          { origin_id: slowOrigin, path_pattern: '/slow/*', timeouts: { response_headers_ms: 200 } },
          { origin_id: stallingOrigin, path_pattern: '/stall/*', timeouts: { idle_ms: 200 } },
        ],
      }),
    );
  });

  afterAll(async () => {
    await gateway?.close();
    await Promise.all(
      [resetting, alsoResetting, answersThenCuts, healthy, unavailable, alsoUnavailable, trickling, slow].map(
        (t) => t?.close(),
      ),
    );
    await new Promise<void>((resolve) => {
      stalling?.closeAllConnections();
      stalling?.close(() => resolve());
    });
  });

  it('retries a GET whose connection was reset on the other target, and logs and counts the retry', async () => {
    const resetsBefore = resetting.seen.length;
    const answersList = [];
    for (let i = 0; i < 4; i++) answersList.push(await send(gateway, 'retry.localhost', `/reset/g${i}`));
    expect(answersList.map((a) => a.status)).toEqual([200, 200, 200, 200]);
    expect(answersList.every((a) => a.text === 'healthy:GET')).toBe(true);
    const retried = resetting.seen.length - resetsBefore;
    expect(retried).toBeGreaterThan(0);
    const lines = gateway.logLines.filter((line) => String(line['path']).startsWith('/reset/g'));
    expect(lines.reduce((sum, line) => sum + Number(line['retries']), 0)).toBe(retried);
    const metrics = await (await fetch(`${gateway.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(
      /vantageedge_gateway_upstream_retries_total\{[^}]*outcome="retried",reason="reset"\} [1-9]/,
    );
  });

  // Also a regression test: a request with a body whose upstream connection was reset hung unanswered
  // (undici destroying the body stream was taken for a client that went away).
  it('does not retry a POST (not idempotent) whose connection was reset: 502, and the other target never sees it', async () => {
    const healthyBefore = healthy.seen.filter((r) => r.method === 'POST').length;
    const resetBefore = resetting.seen.filter((r) => r.method === 'POST').length;
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      statuses.push(
        (await send(gateway, 'retry.localhost', `/reset/p${i}`, { method: 'POST', body: 'order' })).status,
      );
    }
    const failed = statuses.filter((status) => status === 502).length;
    expect(failed).toBeGreaterThan(0);
    expect(resetting.seen.filter((r) => r.method === 'POST').length - resetBefore).toBe(failed);
    expect(healthy.seen.filter((r) => r.method === 'POST').length - healthyBefore).toBe(4 - failed);
  });

  it('retries a POST when the route lists it, sending its body again intact', async () => {
    for (let i = 0; i < 3; i++) {
      const answer = await send(gateway, 'retry.localhost', `/reset-post/${i}`, {
        method: 'POST',
        body: `{"order":${i}}`,
        headers: { 'content-type': 'application/json' },
      });
      expect(answer.status).toBe(200);
      expect(healthy.seen.at(-1)).toMatchObject({ method: 'POST', body: `{"order":${i}}` });
    }
  });

  // `reset` is an origin that never answered: one whose answer arrived has done the work (a POST's
  // order is placed), and a connection cut in its body is not a reason to have it done again.
  it('does not retry a request whose answer had arrived when its connection was cut: 502, and the other target never sees it', async () => {
    const healthyBefore = healthy.seen.filter((r) => r.url.startsWith('/answered/')).length;
    const cutBefore = answersThenCuts.seen.length;
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const init = i % 2 === 0 ? { method: 'POST', body: 'order' } : { method: 'GET' };
      statuses.push((await send(gateway, 'retry.localhost', `/answered/${i}`, init)).status);
    }
    const cut = answersThenCuts.seen.length - cutBefore;
    expect(cut).toBeGreaterThan(0);
    expect(statuses.filter((status) => status === 502)).toHaveLength(cut);
    expect(healthy.seen.filter((r) => r.url.startsWith('/answered/')).length - healthyBefore).toBe(4 - cut);
  });

  it('retries a 503 answer on the other target; the client never sees the 503', async () => {
    for (let i = 0; i < 3; i++) {
      const answer = await send(gateway, 'retry.localhost', `/unavailable/${i}`);
      expect(answer.status).toBe(200);
      expect(answer.text).toBe('healthy:GET');
    }
    expect(unavailable.seen.length).toBeGreaterThan(0);
  });

  // Regression test: the dropped 503's body was read to its end, with no limit in bytes or time, so a
  // body that never ended (each byte within idle_ms) held the request forever.
  it('counts no retry when no target is left to retry on: the access log and the metric say what the origin saw', async () => {
    const triedBefore = unavailable.seen.filter((r) => r.url.startsWith('/ejected/')).length;
    // The only target answers 503 and is ejected by that failure: the retry has nowhere to go.
    const answer = await send(gateway, 'retry.localhost', '/ejected/once');
    expect(answer.status).toBe(502);
    expect(unavailable.seen.filter((r) => r.url.startsWith('/ejected/')).length - triedBefore).toBe(1);
    const line = await logLineOf(gateway, '/ejected/once');
    expect(line['retries']).toBe(0);
    const metrics = await (await fetch(`${gateway.adminUrl}/metrics`)).text();
    const route = String(line['route_id']);
    expect(
      metrics
        .split('\n')
        .filter((row) => row.includes(`route="${route}"`) && row.includes('outcome="retried"')),
    ).toEqual([]);
  });

  it('retries a 503 whose body never ends at once, without waiting for that body', async () => {
    const triedBefore = trickling.seen.length;
    for (let i = 0; i < 2; i++) {
      const started = performance.now();
      const answer = await Promise.race([
        send(gateway, 'retry.localhost', `/trickling/${i}`),
        new Promise<'no answer'>((resolve) => setTimeout(() => resolve('no answer'), 5_000)),
      ]);
      expect(answer).not.toBe('no answer');
      expect(answer).toMatchObject({ status: 200, text: 'healthy:GET' });
      expect(performance.now() - started).toBeLessThan(1_000);
    }
    expect(trickling.seen.length).toBeGreaterThan(triedBefore);
  });

  it('stops retrying when the retry budget is spent: the failure reaches the client and is counted', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await send(gateway, 'retry.localhost', `/storm/${i}`)).status);
    expect(statuses.every((status) => status === 502)).toBe(true);
    const storm = gateway.logLines.filter((line) => String(line['path']).startsWith('/storm/'));
    const retries = storm.reduce((sum, line) => sum + Number(line['retries']), 0);
    // min_retries 2 per target, two targets; 10 % of a handful of requests is less than that.
    expect(retries).toBeLessThanOrEqual(4);
    expect(retries).toBeLessThan(6);
    const metrics = await (await fetch(`${gateway.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(
      /vantageedge_gateway_upstream_retries_total\{[^}]*outcome="budget_exhausted"[^}]*\} [1-9]/,
    );
  });

  // Regression test: an HTTP/2 client's reset ended the backoff but was not seen as the client leaving
  // (node's HTTP/2 response has no `destroyed`): the retry went out anyway, to an origin already failing,
  // for an answer nobody waited for.
  it.each(['HTTP/1.1', 'HTTP/2'] as const)(
    'sends no retry once the client left during the backoff (%s)',
    async (protocol) => {
      const path = `/left/${protocol === 'HTTP/2' ? 'h2' : 'h1'}`;
      const tried = () => [...unavailable.seen, ...alsoUnavailable.seen].filter((r) => r.url === path).length;
      const leave = protocol === 'HTTP/2' ? requestOverHttp2(path) : requestOverHttp1(path);
      while (tried() === 0) await new Promise((resolve) => setTimeout(resolve, 10));
      leave();
      await logLineOf(gateway, path);
      // A whole exchange through the gateway after it: a retry sent on the client's leaving is out by then.
      expect((await send(gateway, 'retry.localhost', `/unavailable/after-${path}`)).status).toBe(200);
      expect(tried()).toBe(1);
    },
  );

  function requestOverHttp1(path: string): () => void {
    const req = request({
      host: '127.0.0.1',
      port: gateway.gateway.trafficPort,
      path,
      headers: { host: 'retry.localhost' },
    });
    req.on('error', () => {});
    req.end();
    return () => req.destroy();
  }

  function requestOverHttp2(path: string): () => void {
    const session = http2Connect(gateway.url);
    const stream = session.request({ ':path': path, ':authority': 'retry.localhost' });
    stream.on('error', () => {});
    stream.end();
    return () => {
      stream.close(constants.NGHTTP2_CANCEL);
      session.close();
    };
  }

  it("answers 504 upstream_timeout after the route's response_headers_ms, not the origin's 30 s", async () => {
    const answer = await send(gateway, 'retry.localhost', '/slow/x');
    expect(answer.status).toBe(504);
    expect(answer.json()['error']).toMatchObject({ code: 'upstream_timeout' });
  });

  it("cuts a response whose body goes silent for longer than the route's idle_ms", async () => {
    const outcome = await new Promise<string>((resolve) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: gateway.gateway.trafficPort,
          path: '/stall/x',
          headers: { host: 'retry.localhost' },
        },
        (res) => {
          res.on('data', () => {});
          res.on('end', () => resolve('ended'));
          res.on('error', () => resolve('cut'));
          res.on('aborted', () => resolve('cut'));
        },
      );
      req.on('error', () => resolve('cut'));
      req.end();
    });
    expect(outcome).toBe('cut');
  });
});
