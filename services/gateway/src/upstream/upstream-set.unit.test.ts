import { randomUUID } from 'node:crypto';
import { originConfig } from '@vantageedge/shared/domain/gateway-config';
import { collectGarbage } from '@vantageedge/shared/testing/live-memory';
import type { Pool } from 'undici';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { HALF_OPEN_TRIAL_WATCH_MAX_MS } from './circuit-breaker.js';
import { createUpstreamSet, type InspectableUpstreamSet, type UpstreamOutcome } from './index.js';

// The targets are never contacted: these tests drive acquire/release directly with a fake clock.
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

/** A set the test closes itself. */
function unmanagedSet(config: Record<string, unknown>, urls: readonly string[], now = () => 0) {
  return createUpstreamSet(
    originConfig.parse({
      id: randomUUID(),
      name: 'unit',
      targets: urls.map((url) => ({ url })),
      health_check: { active: { enabled: false }, passive: { enabled: false } },
      circuit_breaker: { enabled: false },
      ...config,
    }),
    { tenantId: 'tenant-unit', now },
  );
}

function setup(config: Record<string, unknown>, urls = ['http://10.0.0.1:8080', 'http://10.0.0.2:8080']) {
  let clock = 0;
  const set = unmanagedSet(config, urls, () => clock);
  cleanups.push(() => set.close());
  return {
    set,
    advance: (ms: number) => {
      clock += ms;
    },
  };
}

const context = { clientIp: '192.0.2.1', path: '/', headers: {} };
const serverError: UpstreamOutcome = { kind: 'response', status: 503 };

/** One request ending with `outcome`; returns the target id, or undefined when refused. */
function request(set: InspectableUpstreamSet, outcome: UpstreamOutcome): string | undefined {
  const lease = set.acquire(context);
  lease?.release(outcome);
  return lease?.target.id;
}

const healthOf = (set: InspectableUpstreamSet) => set.status().map((target) => target.healthy);

