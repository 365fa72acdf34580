import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { originConfig } from '@vantageedge/shared/domain/gateway-config';
import { Registry } from 'prom-client';
import type { Pool } from 'undici';
import { afterEach, describe, expect, it, vi } from 'vitest';
import winston from 'winston';
import { createUpstreamSet, type InspectableUpstreamSet } from './index.js';
import {
  exchange,
  exchangeOn,
  loopbackOriginsAllowed,
  pickContext,
  startTestOrigin,
  type TestOrigin,
} from './testing/test-origin.js';

const TENANT = 'c6c1e0c4-5f0e-4f57-9d1a-2b8f3f4f6a01';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function origins(...names: string[]): Promise<TestOrigin[]> {
  const started = await Promise.all(names.map((name) => startTestOrigin(name)));
  for (const origin of started) cleanups.push(() => origin.close());
  return started;
}

/** Active and passive checks and the circuit are off unless a test turns them on. */
function upstreamSet(
  targets: Array<{ origin: TestOrigin; weight?: number }>,
  config: Record<string, unknown> = {},
  deps: { registry?: Registry; logger?: winston.Logger } = {},
  id = randomUUID(),
): InspectableUpstreamSet {
  const origin = originConfig.parse({
    id,
    name: 'test-origin',
    targets: targets.map(({ origin, weight }) => ({ url: origin.url, weight })),
    health_check: { active: { enabled: false }, passive: { enabled: false } },
    circuit_breaker: { enabled: false },
    ...config,
  });
  const set = createUpstreamSet(origin, {
    tenantId: TENANT,
    addressPolicy: loopbackOriginsAllowed(),
    ...deps,
  });
  cleanups.push(() => set.close());
  return set;
}

const statusOf = (set: InspectableUpstreamSet, origin: TestOrigin) =>
  set.status().find((target) => target.url.startsWith(origin.url))!;

/** Sends `count` requests with `concurrency` workers; returns how many each origin answered. */
async function spread(
  set: InspectableUpstreamSet,
  count: number,
  concurrency = 16,
): Promise<Map<string, number>> {
  const servedBy = new Map<string, number>();
  let remaining = count;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (remaining > 0) {
        remaining--;
        const result = await exchange(set);
        const name = result?.servedBy ?? 'none';
        servedBy.set(name, (servedBy.get(name) ?? 0) + 1);
      }
    }),
  );
  return servedBy;
}

function captureLogs(): { logger: winston.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  const logger = winston.createLogger({
    format: winston.format.json(),
    transports: [new winston.transports.Stream({ stream })],
  });
  return { logger, lines };
}

async function metricValue(
  registry: Registry,
  name: string,
  labels: Record<string, string>,
): Promise<number> {
  const metric = registry.getSingleMetric(name);
  const values = (await metric?.get())?.values ?? [];
  return values
    .filter((value) => Object.entries(labels).every(([key, wanted]) => String(value.labels[key]) === wanted))
    .reduce((sum, value) => sum + value.value, 0);
}

describe('round robin', () => {
  it('spreads 3,000 requests evenly (±5%) over three real targets', async () => {
    const [a, b, c] = await origins('a', 'b', 'c');
    const registry = new Registry();
    const set = upstreamSet([{ origin: a! }, { origin: b! }, { origin: c! }], {}, { registry });

    const served = await spread(set, 3_000);

    for (const origin of [a!, b!, c!]) {
      expect(origin.requests).toBeGreaterThanOrEqual(950);
      expect(origin.requests).toBeLessThanOrEqual(1_050);
      expect(served.get(origin.name)).toBe(origin.requests);
    }
    expect(await metricValue(registry, 'vantageedge_upstream_picks_total', { tenant: TENANT })).toBe(3_000);
  });

  it('honours weights 3:2:1 within ±5%', async () => {
    const [a, b, c] = await origins('a', 'b', 'c');
    const set = upstreamSet([
      { origin: a!, weight: 3 },
      { origin: b!, weight: 2 },
      { origin: c!, weight: 1 },
    ]);
    await spread(set, 3_000);
    expect(a!.requests).toBeGreaterThanOrEqual(1_425);
    expect(a!.requests).toBeLessThanOrEqual(1_575);
    expect(b!.requests).toBeGreaterThanOrEqual(950);
    expect(b!.requests).toBeLessThanOrEqual(1_050);
    expect(c!.requests).toBeGreaterThanOrEqual(475);
    expect(c!.requests).toBeLessThanOrEqual(525);
  });
});

