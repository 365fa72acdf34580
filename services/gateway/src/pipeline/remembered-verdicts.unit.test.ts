import { describe, expect, it } from 'vitest';
import type { CompiledTenant } from '../config/compiled-tenant.js';
import { rememberVerdicts, TenantVerdictBudgets, VerdictBudget } from './remembered-verdicts.js';

describe('remembered verdicts', () => {
  it('decides once per value, and keeps at most the limit of the values a client chose', () => {
    const decided: string[] = [];
    const allowed = rememberVerdicts(
      (origin) => {
        decided.push(origin);
        return origin.endsWith('.example');
      },
      new VerdictBudget(100),
      { entries: 3 },
    );
    expect([allowed('a.example'), allowed('b.evil'), allowed('a.example'), allowed('b.evil')]).toEqual([
      true,
      false,
      true,
      false,
    ]);
    expect(decided).toEqual(['a.example', 'b.evil']);
    // A client cycling through values cannot grow the memory: when full, it starts again.
    allowed('c.example');
    allowed('d.example');
    allowed('a.example');
    expect(decided).toEqual(['a.example', 'b.evil', 'c.example', 'd.example', 'a.example']);
  });

  it('never keeps a value longer than the length limit: a client cannot fill memory with long values', () => {
    const decided: string[] = [];
    const allowed = rememberVerdicts(
      (origin) => {
        decided.push(origin);
        return origin.endsWith('.example');
      },
      new VerdictBudget(100),
      { valueLength: 20 },
    );
    const long = `https://${'a'.repeat(15_000)}.example`;
    expect([
      allowed(long),
      allowed(long),
      allowed('https://a.example'),
      allowed('https://a.example'),
    ]).toEqual([true, true, true, true]);
    expect(decided).toEqual([long, long, 'https://a.example']);
  });

  it("keeps at most the tenant's budget across all of its memories, which forget together when it is full", () => {
    const budget = new VerdictBudget(5);
    const decided: string[] = [];
    const memories = [0, 1, 2].map((route) =>
      rememberVerdicts(
        (value) => {
          decided.push(`${route}:${value}`);
          return value.length;
        },
        budget,
        { entries: 3 },
      ),
    );
    for (const memory of memories) {
      memory('a');
      memory('b');
    }
    // The sixth value made room: every memory forgot, the last one now remembers 'b' alone.
    expect(budget.held).toBe(1);
    decided.length = 0;
    memories[2]!('b');
    memories[0]!('a');
    expect(decided).toEqual(['0:a']);
    expect(budget.held).toBe(2);

    // A memory past its own limit forgets its values and gives them back to the budget.
    for (const value of ['c', 'd', 'e']) memories[1]!(value);
    expect(budget.held).toBe(5);
    memories[1]!('f');
    expect(budget.held).toBe(3);
  });

  it("forgets a removed tenant's values, and only then", () => {
    const budgets = new TenantVerdictBudgets(10);
    const tenant = { id: 't1' } as CompiledTenant;
    const memory = rememberVerdicts((value) => value, budgets.of('t1'));
    memory('a');
    budgets.tenantRetired(tenant, { id: 't1' } as CompiledTenant);
    expect(budgets.of('t1').held).toBe(1);
    budgets.tenantRetired(tenant, undefined);
    expect(budgets.of('t1').held).toBe(0);
  });
});

describe("the replica's budget", () => {
  it('counts every tenant budget against it, and makes them all forget when it is full', () => {
    const replica = new VerdictBudget(4, null);
    const tenants = [new VerdictBudget(3, replica), new VerdictBudget(3, replica)];
    const decided: string[] = [];
    const memories = tenants.map((budget, t) =>
      rememberVerdicts((value) => decided.push(`${t}:${value}`), budget, { entries: 10 }),
    );
    for (const value of ['a', 'b']) for (const memory of memories) memory(value);
    expect(replica.held).toBe(4);
    expect(tenants.map((t) => t.held)).toEqual([2, 2]);
    // A fifth value anywhere: every tenant's memory starts again.
    memories[0]!('c');
    expect(replica.held).toBe(1);
    expect(tenants.map((t) => t.held)).toEqual([1, 0]);
    decided.length = 0;
    memories[1]!('a');
    expect(decided).toEqual(['1:a']);
    // A tenant forgetting on its own gives its values back.
    tenants[0]!.forgetAll();
    expect(replica.held).toBe(1);
    expect(tenants.map((t) => t.held)).toEqual([0, 1]);
  });
});
