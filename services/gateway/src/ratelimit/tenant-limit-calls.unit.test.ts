import { compileRateLimits } from '@vantageedge/shared/gateway-policies/compile-rate-limits';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { liveHeapBytes } from '@vantageedge/shared/testing/live-memory';
import { describe, expect, it } from 'vitest';
import type { LimitOutcome, LimitRequest, LimitStore } from './limit-store.js';
import { createRateLimiter } from './rate-limiter.js';
import {
  LIMIT_CALLS_IN_FLIGHT,
  TENANT_LIMIT_CALLS,
  TENANT_LIMIT_QUEUE,
  TenantLimitCalls,
} from './tenant-limit-calls.js';
import { routeWith, tenantWith } from './test-fixtures.js';

/**
 * Every tenant's rate-limit calls share one Redis connection, which answers in order: measured against
 * the shared Redis (50 ms command timeout), 500 checks of one tenant in flight made another tenant's
 * fail-closed limit answer 503 (its call timed out behind them) and opened the circuit every tenant's
 * limits share. A tenant now has at most TENANT_LIMIT_CALLS calls in flight; the rest wait their turn.
 */

/** A store that answers only when told, and records whose calls it was sent. */
function heldStore() {
  const sent: Array<{ tenant: string; answer: () => void }> = [];
  const store: LimitStore = {
    consume(requests: readonly LimitRequest[]) {
      return new Promise<LimitOutcome[]>((resolve) => {
        sent.push({
          tenant: requests[0]!.partition!,
          answer: () =>
            resolve(requests.map(() => ({ granted: 1, remaining: 100, resetMs: 0, retryAfterMs: 0 }))),
        });
      });
    },
  };
  return { store, sent };
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

function limiterOn(store: LimitStore) {
  return createRateLimiter({
    store,
    registry: createMetricsRegistry('tenant-limit-calls', { defaultMetrics: false }),
    logger: createLogger({ service: 'test', level: 'error' }),
  });
}

describe("a tenant's rate-limit calls on the shared store", () => {
  it("never hold another tenant's call behind more than their share", async () => {
    const { store, sent } = heldStore();
    const limiter = limiterOn(store);
    const hostile = tenantWith(null);
    const hostileRoute = routeWith({ requests_per_second: 1_000_000, burst: 1_000_000, scope: 'ip' });
    const other = tenantWith(null);
    const otherRoute = routeWith({ requests_per_second: 10, burst: 10, on_store_failure: 'closed' });
    const hostileLimits = compileRateLimits(hostile, hostileRoute);
    const otherLimits = compileRateLimits(other, otherRoute);

    const flood = 2_000;
    const hostileChecks = Array.from({ length: flood }, (_, i) =>
      limiter.check(hostileLimits, {
        tenantId: hostile.id,
        routeId: hostileRoute.id,
        clientIp: `10.0.${i >> 8}.${i & 255}`,
      }),
    );
    const otherCheck = limiter.check(otherLimits, {
      tenantId: other.id,
      routeId: otherRoute.id,
      clientIp: '192.0.2.1',
    });
    await flush();

    expect(sent.filter((call) => call.tenant === hostile.id)).toHaveLength(TENANT_LIMIT_CALLS);
    expect(sent.filter((call) => call.tenant === other.id)).toHaveLength(1);

    // Answered in order, as one connection does: the other tenant's call is not behind the flood.
    const otherAt = sent.findIndex((call) => call.tenant === other.id);
    expect(otherAt).toBeLessThanOrEqual(TENANT_LIMIT_CALLS);
    for (const call of sent.slice(0, otherAt + 1)) call.answer();
    expect((await otherCheck).outcome).toBe('allowed');

    // The flood's calls go on as earlier ones answer; those past the tenant's queue were refused 503
    // without the store, though its limit is fail-open (the fallback would give the flood a second
    // allowance), and never more than the share was in flight.
    let answered = otherAt + 1;
    while (answered < sent.length) {
      const inFlight = sent.length - answered;
      expect(inFlight).toBeLessThanOrEqual(TENANT_LIMIT_CALLS);
      sent[answered++]!.answer();
      await flush();
    }
    const decisions = await Promise.all(hostileChecks);
    expect(sent.filter((call) => call.tenant === hostile.id)).toHaveLength(
      TENANT_LIMIT_CALLS + TENANT_LIMIT_QUEUE,
    );
    expect(decisions.filter((d) => d.outcome === 'allowed' && !d.degraded)).toHaveLength(
      TENANT_LIMIT_CALLS + TENANT_LIMIT_QUEUE,
    );
    expect(decisions.filter((d) => d.outcome === 'store_unavailable')).toHaveLength(
      flood - TENANT_LIMIT_CALLS - TENANT_LIMIT_QUEUE,
    );
  });

  it("on a Redis Cluster, never hold a tenant's call behind other masters' calls", async () => {
    // Each master has its own connection: tenants on a master that answers slowly (or not at all until
    // the command timeout) must not take the turns of tenants on the others.
    const { store, sent } = heldStore();
    const other = tenantWith(null);
    const nodeOf = (tenantId: string) => (tenantId === other.id ? '10.0.0.2:6379' : '10.0.0.1:6379');
    const limiter = limiterOn({ consume: store.consume, nodeOf });
    const slowRoute = routeWith({ requests_per_second: 1_000_000, burst: 1_000_000, scope: 'ip' });
    const slowTenants = Array.from({ length: LIMIT_CALLS_IN_FLIGHT / TENANT_LIMIT_CALLS }, () =>
      tenantWith(null),
    );
    for (const tenant of slowTenants) {
      const limits = compileRateLimits(tenant, slowRoute);
      for (let i = 0; i < TENANT_LIMIT_CALLS + 10; i++) {
        void limiter.check(limits, { tenantId: tenant.id, routeId: slowRoute.id, clientIp: `10.2.0.${i}` });
      }
    }
    const otherRoute = routeWith({ requests_per_second: 10, burst: 10, on_store_failure: 'closed' });
    const otherCheck = limiter.check(compileRateLimits(other, otherRoute), {
      tenantId: other.id,
      routeId: otherRoute.id,
      clientIp: '192.0.2.1',
    });
    await flush();

    expect(sent.filter((call) => call.tenant === other.id)).toHaveLength(1);
    sent.find((call) => call.tenant === other.id)!.answer();
    expect((await otherCheck).outcome).toBe('allowed');
  });

  it("does not open the circuit other tenants share when a tenant's queue is full", async () => {
    const { store, sent } = heldStore();
    const limiter = limiterOn(store);
    const hostile = tenantWith(null);
    const hostileRoute = routeWith({ requests_per_second: 1_000_000, burst: 1_000_000, scope: 'ip' });
    const hostileLimits = compileRateLimits(hostile, hostileRoute);
    const checks = Array.from({ length: TENANT_LIMIT_CALLS + TENANT_LIMIT_QUEUE + 100 }, (_, i) =>
      limiter.check(hostileLimits, {
        tenantId: hostile.id,
        routeId: hostileRoute.id,
        clientIp: `10.1.${i >> 8}.${i & 255}`,
      }),
    );
    await flush();
    expect(limiter.storeDegraded).toBe(false);
    for (let i = 0; i < sent.length; i++) {
      sent[i]!.answer();
      await flush();
    }
    await Promise.all(checks);
    expect(limiter.storeDegraded).toBe(false);
  });
});

describe('the turns of many tenants on one connection', () => {
  /** Takes a turn for a call of `tenant`, recording the order calls start in; `end` gives it back. */
  function caller(turns: TenantLimitCalls) {
    const started: string[] = [];
    const take = (tenant: string) => {
      const turn = turns.take(tenant);
      if (turn === false) return false;
      if (turn === true) started.push(tenant);
      else void turn.then(() => started.push(tenant));
      return true;
    };
    return { started, take };
  }

  it("hold every tenant's calls together to the replica's bound, and give a newcomer the next round", async () => {
    const perTenant = 4;
    const inFlight = 8;
    const turns = new TenantLimitCalls(perTenant, 100, inFlight);
    const { started, take } = caller(turns);
    const hostile = ['h1', 'h2', 'h3', 'h4', 'h5'];
    for (const tenant of hostile) for (let i = 0; i < 50; i++) take(tenant);
    await flush();
    expect(started).toHaveLength(inFlight);

    take('other');
    await flush();
    expect(started).toHaveLength(inFlight);
    const before = started.length;
    // Calls end in the order they started, as one connection answers them; each frees one turn.
    let ended = 0;
    while (!started.includes('other')) {
      turns.give(started[ended++]!);
      await flush();
      expect(started.length - ended).toBeLessThanOrEqual(inFlight);
    }
    // One call of each other tenant with calls waiting at most, not their queues.
    expect(started.indexOf('other') - before).toBeLessThanOrEqual(hostile.length);
    for (const tenant of [...hostile, 'other']) {
      const running = started.slice(ended).filter((name) => name === tenant).length;
      expect(running).toBeLessThanOrEqual(perTenant);
    }
  });

  it("refuse a call past its tenant's queue only, and forget a tenant whose calls all ended", async () => {
    const turns = new TenantLimitCalls(2, 3, 4);
    const { started, take } = caller(turns);
    const taken = Array.from({ length: 6 }, () => take('flooding'));
    expect(taken).toEqual([true, true, true, true, true, false]);
    expect(take('other')).toBe(true);
    await flush();
    expect(started).toEqual(['flooding', 'flooding', 'other']);
    for (let ended = 0; ended < 6; ended++) {
      turns.give(started[ended]!);
      await flush();
    }
    expect(started).toHaveLength(6);
    expect(turns.tenants).toBe(0);
  });

  it("keep a replica's memory flat while a tenant's clients keep its queue full", () => {
    // Clients sending a little more than their tenant's calls answer never let its queue empty.
    const turns = new TenantLimitCalls(TENANT_LIMIT_CALLS, TENANT_LIMIT_QUEUE, LIMIT_CALLS_IN_FLIGHT);
    const fill = () => {
      while (turns.take('flooding') !== false) {}
    };
    fill();
    const calls = 2_000_000;
    const before = liveHeapBytes();
    for (let i = 0; i < calls; i++) {
      turns.give('flooding');
      fill();
    }
    // One pointer kept per call ever queued would be 16 MB here.
    expect(liveHeapBytes() - before).toBeLessThan(4 * 1024 * 1024);
  });
});