describe('least connections', () => {
  it('sends traffic to the idle targets while one target hangs on a request', async () => {
    const [fast1, fast2, hanging] = await origins('fast-1', 'fast-2', 'hanging');
    hanging!.traffic = 'hang';
    const registry = new Registry();
    const set = upstreamSet(
      [{ origin: hanging! }, { origin: fast1! }, { origin: fast2! }],
      { load_balancing: { algorithm: 'least_connections' } },
      { registry },
    );
    const abandon = new AbortController();
    cleanups.push(async () => abandon.abort());
    const stuck: Array<Promise<unknown>> = [];

    for (let i = 0; i < 60; i++) {
      const lease = set.acquire(pickContext())!;
      const pending = exchangeOn(lease, pickContext(), abandon.signal);
      // Never wait for an exchange with the hanging target.
      if (lease.target.url.origin === hanging!.url) stuck.push(pending);
      else await pending;
    }

    // The first pick is a three-way tie and goes to the first target, which then never answers.
    expect(hanging!.requests).toBe(1);
    expect(fast1!.requests + fast2!.requests).toBe(59);
    expect(
      await metricValue(registry, 'vantageedge_upstream_in_flight', { target: statusOf(set, hanging!).id }),
    ).toBe(1);
    // Ties between the two idle targets still go round robin.
    expect(Math.abs(fast1!.requests - fast2!.requests)).toBeLessThanOrEqual(1);

    abandon.abort();
    await Promise.all(stuck);
    expect(statusOf(set, hanging!).in_flight).toBe(0);
  });
});

describe('consistent hashing', () => {
  const users = Array.from({ length: 600 }, (_, i) => `user-${i}`);
  const asUser = (user: string) => pickContext({ headers: { 'x-user-id': user } });
  const hashing = {
    load_balancing: { algorithm: 'consistent_hash', hash_on: 'header', hash_key: 'x-user-id' },
  };

  async function servedByPerUser(set: InspectableUpstreamSet): Promise<Map<string, string | undefined>> {
    const result = new Map<string, string | undefined>();
    for (const user of users) result.set(user, (await exchange(set, asUser(user)))?.servedBy);
    return result;
  }

  it('keeps each key on one target and moves ~1/N of the keys, all to the new target, when one is added', async () => {
    const started = await origins('a', 'b', 'c', 'd', 'e');
    const four = upstreamSet(
      started.slice(0, 4).map((origin) => ({ origin })),
      hashing,
    );

    const first = await servedByPerUser(four);
    expect(await servedByPerUser(four)).toEqual(first);
    expect(new Set(first.values())).toEqual(new Set(['a', 'b', 'c', 'd']));

    // The snapshot adds target "e": the gateway builds a new set for the changed origin.
    const five = upstreamSet(
      started.map((origin) => ({ origin })),
      hashing,
    );
    const second = await servedByPerUser(five);
    const moved = users.filter((user) => first.get(user) !== second.get(user));
    expect(moved.length / users.length).toBeGreaterThan(0.1);
    expect(moved.length / users.length).toBeLessThan(0.3);
    expect(new Set(moved.map((user) => second.get(user)))).toEqual(new Set(['e']));
  });

  // Regression: an origin stored before commands refused it hashed on `hash_key: X-Real-IP`, the client's
  // copy: any client chose its target by the value it wrote (and spread one address over every target),
  // while the origin got the gateway's X-Real-IP.
  it('hashes a stored hash_key naming a header the gateway writes on the client address, never the client’s copy', async () => {
    const started = await origins('a', 'b', 'c', 'd');
    const { logger, lines } = captureLogs();
    const set = upstreamSet(
      started.map((origin) => ({ origin })),
      { load_balancing: { algorithm: 'consistent_hash', hash_on: 'header', hash_key: 'X-Real-IP' } },
      { logger },
    );
    const servedBy = async (clientIp: string, headers: Record<string, string>) =>
      (await exchange(set, pickContext({ clientIp, headers })))?.servedBy;
    const forged = new Set<string | undefined>();
    for (let i = 0; i < 40; i++) {
      forged.add(await servedBy('198.51.100.7', { 'x-real-ip': `10.0.0.${i}` }));
      forged.add(await servedBy('198.51.100.7', { x_real_ip: `10.0.1.${i}` }));
    }
    expect(forged.size).toBe(1);
    // Clients are still spread by their own addresses.
    const byAddress = new Set<string | undefined>();
    for (let i = 0; i < 40; i++) byAddress.add(await servedBy(`198.51.100.${i}`, {}));
    expect(byAddress.size).toBeGreaterThan(1);
    expect(lines).toContainEqual(
      expect.objectContaining({ level: 'warn', message: expect.stringMatching(/X-Real-IP/) }),
    );
  });
});

