import { describe, expect, it } from 'vitest';
import type { LimitRequest, LimitSpec, LimitStore } from './limit-store.js';

/** One behavioural suite for every LimitStore (memory and Redis). */
export interface LimitStoreUnderTest {
  store: LimitStore;
  /** A fresh key namespace per test (Redis: includes a per-file prefix). */
  key(name: string): string;
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

function windowLog(capacity: number, windowMs: number): LimitSpec {
  return { algorithm: 'sliding_window', capacity, ratePerMs: 0, windowMs, ttlMs: windowMs };
}

function one(key: string, spec: LimitSpec, cost = 1, minCost = cost): LimitRequest {
  return { key, spec, cost, minCost };
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

    it('a sliding window admits its limit per window and frees slots as they leave the window', async () => {
      const { store, key } = setup();
      const k = key('sw');
      const spec = windowLog(3, 200);
      const granted: number[] = [];
      for (let i = 0; i < 5; i++) granted.push((await store.consume([one(k, spec)]))[0]!.granted);
      expect(granted).toEqual([1, 1, 1, 0, 0]);
      const [refused] = await store.consume([one(k, spec)]);
      expect(refused!.retryAfterMs).toBeGreaterThan(0);
      expect(refused!.retryAfterMs).toBeLessThanOrEqual(200);
      await sleep(250);
      const after: number[] = [];
      for (let i = 0; i < 4; i++) after.push((await store.consume([one(k, spec)]))[0]!.granted);
      // Refused requests were not recorded: the full limit is available again.
      expect(after).toEqual([1, 1, 1, 0]);
    });

    it('several limits are all-or-nothing: a refusal by one charges none', async () => {
      const { store, key } = setup();
      const wide = key('wide');
      const narrow = key('narrow');
      const wideSpec = bucket(10, 0.01);
      const narrowSpec = windowLog(1, 60_000);
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
      const [windowLease] = await store.consume([one(w, windowLog(4, 60_000), 10, 2)]);
      expect(windowLease!.granted).toBe(4);
    });

    it('keys are independent', async () => {
      const { store, key } = setup();
      const spec = windowLog(1, 60_000);
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
        Array.from({ length: 60 }, () => store.consume([one(w, windowLog(7, 60_000))])),
      );
      expect(windowOutcomes.reduce((sum, [o]) => sum + o!.granted, 0)).toBe(7);
    });
  });
}
