import { describe, expect, it } from 'vitest';
import { describeLimitStoreContract } from './limit-store.contract.js';
import { MemoryLimitStore } from './memory-limit-store.js';

describeLimitStoreContract('memory', () => {
  const store = new MemoryLimitStore();
  return { store, key: (name) => name };
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

  it('a sliding window never admits more than its limit in any window (simulated clock)', () => {
    let now = 0;
    const store = new MemoryLimitStore({ now: () => now });
    const spec = {
      algorithm: 'sliding_window',
      capacity: 10,
      ratePerMs: 0,
      windowMs: 1_000,
      ttlMs: 1_000,
    } as const;
    const admitted: number[] = [];
    for (let t = 0; t < 5_000; t += 7) {
      now = t;
      const [outcome] = store.consumeNow([{ key: 'k', spec, cost: 1, minCost: 1 }]);
      if (outcome!.granted === 1) admitted.push(t);
    }
    for (let i = 10; i < admitted.length; i++)
      expect(admitted[i]! - admitted[i - 10]!).toBeGreaterThanOrEqual(1_000);
    expect(admitted.length).toBeGreaterThanOrEqual(50);
  });
});
