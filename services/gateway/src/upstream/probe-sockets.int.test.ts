import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { originConfig } from '@vantageedge/shared/domain/gateway-config';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createUpstreamSet } from './index.js';
import { ProbeBudget } from './probe-budget.js';
import { loopbackOriginsAllowed } from './testing/test-origin.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Targets of one tenant's origins, each its own server (a probe socket is per target address). */
interface Targets {
  readonly urls: string[];
  /** Connections the targets accepted, and those still open. */
  readonly accepted: () => number;
  readonly open: () => number;
  /** Targets probed at least once. */
  readonly probed: () => number;
}

async function startTargets(count: number, answer: 'ok' | 'never'): Promise<Targets> {
  let accepted = 0;
  const open = new Set<Socket>();
  const probed = new Set<number>();
  const urls: string[] = [];
  for (let i = 0; i < count; i++) {
    const server = createServer({ keepAliveTimeout: 120_000 }, (_req, res) => {
      probed.add(i);
      if (answer === 'ok') res.end('ok');
    });
    server.on('connection', (socket: Socket) => {
      accepted++;
      open.add(socket);
      socket.on('close', () => open.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    );
    urls.push(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  }
  return { urls, accepted: () => accepted, open: () => open.size, probed: () => probed.size };
}

function probedOrigin(urls: string[], intervalSeconds: number, timeoutSeconds: number) {
  return originConfig.parse({
    id: randomUUID(),
    name: 'probed',
    targets: urls.map((url) => ({ url })),
    health_check: { active: { interval_seconds: intervalSeconds, timeout_seconds: timeoutSeconds } },
  });
}

/** Probes whose answer has been read, by every set in `registry`. */
async function probesDone(registry: Registry): Promise<number> {
  const metric = await registry.getSingleMetric('vantageedge_upstream_health_probes_total')?.get();
  return (metric?.values ?? []).reduce((sum, value) => sum + value.value, 0);
}

async function skipped(registry: Registry, reason: string): Promise<number> {
  const metric = await registry.getSingleMetric('vantageedge_upstream_probes_skipped_total')?.get();
  return metric?.values.find((value) => value.labels['reason'] === reason)?.value ?? 0;
}

/**
 * Regression tests: a tenant's probe sockets were bounded by nothing but its targets. A tenant with 1,000
 * targets whose probes hang until their timeout held 1,000 sockets of each replica beside its upstream
 * pools (every tenant together up to 12,000), and as many idle ones between rounds: one per target
 * address, kept for twice the interval.
 */
describe('a tenant’s health-probe sockets', () => {
  it('sends at most its bound of probes at once; the others are skipped and counted', async () => {
    const targets = await startTargets(6, 'never');
    const registry = new Registry();
    const probeBudget = new ProbeBudget({ perSecond: 1000, registry, maxSocketsPerTenant: 2 });
    const tenantId = randomUUID();
    const set = createUpstreamSet(probedOrigin(targets.urls, 30, 60), {
      tenantId,
      addressPolicy: loopbackOriginsAllowed(),
      registry,
      probeBudget,
    });
    cleanups.push(() => set.close());
    // The first round asks for every target at once: each probe is sent or skipped.
    await vi.waitFor(async () =>
      expect(targets.probed() + (await skipped(registry, 'tenant_probe_sockets'))).toBe(6),
    );
    expect(targets.accepted()).toBe(2);
    expect(await skipped(registry, 'tenant_probe_sockets')).toBe(4);
    // Every target keeps its state: a skipped probe is no failure.
    expect(set.status().every((target) => target.healthy)).toBe(true);
  });

  it('keeps at most its bound of probe sockets open, idle ones included, over all its origins', async () => {
    const targets = await startTargets(8, 'ok');
    const registry = new Registry();
    const probeBudget = new ProbeBudget({ perSecond: 1000, registry, maxSocketsPerTenant: 2 });
    const tenantId = randomUUID();
    // Four origins of two targets each, built one after the other: each first round probes both at once.
    for (let origin = 0; origin < 4; origin++) {
      const set = createUpstreamSet(probedOrigin(targets.urls.slice(2 * origin, 2 * origin + 2), 30, 5), {
        tenantId,
        addressPolicy: loopbackOriginsAllowed(),
        registry,
        probeBudget,
      });
      cleanups.push(() => set.close());
      await vi.waitFor(async () => expect(await probesDone(registry)).toBe(2 * origin + 2));
    }
    // The sockets of the first origins' probes were idle: closed, oldest first, to open the later ones.
    await vi.waitFor(() => expect(targets.open()).toBe(2));
    expect(targets.accepted()).toBe(8);
  });

  it('is the tenant’s own: another tenant’s probes are sent while one holds its bound', async () => {
    const hanging = await startTargets(2, 'never');
    const answering = await startTargets(2, 'ok');
    const registry = new Registry();
    const probeBudget = new ProbeBudget({ perSecond: 1000, registry, maxSocketsPerTenant: 2 });
    const deps = { addressPolicy: loopbackOriginsAllowed(), registry, probeBudget };
    const held = createUpstreamSet(probedOrigin(hanging.urls, 30, 60), { ...deps, tenantId: randomUUID() });
    cleanups.push(() => held.close());
    await vi.waitFor(() => expect(hanging.probed()).toBe(2));
    const other = createUpstreamSet(probedOrigin(answering.urls, 30, 5), { ...deps, tenantId: randomUUID() });
    cleanups.push(() => other.close());
    await vi.waitFor(() => expect(answering.probed()).toBe(2));
    expect(await skipped(registry, 'tenant_probe_sockets')).toBe(0);
  });
});
