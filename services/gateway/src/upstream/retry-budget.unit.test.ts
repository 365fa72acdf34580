import { describe, expect, it } from 'vitest';
import { RetryBudget } from './retry-budget.js';

describe('retry budget', () => {
  it('allows at least min retries, then a percentage of the last 10 seconds of requests', () => {
    const budget = new RetryBudget();
    for (let i = 0; i < 100; i++) budget.recordRequest(1_000 + i);
    // 20 % of 100 requests = 20 retries in the window.
    let allowed = 0;
    while (budget.claim(1_500, 20, 3)) allowed++;
    expect(allowed).toBe(20);
    const quiet = new RetryBudget();
    let minimum = 0;
    while (quiet.claim(0, 20, 3)) minimum++;
    expect(minimum).toBe(3);
  });

  it('forgets requests and retries older than 10 seconds', () => {
    const budget = new RetryBudget();
    for (let i = 0; i < 50; i++) budget.recordRequest(0);
    while (budget.claim(0, 20, 0));
    expect(budget.claim(9_999, 20, 0)).toBe(false);
    // 10 s later the window is empty again: only the minimum is left.
    expect(budget.claim(10_500, 20, 1)).toBe(true);
    expect(budget.claim(10_500, 20, 1)).toBe(false);
  });
});