describe('active health checks', () => {
  const activeChecks = (overrides: Record<string, unknown> = {}) => ({
    health_check: {
      active: {
        interval_seconds: 0.1,
        timeout_seconds: 0.3,
        healthy_threshold: 2,
        unhealthy_threshold: 2,
        ...overrides,
      },
      passive: { enabled: false },
    },
  });

  it('ejects a target whose health check fails and restores it when it recovers', async () => {
    const [a, b, sick] = await origins('a', 'b', 'sick');
    const { logger, lines } = captureLogs();
    const registry = new Registry();
    const set = upstreamSet([{ origin: a! }, { origin: b! }, { origin: sick! }], activeChecks(), {
      registry,
      logger,
    });

    sick!.health = 'fail';
    await vi.waitFor(() => expect(statusOf(set, sick!).healthy).toBe(false), {
      timeout: 10_000,
      interval: 20,
    });
    const before = sick!.requests;
    const served = await spread(set, 60, 4);
    expect(sick!.requests).toBe(before);
    // Even split (±1: smooth round robin keeps the ejected target's score, so the phase may shift).
    expect(Math.abs((served.get('a') ?? 0) - 30)).toBeLessThanOrEqual(1);
    expect((served.get('a') ?? 0) + (served.get('b') ?? 0)).toBe(60);
    expect(
      await metricValue(registry, 'vantageedge_upstream_target_healthy', { target: statusOf(set, sick!).id }),
    ).toBe(0);

    sick!.health = 'ok';
    await vi.waitFor(() => expect(statusOf(set, sick!).healthy).toBe(true), {
      timeout: 10_000,
      interval: 20,
    });
    await spread(set, 60, 4);
    expect(Math.abs(sick!.requests - before - 20)).toBeLessThanOrEqual(1);

    const changes = lines
      .filter((line) => line.target === statusOf(set, sick!).id)
      .map((line) => line.message);
    expect(changes).toEqual(['upstream target ejected', 'upstream target healthy']);
    expect(lines[0]).toMatchObject({ level: 'warn', tenant_id: TENANT, source: 'active' });
  });

  it('ejects a target whose health check hangs past the probe timeout, and restores it', async () => {
    const [a, hanging] = await origins('a', 'hanging');
    const set = upstreamSet([{ origin: a! }, { origin: hanging! }], activeChecks({ timeout_seconds: 0.2 }));
    hanging!.health = 'hang';
    await vi.waitFor(() => expect(statusOf(set, hanging!).healthy).toBe(false), {
      timeout: 10_000,
      interval: 20,
    });
    expect(await spread(set, 10, 1)).toEqual(new Map([['a', 10]]));

    // The timed-out probes must not leave the probe connection stuck: recovery is still seen.
    hanging!.health = 'ok';
    await vi.waitFor(() => expect(statusOf(set, hanging!).healthy).toBe(true), {
      timeout: 10_000,
      interval: 20,
    });
  });

  it('answers at once with no target when every target is down', async () => {
    const [a, b] = await origins('a', 'b');
    const registry = new Registry();
    const set = upstreamSet([{ origin: a! }, { origin: b! }], activeChecks(), { registry });
    a!.health = 'fail';
    b!.health = 'fail';
    await vi.waitFor(() => expect(set.status().every((target) => !target.healthy)).toBe(true), {
      timeout: 10_000,
      interval: 20,
    });
    expect(set.acquire(pickContext())).toBeUndefined();
    expect(await metricValue(registry, 'vantageedge_upstream_unavailable_total', { tenant: TENANT })).toBe(1);
  });
});

