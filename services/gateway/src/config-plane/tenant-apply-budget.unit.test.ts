import { describe, expect, it } from 'vitest';
import { TenantApplyBudget } from './tenant-apply-budget.js';

function budget(options: { share: number; burstMs: number; maxWaitMs?: number }) {
  const clock = { ms: 0 };
  const applies = new TenantApplyBudget({ maxWaitMs: 30_000, ...options, now: () => clock.ms });
  return { applies, clock };
}

describe('TenantApplyBudget', () => {
  it('lets a tenant apply at once within its burst, then makes it wait what it used over its share', () => {
    const { applies, clock } = budget({ share: 0.05, burstMs: 250 });
    applies.charge('a', 200);
    expect(applies.waitMs('a')).toBe(0);
    applies.charge('a', 150);
    // 100 ms of debt at 5 %: 2 s.
    expect(applies.waitMs('a')).toBe(2000);
    clock.ms = 1500;
    expect(applies.waitMs('a')).toBe(500);
    clock.ms = 2000;
    expect(applies.waitMs('a')).toBe(0);
  });

  it('keeps tenants apart, and a tenant whose applies cost a few ms never waits', () => {
    const { applies, clock } = budget({ share: 0.05, burstMs: 250 });
    applies.charge('heavy', 1000);
    for (let i = 0; i < 1000; i++) {
      applies.charge('light', 2);
      expect(applies.waitMs('light')).toBe(0);
      clock.ms += 100;
    }
    expect(applies.waitMs('heavy')).toBe(0);
  });

  it('never makes a tenant wait longer than the most it may', () => {
    const { applies } = budget({ share: 0.05, burstMs: 0, maxWaitMs: 30_000 });
    applies.charge('a', 60_000);
    applies.charge('a', 60_000);
    expect(applies.waitMs('a')).toBe(30_000);
  });

  it('forgets tenants whose bucket is full again', () => {
    const { applies, clock } = budget({ share: 0.5, burstMs: 10 });
    for (let i = 0; i < 5000; i++) applies.charge(`earlier-${i}`, 20);
    clock.ms = 1000;
    // Other tenants' applies later: the earlier tenants' buckets, full by now, are not kept.
    for (let i = 0; i < 5000; i++) applies.charge(`later-${i}`, 20);
    expect(applies.size).toBe(5000);
    expect(applies.waitMs('earlier-0')).toBe(0);
  });
});
