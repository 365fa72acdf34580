import type { Cluster, Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import type { LimitOutcome, LimitRequest, LimitSpec, LimitStore } from './limit-store.js';

/** One behavioural suite for every LimitStore (memory and Redis). */
export interface LimitStoreUnderTest {
  store: LimitStore;
  /** A fresh key namespace per test (Redis: includes a per-file prefix). */
  key(name: string): string;
  /**
   * Leaves sliding window `key` as a server whose clock ran `windowsAhead` aligned windows ahead of this
   * one left it — a Redis master before a Cluster failover, a clock before an NTP step back: `current`
   * admitted in the aligned window `windowsAhead` after the one it is now, none in the one before.
   */
  admitAhead(key: string, spec: LimitSpec, windowsAhead: number, current: number): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function bucket(capacity: number, perSecond: number): LimitSpec {
  return {
    algorithm: 'token_bucket',
    capacity,
    ratePerMs: perSecond / 1000,
    windowMs: 0,
    ttlMs: 60_000,
  };
}

function slidingWindow(capacity: number, windowMs: number): LimitSpec {
  return { algorithm: 'sliding_window', capacity, ratePerMs: 0, windowMs, ttlMs: 2 * windowMs };
}

function one(key: string, spec: LimitSpec, cost = 1, minCost = cost): LimitRequest {
  return { key, spec, cost, minCost };
}

/*
 * Sliding windows count in aligned windows of the server's clock (Redis TIME, the memory store's own):
 * the stores under test run on this machine, so Date.now() tells which window a call fell in, to
 * within the call: the server's time of a call lies in [before, after] as timed() measures them.
 */
async function sleepUntil(at: number): Promise<void> {
  for (let left = at - Date.now(); left > 0; left = at - Date.now()) await sleep(left);
}

/** The start of an aligned window of `windowMs` we are at least 2 ms and at most `latestMs` into. */
async function alignedWindow(windowMs: number, latestMs: number): Promise<number> {
  for (;;) {
    const now = Date.now();
    const elapsed = now % windowMs;
    if (elapsed >= 2 && elapsed <= latestMs) return now - elapsed;
    await sleepUntil(now - elapsed + (elapsed < 2 ? 2 : windowMs + 2));
  }
}

interface Timed {
  outcome: LimitOutcome;
  /** Date.now() before the call and after its answer (+1: the clock's ms is rounded down). */
  before: number;
  after: number;
}

async function timed(store: LimitStore, request: LimitRequest): Promise<Timed> {
  const before = Date.now();
  const [outcome] = await store.consume([request]);
  return { outcome: outcome!, before, after: Date.now() + 1 };
}

/** A value the store computed at its time of the call: `at(t)` for some t in [before, after], rounded up. */
function expectBetween(value: number, call: Timed, at: (t: number) => number): void {
  const bounds = [at(call.before), at(call.after)].sort((a, b) => a - b);
  // ±1: the store's own rounding of a value exactly on a whole number.
  expect(value).toBeGreaterThanOrEqual(Math.floor(bounds[0]!) - 1);
  expect(value).toBeLessThanOrEqual(Math.ceil(bounds[1]!) + 1);
}

/**
 * admitAhead for the Redis stores: Redis's clock cannot be moved, so the hash is written as the script
 * on a master whose clock ran `windowsAhead` windows ahead would have left it. Returns the window index.
 */
export async function admitAheadInRedis(
  client: Redis | Cluster,
  key: string,
  spec: LimitSpec,
  windowsAhead: number,
  current: number,
): Promise<number> {
  const window = Math.floor(Date.now() / spec.windowMs) + windowsAhead;
  await client.hset(key, 'w', String(window), 'c', String(current), 'p', '0');
  await client.pexpire(key, spec.ttlMs);
  return window;
}

export function describeLimitStoreContract(name: string, setup: () => LimitStoreUnderTest): void {
  describe(`LimitStore contract: ${name}`, () => {
    it('a token bucket admits its burst, then refuses with a retry-after', async () => {
      const { store, key } = setup();
      const k = key('tb-burst');
      const granted: number[] = [];
      for (let i = 0; i < 7; i++) {
        const [outcome] = await store.consume([one(k, bucket(5, 0.01))]);
        granted.push(outcome!.granted);
        if (i === 0) expect(outcome!.remaining).toBe(4);
        if (i === 6) {
          expect(outcome!.remaining).toBe(0);
          expect(outcome!.retryAfterMs).toBeGreaterThan(1_000);
        }
      }
      expect(granted).toEqual([1, 1, 1, 1, 1, 0, 0]);
    });

    it('a token bucket refills at its rate', async () => {
      const { store, key } = setup();
      const k = key('tb-refill');
      const spec = bucket(2, 20);
      await store.consume([one(k, spec)]);
      await store.consume([one(k, spec)]);
      const [refused] = await store.consume([one(k, spec)]);
      expect(refused!.granted).toBe(0);
      expect(refused!.retryAfterMs).toBeGreaterThan(0);
      expect(refused!.retryAfterMs).toBeLessThanOrEqual(50);
      await sleep(150);
      const [again] = await store.consume([one(k, spec)]);
      expect(again!.granted).toBe(1);
    });

    it('a sliding window admits its limit per aligned window; refused requests are not counted; Retry-After is when the estimate allows one more', async () => {
      const { store, key } = setup();
      const k = key('sw');
      const W = 2_000;
      const spec = slidingWindow(5, W);
      const start = await alignedWindow(W, W / 4);
      const calls: Timed[] = [];
      for (let i = 0; i < 7; i++) calls.push(await timed(store, one(k, spec)));
      expect(calls.at(-1)!.after, 'the first 7 calls fit in one aligned window').toBeLessThan(start + W);
      expect(calls.map((c) => c.outcome.granted)).toEqual([1, 1, 1, 1, 1, 0, 0]);
      expect(calls.map((c) => c.outcome.remaining)).toEqual([4, 3, 2, 1, 0, 0, 0]);
      const refused = calls.at(-1)!;
      // The estimate (5, all in this window) falls to 4 a fifth into the next window; to 0 at its end.
      expectBetween(refused.outcome.retryAfterMs, refused, (t) => start + W + W / 5 - t);
      expectBetween(refused.outcome.resetMs, refused, (t) => start + 2 * W - t);

      // Counted refusals (7) would keep the estimate above 4 until 3/7 into the next window.
      await sleepUntil(start + W + W / 5 + 2);
      const admitted = await timed(store, one(k, spec));
      expect(admitted.outcome.granted).toBe(1);
      // 5 × (1 − f) + 1 ≤ 4 from f = 0.4: refused before then, with the Retry-After that says so.
      const next = await timed(store, one(k, spec));
      if (next.after < start + W + 0.4 * W) {
        expect(next.outcome.granted).toBe(0);
        expectBetween(next.outcome.retryAfterMs, next, (t) => start + W + 0.4 * W - t);
        await sleepUntil(start + W + 0.4 * W + 2);
        expect((await store.consume([one(k, spec)]))[0]!.granted).toBe(1);
      }
    });

    it('a sliding window counts the previous window by the share the last window still covers: fewer than capacity × (1 + f) in any window starting f into an aligned one', async () => {
      const { store, key } = setup();
      const k = key('sw-weighted');
      const W = 2_000;
      const capacity = 10;
      const spec = slidingWindow(capacity, W);
      // The adversarial case: a whole capacity at the end of one aligned window (f = 0.75) ...
      const start = await alignedWindow(W, W / 2);
      await sleepUntil(start + 0.75 * W);
      const burst = await timed(store, one(k, spec, capacity, 1));
      expect(burst.after, 'the burst is answered in its aligned window').toBeLessThan(start + W);
      expect(burst.outcome.granted).toBe(capacity);
      expect(burst.outcome.remaining).toBe(0);
      // ... then, 0.7 into the next one, what the decayed estimate leaves: a lease of floor(10 × f).
      await sleepUntil(start + W + 0.7 * W);
      const lease = await timed(store, one(k, spec, capacity, 1));
      expectBetween(lease.outcome.granted, lease, (t) => Math.floor((capacity * (t - start - W)) / W));
      const inOneWindow = burst.outcome.granted + lease.outcome.granted;
      if (lease.after <= burst.before + W) {
        // Both within one window of windowMs starting at f ≈ 0.75: more than capacity (the estimate is
        // not exact), never more than capacity × (1 + f).
        expect(inOneWindow).toBeGreaterThan(capacity);
        expect(inOneWindow).toBeLessThanOrEqual(capacity * (1 + (burst.after - start) / W));
      }
      // The aligned window holds at most capacity, whatever is asked.
      await sleepUntil(start + 2 * W - 0.05 * W);
      const rest = await timed(store, one(k, spec, capacity, 1));
      if (rest.after < start + 2 * W) {
        expect(lease.outcome.granted + rest.outcome.granted).toBeLessThanOrEqual(capacity);
        expect(lease.outcome.granted + rest.outcome.granted).toBeGreaterThanOrEqual(capacity - 1);
      }
    });

    it('a sliding window never refuses a client sending evenly below its limit', async () => {
      const { store, key } = setup();
      const k = key('sw-even');
      // One request per 150 ms at the most (under 7 per window) with a limit of 10: a machine's timer
      // delays only spread them further, and the estimate stays within one request of the true count.
      const spec = slidingWindow(10, 1_000);
      const granted: number[] = [];
      for (let last = 0, i = 0; i < 14; i++) {
        await sleepUntil(last + 150);
        last = Date.now();
        granted.push((await store.consume([one(k, spec)]))[0]!.granted);
      }
      expect(granted).toEqual(Array(14).fill(1));
    });

    it('a sliding window keeps the counts of a window newer than its clock’s (a master whose clock was ahead, before a failover or an NTP step back): never forgotten, never overwritten by an older window', async () => {
      const { store, key, admitAhead } = setup();
      const spec = slidingWindow(10, 60_000);
      // The limit reached in the next aligned window, and 5 windows ahead: nothing more is admitted.
      for (const ahead of [1, 5]) {
        const full = key(`sw-ahead-full-${ahead}`);
        await admitAhead(full, spec, ahead, 10);
        const outcomes: LimitOutcome[] = [];
        for (let i = 0; i < 10; i++) outcomes.push((await store.consume([one(full, spec)]))[0]!);
        expect(outcomes.map((o) => o.granted)).toEqual(Array(10).fill(0));
        expect(outcomes.at(-1)!.remaining).toBe(0);
        // The stored window taken as starting now: the estimate falls to 9 a tenth into the next one.
        expect(outcomes.at(-1)!.retryAfterMs).toBeGreaterThan(60_000);
        expect(outcomes.at(-1)!.retryAfterMs).toBeLessThanOrEqual(66_000);
      }
      // 4 of 10 used ahead: a lease gets the 6 left, counted in that window (not written over it as an
      // older window's count), so the next request is refused.
      const part = key('sw-ahead-part');
      await admitAhead(part, spec, 1, 4);
      expect((await store.consume([one(part, spec, 10, 1)]))[0]!.granted).toBe(6);
      expect((await store.consume([one(part, spec)]))[0]!.granted).toBe(0);
      expect((await store.consume([one(part, spec, 10, 1)]))[0]!.granted).toBe(0);
    });

    it('several limits are all-or-nothing: a refusal by one charges none', async () => {
      const { store, key } = setup();
      const wide = key('wide');
      const narrow = key('narrow');
      const wideSpec = bucket(10, 0.01);
      const narrowSpec = slidingWindow(1, 60_000);
      const first = await store.consume([one(wide, wideSpec), one(narrow, narrowSpec)]);
      expect(first.map((o) => o.granted)).toEqual([1, 1]);
      const second = await store.consume([one(wide, wideSpec), one(narrow, narrowSpec)]);
      expect(second.map((o) => o.granted)).toEqual([0, 0]);
      expect(second[1]!.retryAfterMs).toBeGreaterThan(0);
      expect(second[0]!.retryAfterMs).toBe(0);
      const [wideOnly] = await store.consume([one(wide, wideSpec)]);
      expect(wideOnly!.remaining).toBe(8);
    });

    it('grants part of a request when a minimum cost is given (fast-mode leases)', async () => {
      const { store, key } = setup();
      const k = key('partial');
      const spec = bucket(3, 0.01);
      const [lease] = await store.consume([one(k, spec, 5, 1)]);
      expect(lease!.granted).toBe(3);
      const [none] = await store.consume([one(k, spec, 5, 1)]);
      expect(none!.granted).toBe(0);
      const w = key('partial-sw');
      const [windowLease] = await store.consume([one(w, slidingWindow(4, 60_000), 10, 2)]);
      expect(windowLease!.granted).toBe(4);
      expect(windowLease!.remaining).toBe(0);
      const [noWindowLease] = await store.consume([one(w, slidingWindow(4, 60_000), 10, 1)]);
      expect(noWindowLease!.granted).toBe(0);
      expect(noWindowLease!.retryAfterMs).toBeGreaterThan(0);
      expect(noWindowLease!.retryAfterMs).toBeLessThanOrEqual(2 * 60_000);
    });

    it('keys are independent', async () => {
      const { store, key } = setup();
      const spec = slidingWindow(1, 60_000);
      expect((await store.consume([one(key('a'), spec)]))[0]!.granted).toBe(1);
      expect((await store.consume([one(key('b'), spec)]))[0]!.granted).toBe(1);
      expect((await store.consume([one(key('a'), spec)]))[0]!.granted).toBe(0);
    });

    it('concurrent callers never get more than the limit', async () => {
      const { store, key } = setup();
      const k = key('concurrent');
      const outcomes = await Promise.all(
        Array.from({ length: 60 }, () => store.consume([one(k, bucket(10, 0.001))])),
      );
      expect(outcomes.reduce((sum, [o]) => sum + o!.granted, 0)).toBe(10);
      const w = key('concurrent-sw');
      const windowOutcomes = await Promise.all(
        Array.from({ length: 60 }, () => store.consume([one(w, slidingWindow(7, 60_000))])),
      );
      expect(windowOutcomes.reduce((sum, [o]) => sum + o!.granted, 0)).toBe(7);
    });
  });
}