describe('passive health checks', () => {
  it('ejects a target after consecutive failed responses', async () => {
    const [a, failing] = await origins('a', 'failing');
    failing!.traffic = 'fail';
    const set = upstreamSet([{ origin: a! }, { origin: failing! }], {
      // Active checks on but slow: the probes (which pass) cannot restore it during the test.
      health_check: { active: { interval_seconds: 3600 }, passive: { unhealthy_threshold: 3 } },
    });
    await spread(set, 40, 1);
    expect(failing!.requests).toBe(3);
    expect(statusOf(set, failing!).healthy).toBe(false);
  });

  it('keeps a target ejected when the origin is edited: the set replacing the old one does not send it traffic again', async () => {
    const [a, failing, added] = await origins('a', 'failing', 'added');
    failing!.traffic = 'fail';
    const registry = new Registry();
    const id = randomUUID();
    const checks = {
      health_check: { active: { interval_seconds: 3600 }, passive: { unhealthy_threshold: 3 } },
    };
    const old = upstreamSet([{ origin: a! }, { origin: failing! }], checks, { registry }, id);
    await spread(old, 20, 1);
    expect(statusOf(old, failing!).healthy).toBe(false);

    // The tenant adds a target to the origin: a new set for it replaces the old one.
    const replacement = upstreamSet(
      [{ origin: a! }, { origin: failing! }, { origin: added! }],
      checks,
      { registry },
      id,
    );
    await old.close(replacement);

    const served = await spread(replacement, 40, 1);
    expect(failing!.requests).toBe(3);
    expect(served.get('failing')).toBeUndefined();
    expect(statusOf(replacement, failing!).healthy).toBe(false);
    expect(
      await metricValue(registry, 'vantageedge_upstream_target_healthy', {
        origin: id,
        target: statusOf(replacement, failing!).id,
      }),
    ).toBe(0);
  });
});

