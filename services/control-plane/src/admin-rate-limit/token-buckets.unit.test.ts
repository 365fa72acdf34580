import { describe, expect, it } from 'vitest';
import { MemoryTokenBuckets } from './token-buckets.js';

const rate = { perMinute: 60, burst: 3 };

describe('MemoryTokenBuckets', () => {
  it('allows the burst, then one token per refill interval, and says when the next one is there', () => {
    let now = 0;
    const buckets = new MemoryTokenBuckets({ now: () => now });
    for (let i = 0; i < 3; i++)
      expect(buckets.takeNow('t', rate)).toEqual({ allowed: true, retryAfterMs: 0 });
    expect(buckets.takeNow('t', rate)).toEqual({ allowed: false, retryAfterMs: 1000 });
    now += 400;
    // A refused take is not recorded: the wait only shrinks.
    expect(buckets.takeNow('t', rate)).toEqual({ allowed: false, retryAfterMs: 600 });
    now += 600;
    expect(buckets.takeNow('t', rate).allowed).toBe(true);
    expect(buckets.takeNow('t', rate).allowed).toBe(false);
    // Other keys have their own buckets.
    expect(buckets.takeNow('u', rate).allowed).toBe(true);
  });

  it('takes a cost; one larger than the burst only from a full bucket, leaving it in debt until repaid', () => {
    let now = 0;
    const buckets = new MemoryTokenBuckets({ now: () => now });
    const bytes = { perMinute: 600, burst: 100 }; // 10 a second
    expect(buckets.takeNow('t', bytes, 60).allowed).toBe(true);
    expect(buckets.takeNow('t', bytes, 50)).toEqual({ allowed: false, retryAfterMs: 1000 });
    now += 6_000; // full again
    expect(buckets.takeNow('t', bytes, 250).allowed).toBe(true);
    // 150 in debt: even one token waits for 151.
    expect(buckets.takeNow('t', bytes, 1)).toEqual({ allowed: false, retryAfterMs: 15_100 });
    // Not swept as full while in debt.
    now += 10_000;
    for (let i = 0; i < 10; i++) buckets.takeNow(`other_${i}`, bytes);
    expect(buckets.takeNow('t', bytes, 1)).toEqual({ allowed: false, retryAfterMs: 5_100 });
  });

  it('keeps at most maxKeys buckets, least recently used out, so distinct callers cannot grow it', () => {
    let now = 0;
    const buckets = new MemoryTokenBuckets({ maxKeys: 100, now: () => now });
    for (let i = 0; i < 10_000; i++) {
      buckets.takeNow(`user_${i}`, rate);
      now += 1;
    }
    expect(buckets.size).toBe(100);
    // A very long key is stored hashed (ids are authenticated, but their length is not ours to pick).
    buckets.takeNow('x'.repeat(100_000), rate);
    expect(buckets.size).toBe(100);
  });

  it('sweeps buckets idle long enough to be full again', () => {
    let now = 0;
    const buckets = new MemoryTokenBuckets({ now: () => now });
    for (let i = 0; i < 50; i++) buckets.takeNow(`old_${i}`, rate);
    now += 3_000; // a burst of 3 at 1/s is full again after 3 s
    for (let i = 0; i < 50; i++) buckets.takeNow(`new_${i}`, rate);
    expect(buckets.size).toBe(50);
  });
});
