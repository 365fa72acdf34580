import { silentLogger } from '@vantageedge/shared/observability/logger';
import type { TopicRetention } from '@vantageedge/shared/snapshot-bus/port';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startTopicRetentionWatch } from './topic-retention-watch.js';

const INTERVAL = 1_000;
const COMPACTED: TopicRetention = { problem: undefined, retentionMs: undefined };
const HOUR = 3_600_000;
const byAge = (retentionMs: number): TopicRetention => ({
  problem: `has cleanup.policy=compact,delete and retention.ms=${retentionMs}`,
  retentionMs,
});

/** A topic whose settings the test changes, and what the watch did about them. */
function harness() {
  const state = {
    retention: COMPACTED as TopicRetention | Error,
    republishes: 0,
    failRepublish: false,
    /** The tenants queued last time are still being published: a republish queues nothing. */
    lastStillPublishing: false,
    unsafe: [] as boolean[],
  };
  const watch = startTopicRetentionWatch({
    readRetention: async () => {
      if (state.retention instanceof Error) throw state.retention;
      return state.retention;
    },
    republish: async () => {
      if (state.failRepublish) {
        state.republishes += 1;
        throw new Error('PostgreSQL unreachable');
      }
      if (state.lastStillPublishing) return false;
      state.republishes += 1;
      return true;
    },
    onUnsafe: (unsafe) => state.unsafe.push(unsafe),
    intervalMs: INTERVAL,
    logger: silentLogger,
  });
  return { state, watch, wait: (ms: number) => vi.advanceTimersByTimeAsync(ms) };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('the snapshot topic retention watch', () => {
  it('reports a switch to compact,delete made while the projector runs and publishes every tenant again', async () => {
    vi.useFakeTimers();
    const { state, watch, wait } = harness();
    await wait(INTERVAL);
    expect(state.unsafe).toEqual([false]);
    expect(state.republishes).toBe(0);

    state.retention = byAge(HOUR);
    await wait(INTERVAL);
    expect(state.unsafe).toEqual([false, true]);
    expect(state.republishes).toBe(1);
    await watch.stop();
  });

  it('publishes every tenant again before the retention could delete the last publication', async () => {
    vi.useFakeTimers();
    const { state, watch, wait } = harness();
    state.retention = byAge(10 * INTERVAL);
    await wait(0);
    expect(state.republishes).toBe(1);
    await wait(4 * INTERVAL);
    expect(state.republishes).toBe(1);
    // Half the retention since the last one: each tenant's newest record is never older than that.
    await wait(INTERVAL);
    expect(state.republishes).toBe(2);
    await wait(5 * INTERVAL);
    expect(state.republishes).toBe(3);
    await watch.stop();
  });

  it('stops once the topic is compacted only again, and says so', async () => {
    vi.useFakeTimers();
    const { state, watch, wait } = harness();
    state.retention = byAge(2 * INTERVAL);
    await wait(0);
    state.retention = COMPACTED;
    await wait(10 * INTERVAL);
    expect(state.unsafe).toEqual([true, false]);
    expect(state.republishes).toBe(1);
    await watch.stop();
  });

  it('tries a republish that could not be queued again at the next look', async () => {
    vi.useFakeTimers();
    const { state, watch, wait } = harness();
    state.failRepublish = true;
    state.retention = byAge(HOUR);
    await wait(0);
    expect(state.republishes).toBe(1);
    state.failRepublish = false;
    await wait(INTERVAL);
    expect(state.republishes).toBe(2);
    await wait(INTERVAL);
    expect(state.republishes).toBe(2);
    expect(state.unsafe).toEqual([true]);
    await watch.stop();
  });

  it("queues every tenant again only once the last time's are published, then at the next look", async () => {
    vi.useFakeTimers();
    const { state, watch, wait } = harness();
    state.retention = byAge(4 * INTERVAL);
    await wait(0);
    expect(state.republishes).toBe(1);
    // Publishing every tenant takes longer than half the retention (thousands of tenants, a short
    // retention): queuing those already sent again would put them back before those still waiting.
    state.lastStillPublishing = true;
    await wait(4 * INTERVAL);
    expect(state.republishes).toBe(1);
    state.lastStillPublishing = false;
    await wait(INTERVAL);
    expect(state.republishes).toBe(2);
    await watch.stop();
  });

  it('looks again after a read that failed (Kafka unreachable)', async () => {
    vi.useFakeTimers();
    const { state, watch, wait } = harness();
    state.retention = new Error('broker unreachable');
    await wait(INTERVAL);
    expect(state.unsafe).toEqual([]);
    state.retention = byAge(HOUR);
    await wait(INTERVAL);
    expect(state.unsafe).toEqual([true]);
    expect(state.republishes).toBe(1);
    await watch.stop();
  });
});