describe('circuit breaker', () => {
  it('keeps an open circuit open when the origin is edited, until its cool-down is over', async () => {
    const [a, failing] = await origins('a', 'failing');
    failing!.traffic = 'fail';
    const registry = new Registry();
    const id = randomUUID();
    const breaker = { circuit_breaker: { consecutive_failures: 3, open_seconds: 3600 } };
    const old = upstreamSet([{ origin: a! }, { origin: failing! }], breaker, { registry }, id);
    await spread(old, 6, 1);
    expect(statusOf(old, failing!).circuit).toBe('open');

    // The tenant edits the origin (a longer timeout): a new set for it replaces the old one.
    const replacement = upstreamSet(
      [{ origin: a! }, { origin: failing! }],
      { ...breaker, timeout_seconds: 60 },
      { registry },
      id,
    );
    await old.close(replacement);

    await spread(replacement, 20, 1);
    expect(failing!.requests).toBe(3);
    expect(statusOf(replacement, failing!).circuit).toBe('open');
    expect(
      await metricValue(registry, 'vantageedge_upstream_circuit_state', {
        origin: id,
        target: statusOf(replacement, failing!).id,
      }),
    ).toBe(2);
  });

  it('opens after consecutive failures, half-opens after the cool-down, and closes on a good probe', async () => {
    const [a, flaky] = await origins('a', 'flaky');
    const { logger, lines } = captureLogs();
    const registry = new Registry();
    const set = upstreamSet(
      [{ origin: a! }, { origin: flaky! }],
      { circuit_breaker: { consecutive_failures: 3, open_seconds: 0.3, half_open_requests: 1 } },
      { registry, logger },
    );
    const circuitGauge = () =>
      metricValue(registry, 'vantageedge_upstream_circuit_state', { target: statusOf(set, flaky!).id });

    flaky!.traffic = 'fail';
    await spread(set, 6, 1); // round robin: three go to flaky and fail
    expect(flaky!.requests).toBe(3);
    expect(statusOf(set, flaky!).circuit).toBe('open');
    expect(await circuitGauge()).toBe(2);
    await spread(set, 10, 1);
    expect(flaky!.requests).toBe(3);

    // After the cool-down one probe is let through; while it is in flight nothing else goes there.
    await vi.waitFor(() => expect(statusOf(set, flaky!).circuit).toBe('half_open'), {
      timeout: 10_000,
      interval: 20,
    });
    expect(await circuitGauge()).toBe(1);
    flaky!.traffic = 'ok';
    const probe = set.acquire(pickContext());
    const next = set.acquire(pickContext());
    expect([probe?.target.id, next?.target.id].sort()).toEqual(
      [statusOf(set, a!).id, statusOf(set, flaky!).id].sort(),
    );
    const [probeLease, otherLease] =
      probe?.target.url.origin === flaky!.url ? [probe!, next!] : [next!, probe!];
    expect(set.acquire(pickContext())?.target.id).toBe(statusOf(set, a!).id);
    expect(set.acquire(pickContext())?.target.id).toBe(statusOf(set, a!).id);
    await exchangeOn(probeLease, pickContext());
    await exchangeOn(otherLease, pickContext());
    expect(statusOf(set, flaky!).circuit).toBe('closed');
    expect(await circuitGauge()).toBe(0);

    const before = flaky!.requests;
    await spread(set, 10, 1);
    expect(flaky!.requests).toBe(before + 5);

    const transitions = lines.filter((line) => line.target === statusOf(set, flaky!).id);
    expect(transitions.map((line) => [line.from, line.to, line.reason])).toEqual([
      ['closed', 'open', 'consecutive_failures'],
      ['open', 'half_open', 'cool_down_over'],
      ['half_open', 'closed', 'probes_succeeded'],
    ]);
    expect(
      await metricValue(registry, 'vantageedge_upstream_circuit_transitions_total', {
        to: 'open',
        reason: 'consecutive_failures',
      }),
    ).toBe(1);
  });

  it('reopens when the half-open probe fails (a target that hangs past the timeout)', async () => {
    const [a, slow] = await origins('a', 'slow');
    const set = upstreamSet([{ origin: a! }, { origin: slow! }], {
      timeout_seconds: 1,
      circuit_breaker: { consecutive_failures: 1, open_seconds: 0.2, half_open_requests: 1 },
    });
    slow!.traffic = 'hang';
    await spread(set, 2, 1); // one times out on the hanging target
    expect(statusOf(set, slow!).circuit).toBe('open');

    await vi.waitFor(() => expect(statusOf(set, slow!).circuit).toBe('half_open'), {
      timeout: 10_000,
      interval: 20,
    });
    const served = await spread(set, 2, 1); // the probe times out too
    expect(served.get('none')).toBe(1);
    expect(statusOf(set, slow!).circuit).toBe('open');
    expect(slow!.requests).toBe(2);
  });

  it('opens on the error rate over the window', async () => {
    const [flaky] = await origins('flaky');
    const set = upstreamSet([{ origin: flaky! }], {
      circuit_breaker: {
        consecutive_failures: 100,
        error_rate_threshold: 0.5,
        window_requests: 10,
        open_seconds: 60,
      },
    });
    for (let i = 0; i < 10; i++) {
      flaky!.traffic = i % 2 === 0 ? 'ok' : 'fail';
      await exchange(set);
    }
    expect(statusOf(set, flaky!).circuit).toBe('open');
    expect(set.acquire(pickContext())).toBeUndefined();
  });
});

