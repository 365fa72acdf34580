import { describe, expect, it } from 'vitest';
import { describeLimitStoreContract } from './limit-store.contract.js';
import { MemoryLimitStore } from './memory-limit-store.js';

describeLimitStoreContract('memory', () => {
  // The contract times sliding windows with Date.now(), as Redis's TIME is on this machine; `ahead`
  // moves the store's clock forward for admitAhead and back again (an NTP step back).
  let ahead = 0;
  const store = new MemoryLimitStore({ now: () => Date.now() + ahead });
  return {
    store,
    key: (name) => name,
    async admitAhead(key, spec, windowsAhead, current) {
      ahead = windowsAhead * spec.windowMs;
      try {
        const [outcome] = store.consumeNow([{ key, spec, cost: current, minCost: current }]);
        if (outcome!.granted !== current) throw new Error(`admitAhead: ${outcome!.granted} admitted`);
      } finally {
        ahead = 0;
      }
    },
  };
});

describe('MemoryLimitStore', () => {
  it('forgets the least recently used keys beyond maxKeys (a forgotten key starts full)', async () => {
    const store = new MemoryLimitStore({ maxKeys: 2 });
    const spec = {
      algorithm: 'sliding_window',
      capacity: 1,
      ratePerMs: 0,
      windowMs: 60_000,
      ttlMs: 60_000,
    } as const;
    const take = async (key: string) =>
      (await store.consume([{ key, spec, cost: 1, minCost: 1 }]))[0]!.granted;
    expect(await take('a')).toBe(1);
    expect(await take('b')).toBe(1);
    expect(await take('c')).toBe(1);
    expect(await take('c')).toBe(0);
    expect(await take('a')).toBe(1);
  });

  it("shares its keys fairly between tenants: one tenant's churning callers drop only its own counters", () => {
    const store = new MemoryLimitStore({ maxKeys: 100 });
    const spec = {
      algorithm: 'token_bucket',
      capacity: 2,
      ratePerMs: 1 / 3_600_000,
      windowMs: 0,
      ttlMs: 3_600_000,
    } as const;
    const take = (partition: string, key: string) =>
      store.consumeNow([{ key, spec, cost: 1, minCost: 1, partition }])[0]!.granted;
    // Tenant B's caller uses its burst, as do a few callers of tenant C.
    expect([take('b', 'b:caller'), take('b', 'b:caller'), take('b', 'b:caller')]).toEqual([1, 1, 0]);
    for (let i = 0; i < 5; i++) expect(take('c', `c:${i}`) + take('c', `c:${i}`)).toBe(2);
    // Tenant A's clients send a new identity per request, thousands of them.
    for (let i = 0; i < 5_000; i++) take('a', `a:${i}`);
    // B's and C's counters are still there: their callers stay refused.
    expect(take('b', 'b:caller')).toBe(0);
    for (let i = 0; i < 5; i++) expect(take('c', `c:${i}`)).toBe(0);
    // A tenant alone may use the whole store; a tenant below its share takes room from the largest.
    const alone = new MemoryLimitStore({ maxKeys: 3 });
    const takeAlone = (partition: string, key: string) =>
      alone.consumeNow([{ key, spec, cost: 2, minCost: 2, partition }])[0]!.granted;
    for (const key of ['a1', 'a2', 'a3']) expect(takeAlone('a', key)).toBe(2);
    expect(takeAlone('b', 'b1')).toBe(2); // drops a1, the oldest of the largest tenant
    expect([takeAlone('a', 'a2'), takeAlone('a', 'a3'), takeAlone('b', 'b1')]).toEqual([0, 0, 0]);
    expect(takeAlone('a', 'a1')).toBe(2); // forgotten: starts full (a1 now takes a2's place)
  });

  it('a sliding window takes O(1) memory per key, whatever its limit and the requests it admits', () => {
    // The fail-open fallback and dev mode hold every client's key: a 1-day window of 1,000,000 on
    // scope ip must not cost a replica's heap per admitted request (nor per unit of the limit).
    const store = new MemoryLimitStore();
    const spec = {
      algorithm: 'sliding_window',
      capacity: 1_000_000,
      ratePerMs: 0,
      windowMs: 86_400_000,
      ttlMs: 2 * 86_400_000,
    } as const;
    const before = process.memoryUsage();
    for (let client = 0; client < 20; client++)
      for (let i = 0; i < 1_000; i++)
        expect(store.consumeNow([{ key: `ip:${client}`, spec, cost: 1, minCost: 1 }])[0]!.granted).toBe(1);
    const after = process.memoryUsage();
    const grown = after.arrayBuffers - before.arrayBuffers + (after.heapUsed - before.heapUsed);
    console.log(`20 keys × 1,000 admissions: ${(grown / 1e6).toFixed(1)} MB more heap + array buffers`);
    expect(after.arrayBuffers - before.arrayBuffers).toBeLessThan(1_000_000);
    // Loose: the loop's own garbage may not have been collected yet.
    expect(grown).toBeLessThan(64_000_000);
  });

  const sliding = (capacity: number, windowMs: number) =>
    ({ algorithm: 'sliding_window', capacity, ratePerMs: 0, windowMs, ttlMs: 2 * windowMs }) as const;

  it('a sliding window admits at most capacity per aligned window, and under capacity × (1 + f) in any window of its length starting f into an aligned one (simulated clock, random bursts and leases)', () => {
    const W = 1_000;
    const capacity = 10;
    const origin = 1_000 * W;
    let now = origin;
    const store = new MemoryLimitStore({ now: () => now });
    let seed = 42;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed / 2_147_483_648;
    };
    const T = 30_000;
    const admitted = new Array<number>(T).fill(0);
    for (let t = 0; t < T; t++) {
      now = origin + t;
      const roll = random();
      if (roll < 0.01) {
        const [lease] = store.consumeNow([{ key: 'k', spec: sliding(capacity, W), cost: 5, minCost: 1 }]);
        admitted[t]! += lease!.granted;
      } else if (roll < 0.03) {
        for (let burst = Math.ceil(random() * 8); burst > 0; burst--)
          admitted[t]! += store.consumeNow([
            { key: 'k', spec: sliding(capacity, W), cost: 1, minCost: 1 },
          ])[0]!.granted;
      }
    }
    const prefix = [0];
    for (const count of admitted) prefix.push(prefix.at(-1)! + count);
    const inWindow = (from: number) => prefix[from + W]! - prefix[from]!;
    let most = 0;
    for (let from = 0; from + W <= T; from++) {
      const f = (from % W) / W;
      if (f === 0) expect(inWindow(from)).toBeLessThanOrEqual(capacity);
      expect(inWindow(from)).toBeLessThanOrEqual(capacity * (1 + f));
      most = Math.max(most, inWindow(from));
    }
    console.log(
      `random traffic: ${prefix.at(-1)} admitted in ${T} ms, at most ${most} in a window of ${W} ms`,
    );
    expect(prefix.at(-1)!).toBeGreaterThan(((T / W) * capacity) / 2);
    expect(most).toBeLessThan(2 * capacity);
  });

  it('a sliding window: the worst case is a full window at the end of one aligned window, then the decaying estimate (simulated clock)', () => {
    const W = 1_000;
    const origin = 1_000 * W;
    let now = origin + 900;
    const store = new MemoryLimitStore({ now: () => now });
    const spec = sliding(10, W);
    expect(store.consumeNow([{ key: 'k', spec, cost: 10, minCost: 1 }])[0]!.granted).toBe(10);
    let next = 0;
    for (now = origin + W; now < origin + W + 900; now++)
      next += store.consumeNow([{ key: 'k', spec, cost: 1, minCost: 1 }])[0]!.granted;
    // The m-th admission of the next window needs 10 × (1 − f) + m ≤ 10, f ≥ m / 10: 8 before f = 0.9.
    expect(next).toBe(8);
    // 18 in [origin + 900, origin + 1900): under 10 × (1 + 0.9).
    expect(10 + next).toBeLessThan(10 * 1.9);
  });

  it('a sliding window whose clock steps back a window keeps the newer window’s counts until the clock is past it again (simulated clock)', () => {
    const W = 1_000;
    const origin = 1_000 * W;
    let now = origin + W + 500;
    const store = new MemoryLimitStore({ now: () => now });
    const spec = sliding(10, W);
    const take = (cost = 1, minCost = cost) => store.consumeNow([{ key: 'k', spec, cost, minCost }])[0]!;
    expect(take(10).granted).toBe(10);
    // Back a whole window: window origin + W is taken to start now, full.
    now = origin + 500;
    expect(take()).toEqual({ granted: 0, remaining: 0, resetMs: 2 * W, retryAfterMs: W + W / 10 });
    now = origin + 999;
    expect(take().granted).toBe(0);
    // The clock is in that window again: still its 10.
    now = origin + W + 900;
    expect(take().granted).toBe(0);
    // The next one: the 10 are the previous window's, decaying.
    now = origin + 2 * W + 100;
    expect(take()).toMatchObject({ granted: 1, remaining: 0 });
  });

  it('a sliding window answers Retry-After and reset exactly: until the estimate admits minCost, and until it is 0 (simulated clock)', () => {
    const W = 1_000;
    const origin = 1_000 * W;
    let now = origin + 250;
    const store = new MemoryLimitStore({ now: () => now });
    const spec = sliding(4, W);
    const take = (cost = 1, minCost = cost) => store.consumeNow([{ key: 'k', spec, cost, minCost }])[0]!;
    expect(take(4)).toEqual({ granted: 4, remaining: 0, resetMs: 750 + W, retryAfterMs: 0 });
    // 4 in this window: the estimate is 3 once the next window is a quarter through (750 + 250 ms).
    expect(take()).toEqual({ granted: 0, remaining: 0, resetMs: 750 + W, retryAfterMs: 1_000 });
    expect(take(2)).toMatchObject({ granted: 0, retryAfterMs: 750 + 500 });
    expect(take(5)).toMatchObject({ granted: 0, retryAfterMs: W });
    now += 999;
    expect(take().granted).toBe(0);
    now += 1;
    expect(take()).toEqual({ granted: 1, remaining: 0, resetMs: 750 + W, retryAfterMs: 0 });
    // Now 4 × 0.75 + 1: the previous window's share decays to 2 at half-way (250 ms from now).
    expect(take()).toMatchObject({ granted: 0, retryAfterMs: 250 });
    now += 249;
    expect(take().granted).toBe(0);
    now += 1;
    expect(take(3, 1)).toMatchObject({ granted: 1, remaining: 0 });
    // A window and more later, nothing left: full again.
    now += 2 * W;
    expect(take(4)).toMatchObject({ granted: 4, remaining: 0 });
  });

  it('a sliding window made longer counts afresh: a caller that waits its Retry-After is admitted (simulated clock)', () => {
    let now = 1_000_000_500;
    const store = new MemoryLimitStore({ now: () => now });
    const take = (windowMs: number) =>
      store.consumeNow([{ key: 'k', spec: sliding(4, windowMs), cost: 1, minCost: 1 }])[0]!;
    expect(take(1_000).granted).toBe(1);
    // The limit's window is now 4 s: the key's window index counted 1-second windows.
    let refused = take(4_000);
    while (refused.granted > 0) refused = take(4_000);
    now += refused.retryAfterMs;
    expect(take(4_000).granted).toBe(1);
  });
});
