import { describe, expect, it } from 'vitest';
import { FairLru } from './fair-lru.js';

describe('FairLru', () => {
  it("evicts a churning tenant's own entries, never those of tenants holding less than their share", () => {
    const cache = new FairLru<number>(1_000);
    for (let tenant = 0; tenant < 50; tenant++) {
      cache.set(`quiet-${tenant}`, 'a', tenant);
      cache.set(`quiet-${tenant}`, 'b', tenant);
    }
    for (let n = 0; n < 100_000; n++) cache.set('churning', `caller-${n}`, n);
    for (let tenant = 0; tenant < 50; tenant++) {
      expect([cache.get(`quiet-${tenant}`, 'a'), cache.get(`quiet-${tenant}`, 'b')]).toEqual([
        tenant,
        tenant,
      ]);
    }
    // The churning tenant keeps its most recent callers in the rest of the room.
    expect(cache.get('churning', 'caller-99999')).toBe(99_999);
    expect(cache.get('churning', `caller-${100_000 - 900}`)).toBe(100_000 - 900);
    expect(cache.get('churning', `caller-${100_000 - 901}`)).toBeUndefined();
  });

  it('takes room for a tenant below its share from tenants holding more, many tenants at once', () => {
    const cache = new FairLru<string>(100);
    for (let n = 0; n < 100; n++) cache.set('big', `k${n}`, 'big');
    // 1,000 small tenants arrive one key each: every one keeps its key while it is among the newest
    // hundred, whoever held the room before.
    for (let tenant = 0; tenant < 1_000; tenant++) {
      cache.set(`small-${tenant}`, 'k', 'small');
      expect(cache.get(`small-${tenant}`, 'k')).toBe('small');
    }
    let held = 0;
    for (let tenant = 0; tenant < 1_000; tenant++)
      if (cache.get(`small-${tenant}`, 'k') !== undefined) held++;
    for (let n = 0; n < 100; n++) if (cache.get('big', `k${n}`) !== undefined) held++;
    expect(held).toBe(100);
  });

  it('drops what deleteWhere calls stale, and the room it held is free again', () => {
    const cache = new FairLru<number>(4);
    for (let n = 0; n < 4; n++) cache.set('t', `k${n}`, n);
    cache.deleteWhere((value) => value % 2 === 0);
    expect([0, 1, 2, 3].map((n) => cache.get('t', `k${n}`))).toEqual([undefined, 1, undefined, 3]);
    cache.set('u', 'x', 10);
    cache.set('u', 'y', 11);
    expect([cache.get('t', 'k1'), cache.get('t', 'k3'), cache.get('u', 'x'), cache.get('u', 'y')]).toEqual([
      1, 3, 10, 11,
    ]);
  });
});