describe('close', () => {
  it('stops handing out targets, closes the pools and removes the target series', async () => {
    const [a] = await origins('a');
    const registry = new Registry();
    const set = upstreamSet([{ origin: a! }], {}, { registry });
    const lease = set.acquire(pickContext())!;
    await exchangeOn(lease, pickContext());
    const pool = lease.target.dispatcher as Pool;

    await set.close();

    expect(set.acquire(pickContext())).toBeUndefined();
    expect(pool.destroyed).toBe(true);
    expect(await metricValue(registry, 'vantageedge_upstream_picks_total', { origin: set.originId })).toBe(0);
    expect((await registry.getSingleMetric('vantageedge_upstream_target_healthy')?.get())?.values).toEqual(
      [],
    );
    expect((await registry.getSingleMetric('vantageedge_upstream_unavailable_total')?.get())?.values).toEqual(
      [],
    );
  });

  it('keeps the series while a replacement set for the same origin is live', async () => {
    const [a] = await origins('a');
    const registry = new Registry();
    const id = randomUUID();
    const old = upstreamSet([{ origin: a! }], {}, { registry }, id);
    const replacement = upstreamSet([{ origin: a! }], {}, { registry }, id);
    await old.close();
    await exchange(replacement);
    expect(await metricValue(registry, 'vantageedge_upstream_target_healthy', { origin: id })).toBe(1);
    expect(await metricValue(registry, 'vantageedge_upstream_picks_total', { origin: id })).toBe(1);
    const unavailable = await registry.getSingleMetric('vantageedge_upstream_unavailable_total')?.get();
    expect(unavailable?.values.map((value) => value.labels.origin)).toEqual([id]);
  });
});

/**
 * Regression test: undici keeps an idle connection as long as the origin's `Keep-Alive: timeout=`
 * asks, up to 10 minutes, so an origin answering `timeout=600` held every connection a burst of its
 * tenant's traffic opened for 10 minutes instead of the gateway's 4 s: sockets (file descriptors) of
 * the replica that every tenant shares, piling up with each burst.
 */
describe('idle connections', () => {
  it("closes an idle connection after the gateway's keep-alive, whatever the origin's Keep-Alive asks", async () => {
    const server = createServer((_request, response) => response.end('ok'));
    server.keepAliveTimeout = 600_000; // answers carry Keep-Alive: timeout=600
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    );
    let closed = 0;
    let firstClosed: () => void = () => {};
    const connectionClosed = new Promise<void>((resolve) => {
      firstClosed = resolve;
    });
    server.on('connection', (socket) =>
      socket.on('close', () => {
        closed++;
        firstClosed();
      }),
    );
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const set = createUpstreamSet(
      originConfig.parse({
        id: randomUUID(),
        name: 'keep-alive',
        targets: [{ url }],
        health_check: { active: { enabled: false }, passive: { enabled: false } },
      }),
      { tenantId: TENANT, addressPolicy: loopbackOriginsAllowed() },
    );
    cleanups.push(() => set.close());
    const lease = set.acquire(pickContext())!;
    const response = await lease.target.dispatcher.request({ method: 'GET', path: '/' });
    expect(response.headers['keep-alive']).toBe('timeout=600');
    await response.body.text();
    lease.release({ kind: 'response', status: response.statusCode });
    // Closed by the gateway's 4 s keep-alive: the origin's 10 minutes would outlast the test's timeout.
    await connectionClosed;
    expect(closed).toBe(1);
  }, 10_000);
});

