import { describe, expect, it } from 'vitest';
import { ProbeBudget, type TenantProbeBudget } from './probe-budget.js';

/** Probes `tenant` takes at this instant (the budget's clock stands still) before the budget refuses one. */
function takeAll(tenant: TenantProbeBudget): number {
  let taken = 0;
  while (tenant.tryStart()) taken++;
  return taken;
}

describe('the replica probe budget between tenants', () => {
  it('gives a tenant probing alone the whole budget', () => {
    const budget = new ProbeBudget({ perSecond: 20, now: () => 0 });
    expect(takeAll(budget.forTenant('a'))).toBe(20);
  });

  it('leaves a tenant its share when another asks for everything', () => {
    const budget = new ProbeBudget({ perSecond: 20, now: () => 0 });
    const greedy = budget.forTenant('greedy');
    const small = budget.forTenant('small');
    expect(takeAll(greedy)).toBe(10);
    expect(takeAll(small)).toBe(10);
  });

  it('shares out no more to a tenant whose checks stopped', () => {
    const budget = new ProbeBudget({ perSecond: 20, now: () => 0 });
    budget.forTenant('gone').release();
    expect(takeAll(budget.forTenant('alone'))).toBe(20);
  });
});
