import { describe, expect, it } from 'vitest';
import { EventLoopSlices, runInSlices, runToEnd, type SlicedWork } from './event-loop-slices.js';

/** Work of `steps` steps that logs each step, and whether it was stopped. */
function* logged(log: string[], steps: number): SlicedWork<string> {
  try {
    for (let step = 1; step <= steps; step++) {
      log.push(`step ${step}`);
      yield;
    }
    return 'done';
  } finally {
    log.push('finally');
  }
}

/** A clock that moves only when told: slicing decisions do not depend on the machine's speed. */
function manualClock() {
  let now = 0;
  return {
    now: () => now,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

describe('work in slices of the event loop', () => {
  it('runs to the end at once with runToEnd', () => {
    const log: string[] = [];
    expect(runToEnd(logged(log, 3))).toBe('done');
    expect(log).toEqual(['step 1', 'step 2', 'step 3', 'finally']);
  });

  it('lets timers and I/O callbacks run between slices once a slice has used its budget', async () => {
    const log: string[] = [];
    const clock = manualClock();
    const slices = new EventLoopSlices({ budgetMs: 10, now: clock.now });
    // Each step "takes" 4 ms: a slice is three steps.
    function* work(): SlicedWork<void> {
      for (const _ of logged(log, 6)) {
        clock.advance(4);
        yield;
      }
    }
    setImmediate(() => log.push('other work'));
    const result = await runInSlices(work(), slices);

    expect(result).toEqual({ done: true, value: undefined });
    expect(log).toEqual([
      'step 1',
      'step 2',
      'step 3',
      'other work',
      'step 4',
      'step 5',
      'step 6',
      'finally',
    ]);
    expect(slices.turns).toBe(2);
    expect(slices.longestMs).toBe(12);
  });

  it('counts the time spent in its slices on its busy clock, not the other work between them', async () => {
    const wall = manualClock();
    const busy = manualClock();
    const slices = new EventLoopSlices({ budgetMs: 10, now: wall.now, busyClock: busy.now });
    function* work(): SlicedWork<void> {
      for (let step = 0; step < 6; step++) {
        wall.advance(4);
        busy.advance(1);
        yield;
      }
    }
    setImmediate(() => {
      wall.advance(100);
      busy.advance(100);
    });
    await runInSlices(work(), slices);

    expect(slices.turns).toBe(2);
    expect(slices.busyMs).toBe(6);
  });

  it('stops the work (its finally blocks run) when it is no longer wanted after a turn', async () => {
    const log: string[] = [];
    let wanted = true;
    setImmediate(() => {
      wanted = false;
    });
    const result = await runInSlices(logged(log, 5), new EventLoopSlices({ budgetMs: 0 }), () => wanted);

    expect(result).toEqual({ done: false });
    expect(log).toEqual(['step 1', 'finally']);
  });

  it('passes on what the work throws', async () => {
    function* failing(): SlicedWork<void> {
      yield;
      throw new Error('route 3: invalid');
    }
    await expect(runInSlices(failing(), new EventLoopSlices({ budgetMs: 0 }))).rejects.toThrow('route 3');
  });
});