describe('drained targets (weight 0)', () => {
  const algorithms = [
    { load_balancing: { algorithm: 'round_robin' } },
    { load_balancing: { algorithm: 'least_connections' } },
    { load_balancing: { algorithm: 'consistent_hash', hash_on: 'header', hash_key: 'x-user-id' } },
  ];

  it.each(algorithms)(
    'sends a weight-0 target no request and no retry ($load_balancing.algorithm)',
    async (config) => {
      const [drained, a, b] = await origins('drained', 'a', 'b');
      const set = upstreamSet([{ origin: drained!, weight: 0 }, { origin: a! }, { origin: b! }], config);
      for (let i = 0; i < 60; i++) {
        const context = pickContext({ headers: { 'x-user-id': `user-${i}` } });
        expect((await exchange(set, context))?.servedBy).not.toBe('drained');
        // A retry passes over the target it tried: the next is the other served one, never the drained.
        const retry = set.acquire(context, { avoid: [statusOf(set, a!).id] });
        expect(retry?.target.url.origin).toBe(b!.url);
        retry?.release({ kind: 'cancelled' });
      }
      expect(drained!.requests).toBe(0);
      expect(statusOf(set, drained!).weight).toBe(0);
    },
  );

  it('answers at once with no target when the only target above 0 is down, and still probes the drained one', async () => {
    const [drained, a] = await origins('drained', 'a');
    const set = upstreamSet([{ origin: drained!, weight: 0 }, { origin: a! }], {
      health_check: {
        active: { interval_seconds: 0.1, timeout_seconds: 0.3, healthy_threshold: 1, unhealthy_threshold: 1 },
        passive: { enabled: false },
      },
    });
    a!.health = 'fail';
    await vi.waitFor(() => expect(statusOf(set, a!).healthy).toBe(false), { timeout: 10_000, interval: 20 });
    expect(set.acquire(pickContext())).toBeUndefined();
    expect(drained!.requests).toBe(0);

    // Still health-checked: a drained target that goes down is known to be down when it is brought back.
    drained!.health = 'fail';
    await vi.waitFor(() => expect(statusOf(set, drained!).healthy).toBe(false), {
      timeout: 10_000,
      interval: 20,
    });
    expect(drained!.healthRequests).toBeGreaterThan(0);
  });

  it('keeps an ejected target ejected and an open circuit open through weight N → 0 → N', async () => {
    const [a, failing] = await origins('a', 'failing');
    failing!.traffic = 'fail';
    const id = randomUUID();
    const config = {
      health_check: { active: { interval_seconds: 3600 }, passive: { unhealthy_threshold: 3 } },
      circuit_breaker: { consecutive_failures: 3, open_seconds: 3600 },
    };
    const serving = upstreamSet([{ origin: a! }, { origin: failing!, weight: 2 }], config, {}, id);
    await spread(serving, 12, 1);
    expect(statusOf(serving, failing!)).toMatchObject({ healthy: false, circuit: 'open' });

    // The tenant drains the target, then brings it back: each edit builds a set replacing the last.
    const drained = upstreamSet([{ origin: a! }, { origin: failing!, weight: 0 }], config, {}, id);
    await serving.close(drained);
    expect(statusOf(drained, failing!)).toMatchObject({ weight: 0, healthy: false, circuit: 'open' });
    const back = upstreamSet([{ origin: a! }, { origin: failing!, weight: 2 }], config, {}, id);
    await drained.close(back);
    expect(statusOf(back, failing!)).toMatchObject({ weight: 2, healthy: false, circuit: 'open' });

    const before = failing!.requests;
    expect(await spread(back, 20, 1)).toEqual(new Map([['a', 20]]));
    expect(failing!.requests).toBe(before);
  });

  it('lets a request in flight on a target finish when an edit drains it', async () => {
    const [a, b] = await origins('a', 'b');
    const id = randomUUID();
    const serving = upstreamSet([{ origin: a! }, { origin: b! }], { timeout_seconds: 30 }, {}, id);
    const lease = serving.acquire(pickContext())!;
    const onB = lease.target.url.origin === b!.url ? lease : serving.acquire(pickContext())!;
    if (onB !== lease) lease.release({ kind: 'cancelled' });
    expect(onB.target.url.origin).toBe(b!.url);

    const drained = upstreamSet([{ origin: a! }, { origin: b!, weight: 0 }], { timeout_seconds: 30 }, {}, id);
    const closed = serving.close(drained);
    // The request was picked before the edit: it still goes to b, and is answered.
    expect(await exchangeOn(onB, pickContext())).toMatchObject({ servedBy: 'b' });
    await closed;
    expect(await spread(drained, 10, 1)).toEqual(new Map([['a', 10]]));
  });
});
