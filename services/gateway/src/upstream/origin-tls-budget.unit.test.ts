import { describe, expect, it } from 'vitest';
import { OriginTlsBudget, type OriginTlsBudgetSpentError } from './origin-tls-budget.js';

/** A budget on a clock the test moves; each handshake asked is recorded with what settles it. */
function budgetOf(msPerSecond: number, burstMs: number, perTenantAtOnce = 4) {
  let now = 0;
  const budget = new OriginTlsBudget({ msPerSecond, burstMs, perTenantAtOnce, now: () => now });
  const ask = (tenantId: string) => {
    const asked: { started: boolean; refused?: OriginTlsBudgetSpentError; settle?: (ms: number) => void } = {
      started: false,
    };
    const cancel = budget.admit(
      tenantId,
      (settle) => {
        asked.started = true;
        asked.settle = settle;
      },
      (error) => {
        asked.refused = error;
      },
    );
    return { state: asked, cancel };
  };
  return { budget, ask, advance: (ms: number) => (now += ms) };
}

const stateOf = (asked: { state: { started: boolean; refused?: OriginTlsBudgetSpentError } }) =>
  asked.state.refused ? 'refused' : asked.state.started ? 'started' : 'waiting';

describe('OriginTlsBudget', () => {
  it('refuses a tenant whose handshakes overdrew its bucket until it refills, with when to retry', () => {
    const { ask, advance } = budgetOf(100, 1_000);
    const dear = ask('hostile');
    dear.state.settle!(1_500);
    const refused = ask('hostile');
    expect(stateOf(refused)).toBe('refused');
    // 500 ms of debt at 100 ms a second: 5 s.
    expect(refused.state.refused?.retryAfterSeconds).toBe(5);
    advance(4_000);
    expect(stateOf(ask('hostile'))).toBe('refused');
    advance(1_100);
    expect(stateOf(ask('hostile'))).toBe('started');
  });

  it('never refuses another tenant for one tenant’s debt', () => {
    const { ask } = budgetOf(100, 1_000);
    ask('hostile').state.settle!(5_000);
    expect(stateOf(ask('hostile'))).toBe('refused');
    for (let i = 0; i < 100; i++) {
      const asked = ask('neighbour');
      expect(stateOf(asked)).toBe('started');
      asked.state.settle!(0.5);
    }
  });

  it('runs at most its number of a tenant’s handshakes at once; the others wait their turn', () => {
    const { ask } = budgetOf(100, 1_000, 4);
    const burst = Array.from({ length: 6 }, () => ask('new'));
    expect(burst.map(stateOf)).toEqual([...Array(4).fill('started'), 'waiting', 'waiting']);
    expect(stateOf(ask('neighbour'))).toBe('started');
    burst[0]!.state.settle!(0.4);
    expect(burst.map(stateOf)).toEqual([...Array(5).fill('started'), 'waiting']);
  });

  it('remembers a dear handshake while the tenant is in debt and a minute after, whatever cheap ones come between', () => {
    const { ask, advance } = budgetOf(100, 1_000, 4);
    ask('hostile').state.settle!(3_000); // 2 s of debt: 20 s to repay
    advance(20_100);
    const cheap = ask('hostile');
    cheap.state.settle!(0.4);
    advance(50_000);
    // Still expected to cost 3 s: one at a time while the bucket cannot pay for two.
    const [first, second] = [ask('hostile'), ask('hostile')];
    expect([stateOf(first), stateOf(second)]).toEqual(['started', 'waiting']);
  });

  it('starts handshakes to a tenant’s dear origin one at a time, and refuses those waiting once the bucket is empty', () => {
    const { ask } = budgetOf(100, 1_000);
    ask('hostile').state.settle!(600);
    const first = ask('hostile');
    const second = ask('hostile');
    expect([stateOf(first), stateOf(second)]).toEqual(['started', 'waiting']);
    first.state.settle!(600);
    expect(stateOf(second)).toBe('refused');
  });

  it('gives up a turn waited for when its connect is cancelled, and forgets a tenant once idle and refilled', () => {
    const { budget, ask, advance } = budgetOf(100, 1_000);
    ask('hostile').state.settle!(600);
    const first = ask('hostile');
    const second = ask('hostile');
    second.cancel();
    first.state.settle!(0);
    expect(stateOf(second)).toBe('waiting');
    ask('other').state.settle!(1);
    expect(budget.tenantsTracked).toBe(2);
    // The dearest handshake is remembered for a minute, then a tenant with a full bucket is forgotten.
    advance(61_000);
    ask('hostile').state.settle!(0);
    ask('other').state.settle!(0);
    expect(budget.tenantsTracked).toBe(0);
  });
});
