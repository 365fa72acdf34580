import { describe, expect, it } from 'vitest';
import { orderedClock } from './ordered-clock.js';

describe('orderedClock', () => {
  it('never gives the same time twice within a millisecond, and follows the clock when it moves on', () => {
    let now = 1_796_564_849_070;
    const ordered = orderedClock(() => now);
    const purgeHeard = ordered();
    const requestBegan = ordered();
    expect(requestBegan).toBeGreaterThan(purgeHeard);
    expect(requestBegan - now).toBeLessThan(1);
    now += 5;
    expect(ordered()).toBe(now);
  });
});
