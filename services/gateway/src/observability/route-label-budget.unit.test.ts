import { describe, expect, it } from 'vitest';
import { OTHER_ROUTES, RouteLabelBudget } from './route-label-budget.js';

describe('RouteLabelBudget', () => {
  it('gives each tenant at most its share and the replica at most the bound', () => {
    const budget = new RouteLabelBudget({ maxRoutes: 4, tenantShare: 0.5 });
    const labels = (tenant: string) => ['a', 'b', 'c'].map((route) => budget.labelFor(tenant, route));
    expect(labels('t1')).toEqual(['a', 'b', OTHER_ROUTES]);
    expect(labels('t2')).toEqual(['a', 'b', OTHER_ROUTES]);
    expect(labels('t3')).toEqual([OTHER_ROUTES, OTHER_ROUTES, OTHER_ROUTES]);
    expect(new Map(budget.foldedRoutes())).toEqual(
      new Map([
        ['t1', 1],
        ['t2', 1],
        ['t3', 3],
      ]),
    );
  });

  it('keeps a route’s label while it stays and frees those of routes and tenants that left', () => {
    const budget = new RouteLabelBudget({ maxRoutes: 2, tenantShare: 1 });
    expect(budget.labelFor('t1', 'a')).toBe('a');
    expect(budget.labelFor('t1', 'b')).toBe('b');
    expect(budget.labelFor('t2', 'x')).toBe(OTHER_ROUTES);
    expect(budget.labelFor('t1', 'a')).toBe('a');

    budget.release('t1', new Set(['a']));
    expect(budget.labelFor('t2', 'x')).toBe('x');
    budget.release('t1');
    expect(budget.labelFor('t2', 'y')).toBe('y');
    expect(new Map(budget.foldedRoutes())).toEqual(new Map());
  });
});
