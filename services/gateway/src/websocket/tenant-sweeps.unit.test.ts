import { EventLoopSlices, type SlicedWork } from '@vantageedge/shared/process/event-loop-slices';
import { describe, expect, it } from 'vitest';
import { TenantSweeps } from './tenant-sweeps.js';

/**
 * The checks of a tenant's open WebSockets after a snapshot: 10,000 connections are checked in slices
 * of the event loop (other work runs between them), a newer snapshot of the tenant stops the sweep
 * under way, another tenant's does not, and a sweep waiting for a key set sees the connections opened
 * meanwhile. Slices are measured by a step clock, not the machine's speed.
 */
function stepClockSweeps(budgetSteps = 100) {
  const made: EventLoopSlices[] = [];
  const sweeps = new TenantSweeps(() => {
    let steps = 0;
    const slices = new EventLoopSlices({ budgetMs: budgetSteps, now: () => steps++ });
    made.push(slices);
    return slices;
  });
  return { sweeps, made };
}

function* visiting(items: readonly number[], visited: number[]): SlicedWork<void> {
  for (const item of items) {
    visited.push(item);
    yield;
  }
}

const connections = Array.from({ length: 10_000 }, (_, i) => i);

describe('TenantSweeps', () => {
  it('checks 10,000 connections in slices: other work runs before the sweep ends', async () => {
    const { sweeps, made } = stepClockSweeps();
    const visited: number[] = [];
    const order: string[] = [];
    setImmediate(() => order.push(`other tenant served after ${visited.length} checks`));

    const done = await sweeps.run('tenant-a', undefined, () => visiting(connections, visited));
    order.push('sweep done');

    expect(done).toBe(true);
    expect(visited).toEqual(connections);
    expect(made[0]!.turns).toBeGreaterThan(10);
    expect(order[0]).toMatch(/^other tenant served after \d+ checks$/);
    expect(order[0]).not.toBe(`other tenant served after ${connections.length} checks`);
  });

  it('stops a tenant’s sweep when its next snapshot starts another; another tenant’s goes on', async () => {
    const { sweeps } = stepClockSweeps();
    const older: number[] = [];
    const newer: number[] = [];
    const other: number[] = [];

    const first = sweeps.run('tenant-a', undefined, () => visiting(connections, older));
    const elsewhere = sweeps.run('tenant-b', undefined, () => visiting(connections, other));
    const second = sweeps.run('tenant-a', undefined, () => visiting(connections, newer));

    expect(await first).toBe(false);
    expect(older.length).toBeLessThan(connections.length);
    expect(await second).toBe(true);
    expect(newer).toEqual(connections);
    expect(await elsewhere).toBe(true);
    expect(other).toEqual(connections);
  });

  it('lists the connections once its key set is loaded: one opened meanwhile is checked too', async () => {
    const { sweeps } = stepClockSweeps();
    const open = [1, 2];
    const visited: number[] = [];
    let loaded!: () => void;

    const sweep = sweeps.run(
      'tenant-a',
      () => new Promise<void>((resolve) => (loaded = resolve)),
      () => visiting([...open], visited),
    );
    expect(sweeps.preparing('tenant-a')).toBe(true);
    open.push(3);
    loaded();

    expect(await sweep).toBe(true);
    expect(sweeps.preparing('tenant-a')).toBe(false);
    expect(visited).toEqual([1, 2, 3]);
  });

  it('stops every sweep at shutdown', async () => {
    const { sweeps } = stepClockSweeps();
    const visited: number[] = [];
    const sweep = sweeps.run('tenant-a', undefined, () => visiting(connections, visited));
    sweeps.stopAll();
    expect(await sweep).toBe(false);
    expect(visited.length).toBeLessThan(connections.length);
  });
});
