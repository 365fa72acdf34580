import { describe, expect, it } from 'vitest';
import { StoreClock } from './store-clock.js';

describe('StoreClock', () => {
  const localNow = Date.UTC(2026, 11, 1, 23, 59, 58);
  const storeAhead = 5_000;

  it("reads the counters' time from a decision, and from a TIME asked off the request path", async () => {
    let local = localNow;
    const fromDecision = new StoreClock(() => local);
    expect(fromDecision.now()).toBe(localNow);
    fromDecision.observe(localNow + storeAhead);
    local += 1_000;
    expect(fromDecision.now()).toBe(localNow + storeAhead + 1_000);

    const fromTime = new StoreClock(() => local);
    await fromTime.sync(async () => {
      local += 10; // the round trip: the reply's time is taken as of its middle
      return local - 5 + storeAhead;
    });
    expect(fromTime.now()).toBe(local + storeAhead);
  });

  it('keeps the last offset when a reading fails', async () => {
    const clock = new StoreClock(() => localNow);
    clock.observe(localNow + storeAhead);
    await expect(clock.sync(() => Promise.reject(new Error('Redis is down')))).rejects.toThrow();
    expect(clock.now()).toBe(localNow + storeAhead);
    const following = clock.follow(() => Promise.reject(new Error('Redis is down')), 60_000);
    following.stop();
    expect(clock.now()).toBe(localNow + storeAhead);
  });
});
