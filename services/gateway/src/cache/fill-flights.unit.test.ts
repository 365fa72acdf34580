import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createFillFlights, type Filled } from './fill-flights.js';

const COALESCE_TIMEOUT_MS = 10_000;

/** Whether `promise` has settled once the microtasks queued so far ran (no timer fires: fake timers). */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  void promise.then(() => {
    done = true;
  });
  for (let i = 0; i < 10; i++) await Promise.resolve();
  return done;
}

describe('fill flights at close', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("answers the followers of the key's flight at once, with nothing", async () => {
    const flights = createFillFlights(COALESCE_TIMEOUT_MS);
    const follower = flights.waitFor(flights.startFlight('k', 1));
    flights.finishAll();
    expect(await settled(follower)).toBe(true);
    expect(await follower).toBeNull();
  });

  // Regression: a flight another replaced (a request after a purge fills the key anew) was no longer
  // the key's, and close() ended only the keys' flights: its followers waited up to coalesceTimeoutMs.
  it('answers the followers of a flight another replaced at once too', async () => {
    const flights = createFillFlights(COALESCE_TIMEOUT_MS);
    const replaced = flights.startFlight('k', 1);
    const follower = flights.waitFor(replaced);
    flights.startFlight('k', 2);
    flights.finishAll();
    expect(await settled(follower)).toBe(true);
    expect(await follower).toBeNull();
    expect(flights.flights.size).toBe(0);
  });

  it('still wakes the followers of a replaced flight with what it filled when it ends before close', async () => {
    const flights = createFillFlights(COALESCE_TIMEOUT_MS);
    const replaced = flights.startFlight('k', 1);
    const follower = flights.waitFor(replaced);
    const current = flights.startFlight('k', 2);
    const filled = { key: 'k' } as unknown as Filled;
    flights.finishFlight(replaced, filled);
    expect(await follower).toBe(filled);
    expect(flights.flights.get('k')).toBe(current);
  });
});