describe('upstream set', () => {
  it('makes a target’s pool on first use, and closes one made after close() at once', async () => {
    const { set } = setup({});
    const [first, second] = [set.acquire(context)!, set.acquire(context)!];
    expect(second.target.id).not.toBe(first.target.id);
    const pool = first.target.dispatcher as Pool;
    expect(first.target.dispatcher).toBe(pool);
    expect(pool.closed).toBe(false);
    await set.close();
    expect(pool.closed).toBe(true);
    // A lease from before close() on a target whose pool was never made: no pool is left open.
    expect((second.target.dispatcher as Pool).closed).toBe(true);
    first.release({ kind: 'cancelled' });
    second.release({ kind: 'cancelled' });
  });

  it('derives target ids and base paths from the target URLs', () => {
    const { set } = setup({}, [
      'http://10.0.0.1:8080/api/',
      'http://10.0.0.1:8080/v2',
      'https://example.com',
    ]);
    const targets = [set.acquire(context)!, set.acquire(context)!, set.acquire(context)!].map(
      (lease) => lease.target,
    );
    expect(targets.map((target) => [target.id, target.basePath])).toEqual([
      ['http://10.0.0.1:8080', '/api'],
      ['http://10.0.0.1:8080/v2', '/v2'],
      ['https://example.com', ''],
    ]);
  });

  // A tenant admin writes the target URLs, and every replica derives the base paths when it applies the
  // tenant's config: a regex trimming the trailing slashes tried every slash of a run as the start of the
  // trailing run, so a URL with a long run of slashes inside its path held every replica's event loop.
  it('derives the base path of a target URL with long runs of slashes in one pass', () => {
    const run = '/'.repeat(100_000);
    const { set } = setup({}, [`http://10.0.0.1:8080${run}v1${run}`]);
    expect(set.acquire(context)!.target.basePath).toBe(`${run}v1`);
  });

  it('counts 5xx, timeouts, connect errors and resets as failures for passive checks, 4xx not', () => {
    const { set } = setup(
      { health_check: { active: { enabled: false }, passive: { unhealthy_threshold: 4 } } },
      ['http://10.0.0.1:8080'],
    );
    for (let i = 0; i < 10; i++) request(set, { kind: 'response', status: 404 });
    request(set, serverError);
    request(set, { kind: 'timeout' });
    request(set, { kind: 'connect_error' });
    expect(healthOf(set)).toEqual([true]);
    request(set, { kind: 'reset' });
    expect(healthOf(set)).toEqual([false]);
    expect(set.acquire(context)).toBeUndefined();
  });

  it('brings a passively ejected target back after the ejection time when active checks are off', () => {
    const { set, advance } = setup({
      health_check: { active: { enabled: false }, passive: { unhealthy_threshold: 2 } },
      circuit_breaker: { enabled: false, open_seconds: 10 },
    });
    request(set, serverError); // first target
    request(set, { kind: 'response', status: 200 });
    request(set, serverError);
    expect(healthOf(set)).toEqual([false, true]);
    advance(10_000);
    expect(healthOf(set)).toEqual([true, true]);
  });

  it('does not count cancelled exchanges for health or the circuit', () => {
    const { set } = setup(
      {
        health_check: { active: { enabled: false }, passive: { unhealthy_threshold: 1 } },
        circuit_breaker: { consecutive_failures: 1 },
      },
      ['http://10.0.0.1:8080'],
    );
    for (let i = 0; i < 20; i++) request(set, { kind: 'cancelled' });
    expect(set.status()[0]).toMatchObject({ healthy: true, circuit: 'closed', in_flight: 0 });
  });

  it('gives a half-open probe slot back when the probe is cancelled', () => {
    const { set, advance } = setup(
      { circuit_breaker: { consecutive_failures: 1, open_seconds: 1, half_open_requests: 1 } },
      ['http://10.0.0.1:8080'],
    );
    request(set, serverError);
    expect(set.acquire(context)).toBeUndefined();
    advance(1_000);
    const probe = set.acquire(context)!;
    expect(set.acquire(context)).toBeUndefined();
    probe.release({ kind: 'cancelled' });
    expect(request(set, { kind: 'response', status: 200 })).toBe('http://10.0.0.1:8080');
    expect(set.status()[0]!.circuit).toBe('closed');
  });

  describe('a half-open probe with a good response head', () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    /** A target whose circuit is half-open (open_seconds 30), and its one probe, admitted. */
    function halfOpenProbe(halfOpenRequests = 1) {
      vi.useFakeTimers();
      const { set, advance } = setup(
        {
          circuit_breaker: {
            consecutive_failures: 1,
            open_seconds: 30,
            half_open_requests: halfOpenRequests,
          },
        },
        ['http://10.0.0.1:8080'],
      );
      request(set, serverError);
      advance(30_000);
      const probe = set.acquire(context)!;
      return { set, probe };
    }

    it('is judged when its body ends: a body the origin cut opens the circuit again', () => {
      const { set, probe } = halfOpenProbe();
      probe.responseStarted!(200);
      expect(set.status()[0]!.circuit).toBe('half_open');
      expect(set.acquire(context)).toBeUndefined(); // the probe still holds the slot
      probe.release({ kind: 'reset' });
      expect(set.status()[0]!.circuit).toBe('open');
    });

    it('read whole closes the circuit, counted once', () => {
      const { set, probe } = halfOpenProbe();
      probe.responseStarted!(200);
      probe.release({ kind: 'response', status: 200 });
      expect(set.status()[0]!.circuit).toBe('closed');
      vi.advanceTimersByTime(HALF_OPEN_TRIAL_WATCH_MAX_MS);
      expect(vi.getTimerCount()).toBe(0);
    });

    it('still streaming after the trial watch is a success then; the circuit is half-open until then', () => {
      const { set, probe } = halfOpenProbe();
      probe.responseStarted!(200);
      vi.advanceTimersByTime(HALF_OPEN_TRIAL_WATCH_MAX_MS - 1);
      expect(set.status()[0]!.circuit).toBe('half_open');
      vi.advanceTimersByTime(1);
      expect(set.status()[0]!.circuit).toBe('closed');
      // Its end, however it comes, is not a second verdict for the circuit (passive health counts it).
      probe.release({ kind: 'reset' });
      expect(set.status()[0]).toMatchObject({ circuit: 'closed', in_flight: 0 });
    });

    it('with a failed head, or a switch of protocols, is judged by its head', () => {
      const failed = halfOpenProbe();
      failed.probe.responseStarted!(503);
      expect(failed.set.status()[0]!.circuit).toBe('open');
      failed.probe.release({ kind: 'response', status: 503 });
      const upgraded = halfOpenProbe();
      upgraded.probe.responseStarted!(101);
      expect(upgraded.set.status()[0]!.circuit).toBe('closed');
      upgraded.probe.release({ kind: 'reset' });
      expect(upgraded.set.status()[0]!.circuit).toBe('closed');
    });
  });

  it('counts a lease released twice only once', () => {
    const { set } = setup(
      { health_check: { active: { enabled: false }, passive: { unhealthy_threshold: 2 } } },
      ['http://10.0.0.1:8080'],
    );
    const lease = set.acquire(context)!;
    set.acquire(context);
    lease.release(serverError);
    lease.release(serverError);
    expect(set.status()[0]).toMatchObject({ healthy: true, in_flight: 1 });
  });

  it('refuses once every target is down, and after close', async () => {
    const { set } = setup({
      health_check: { active: { enabled: false }, passive: { unhealthy_threshold: 1 } },
    });
    request(set, serverError);
    expect(request(set, { kind: 'response', status: 200 })).toBe('http://10.0.0.2:8080');
    request(set, serverError);
    expect(set.acquire(context)).toBeUndefined();

    const { set: other } = setup({});
    await other.close();
    expect(other.acquire(context)).toBeUndefined();
  });

  // Each edit of an origin replaces its set; a request of an older version of the tenant (a long stream)
  // still holds the set it began with, whose picks go to the origin as it is now. It must not hold every
  // set that replaced it since: a tenant admin editing the origin again and again while one request of
  // theirs streams would keep each version's targets, pools and hash ring in the replica's memory.
  it('hands the picks of a replaced set to the current one, without holding the sets in between', async () => {
    const urls = ['http://10.0.0.7:8080'];
    const { set: first } = setup({}, urls);
    let replaced: WeakRef<object> | undefined;
    let current = first;
    for (let version = 2; version <= 4; version++) {
      const next = unmanagedSet({}, urls);
      await current.close(next);
      if (version === 3) replaced = new WeakRef(current);
      current = next;
    }
    const latest = current;
    cleanups.push(() => latest.close());
    const [oldRequest, newRequest] = [first.acquire(context), latest.acquire(context)];
    expect(oldRequest?.target.dispatcher).toBe(newRequest?.target.dispatcher);
    oldRequest?.release({ kind: 'cancelled' });
    newRequest?.release({ kind: 'cancelled' });
    await new Promise((resolve) => setImmediate(resolve));
    collectGarbage();
    expect(replaced?.deref()).toBeUndefined();
  });
});
