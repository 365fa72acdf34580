import { afterEach, describe, expect, it, vi } from 'vitest';
import { outsideTheUtcDaysLast } from './utc-day.js';

afterEach(() => {
  vi.useRealTimers();
});

/** Whether `promise` has settled once the timers due by then ran. */
async function settledAfter(promise: Promise<void>, ms: number): Promise<boolean> {
  let settled = false;
  void promise.then(() => {
    settled = true;
  });
  await vi.advanceTimersByTimeAsync(ms);
  return settled;
}

describe('outsideTheUtcDaysLast', () => {
  it('waits until the new UTC day (and month) when the span would cross its midnight', async () => {
    vi.useFakeTimers({ now: Date.UTC(2026, 11, 31, 23, 59, 0) });
    const waiting = outsideTheUtcDaysLast(120_000);
    expect(await settledAfter(waiting, 59_000)).toBe(false);
    expect(await settledAfter(waiting, 2_000)).toBe(true);
    expect(new Date().getUTCFullYear()).toBe(2027);
  });

  it('returns at once when the span ends before midnight', async () => {
    vi.useFakeTimers({ now: Date.UTC(2026, 11, 31, 23, 57, 0) });
    expect(await settledAfter(outsideTheUtcDaysLast(120_000), 0)).toBe(true);
  });
});
