import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { originConfig } from '@vantageedge/shared/domain/gateway-config';
import { Registry } from 'prom-client';
import { describe, it, type OnTestFinishedHandler } from 'vitest';
import { createUpstreamSet, type InspectableUpstreamSet } from './index.js';
import { ProbeBudget } from './probe-budget.js';
import { loopbackOriginsAllowed } from './testing/test-origin.js';

const TENANT = 'c6c1e0c4-5f0e-4f57-9d1a-2b8f3f4f6a02';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Registers what the test leaves behind (its context's onTestFinished: tests here run side by side). */
type AtTestEnd = (cleanup: OnTestFinishedHandler) => void;

/** One HTTP server standing in for many targets (/t0, /t1, …); counts the health probes it receives. */
async function probeCounter(atTestEnd: AtTestEnd): Promise<{ url: string; probes: () => number }> {
  let probes = 0;
  const server: Server = createServer((req, res) => {
    if (req.url?.endsWith('/health')) probes++;
    res.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  atTestEnd(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, probes: () => probes };
}

function probedOrigin(
  url: string,
  targets: number,
  intervalSeconds: number,
  deps: { registry: Registry; probeBudget: ProbeBudget; atTestEnd: AtTestEnd; tenantId?: string },
): InspectableUpstreamSet {
  const origin = originConfig.parse({
    id: randomUUID(),
    name: 'probed',
    targets: Array.from({ length: targets }, (_, i) => ({ url: `${url}/t${i}` })),
    health_check: { active: { interval_seconds: intervalSeconds, timeout_seconds: 0.5 } },
  });
  const set = createUpstreamSet(origin, {
    tenantId: deps.tenantId ?? TENANT,
    addressPolicy: loopbackOriginsAllowed(),
    registry: deps.registry,
    probeBudget: deps.probeBudget,
  });
  deps.atTestEnd(() => set.close());
  return set;
}

/**
 * Regression tests: a tenant could set a 0.1 s health-check interval on 100 targets of any number of
 * origins, and every replica probed them all that often — a probe cannon pointed at the targets and a
 * load on the replica that no setting bounded.
 */
describe.concurrent('active health checks stay within the replica probe budget', () => {
  it('probes no more than the per-replica budget however many origins ask for 0.1 s, and counts the rest', async ({
    expect,
    onTestFinished,
  }) => {
    const counter = await probeCounter(onTestFinished);
    const registry = new Registry();
    const probeBudget = new ProbeBudget({ perSecond: 20, registry });
    const started = performance.now();
    for (let i = 0; i < 5; i++)
      probedOrigin(counter.url, 20, 0.1, { registry, probeBudget, atTestEnd: onTestFinished });
    await sleep(1500);
    const elapsedSeconds = (performance.now() - started) / 1000;
    // At most the budget's burst (one second's worth) plus its rate over the time elapsed.
    expect(counter.probes()).toBeLessThanOrEqual(Math.ceil(20 + 20 * elapsedSeconds));
    expect(counter.probes()).toBeGreaterThan(0);
    const skipped = (await registry.getSingleMetric('vantageedge_upstream_probes_skipped_total')?.get())
      ?.values[0]?.value;
    expect(skipped).toBeGreaterThan(0);
  });

  it('probes a target at most once a second even when its origin asks for 0.1 s', async ({
    expect,
    onTestFinished,
  }) => {
    const counter = await probeCounter(onTestFinished);
    const registry = new Registry();
    const probeBudget = new ProbeBudget({ perSecond: 1000, registry });
    const started = performance.now();
    probedOrigin(counter.url, 1, 0.1, { registry, probeBudget, atTestEnd: onTestFinished });
    await sleep(1500);
    const elapsedSeconds = (performance.now() - started) / 1000;
    expect(counter.probes()).toBeGreaterThanOrEqual(1);
    expect(counter.probes()).toBeLessThanOrEqual(1 + Math.floor(elapsedSeconds));
  });
});

/**
 * Regression test: the replica budget was first come, first served, so one tenant whose origins ask
 * for more probes than the whole budget (1,000 targets at 1 s against the default 200/s) spent all of
 * it every round, and another tenant's targets were never probed again — an ejected target of theirs
 * never came back.
 */
describe.concurrent('the replica probe budget is shared fairly between tenants', () => {
  it("probes a small tenant's target every interval while another tenant asks for far more than the budget", async ({
    expect,
    onTestFinished,
  }) => {
    const greedy = await probeCounter(onTestFinished);
    const small = await probeCounter(onTestFinished);
    const registry = new Registry();
    const probeBudget = new ProbeBudget({ perSecond: 20, registry });
    // The greedy tenant's sets are built first (a snapshot's origins start their rounds in order).
    for (let i = 0; i < 3; i++)
      probedOrigin(greedy.url, 100, 1, { registry, probeBudget, atTestEnd: onTestFinished });
    probedOrigin(small.url, 1, 1, {
      registry,
      probeBudget,
      atTestEnd: onTestFinished,
      tenantId: randomUUID(),
    });
    await sleep(4500);
    // Its first round at 0 s, then one probe an interval from a random phase: 1–2 s, 2–3 s and 3–4 s.
    expect(small.probes()).toBeGreaterThanOrEqual(3);
    expect(greedy.probes()).toBeGreaterThan(0);
  });
});

/**
 * Regression test: every origin probed all its targets in one burst every interval, and origins built
 * together (a replica starting, a snapshot) burst together, so probes the budget could afford on average
 * were skipped every round (20 targets at 2 s need 10/s; a budget of 15/s lost 5 of them each round) and
 * a skipped target went unprobed for another interval.
 */
describe.concurrent('active health checks spread their probes over the interval', () => {
  it('skips no probe after the first round when the budget covers the average rate', async ({
    expect,
    onTestFinished,
  }) => {
    const counter = await probeCounter(onTestFinished);
    const registry = new Registry();
    const probeBudget = new ProbeBudget({ perSecond: 15, registry });
    probedOrigin(counter.url, 20, 2, { registry, probeBudget, atTestEnd: onTestFinished });
    const skipped = async () =>
      (await registry.getSingleMetric('vantageedge_upstream_probes_skipped_total')?.get())?.values[0]
        ?.value ?? 0;
    // The first round probes every target at once: more than the budget's burst.
    await sleep(1000);
    const skippedInFirstRound = await skipped();
    expect(skippedInFirstRound).toBeGreaterThan(0);
    await sleep(5000);
    expect(await skipped()).toBe(skippedInFirstRound);
    // The first round's and the whole of the next one's (from 2 s to at most 4.2 s).
    expect(counter.probes()).toBeGreaterThanOrEqual(15 + 20);
  });
});
