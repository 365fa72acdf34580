import { silentLogger } from '@vantageedge/shared/observability/logger';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startTopicLossWatch } from './topic-loss-watch.js';

const INTERVAL = 1000;

/** A topic of one partition whose mark the test moves, and a publisher's counts. */
function harness() {
  const state = { mark: 0n, sent: 0, acknowledged: 0, failed: 0, losses: 0, failLoss: false };
  const watch = startTopicLossWatch({
    readHighWaterMarks: async () => (state.mark < 0n ? new Map() : new Map([[0, state.mark]])),
    sentRecords: () => state.sent,
    acknowledgedRecords: () => state.acknowledged,
    recordsInFlight: () => state.sent - state.acknowledged - state.failed,
    onLost: async () => {
      state.losses += 1;
      if (state.failLoss) throw new Error('PostgreSQL unreachable');
    },
    intervalMs: INTERVAL,
    logger: silentLogger,
  });
  return { state, watch, look: () => vi.advanceTimersByTimeAsync(INTERVAL) };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('the snapshot topic loss watch', () => {
  it('sees a topic deleted, or recreated empty, between two looks', async () => {
    vi.useFakeTimers();
    const { state, watch, look } = harness();
    state.mark = 5n;
    await look();
    state.mark = -1n; // deleted
    await look();
    expect(state.losses).toBe(1);
    state.mark = 0n; // recreated empty by a gateway: no second loss
    await look();
    expect(state.losses).toBe(1);
    await watch.stop();
  });

  it('sees records it was acknowledged since the last look missing', async () => {
    vi.useFakeTimers();
    const { state, watch, look } = harness();
    await look();
    // Two records published and acknowledged, then the topic recreated empty before the next look.
    state.sent = 2;
    state.acknowledged = 2;
    await look();
    expect(state.losses).toBe(1);
    await watch.stop();
  });

  it('sees records lost that were in flight during a look and not on the topic yet', async () => {
    vi.useFakeTimers();
    const { state, watch, look } = harness();
    await look();
    // A send under way while the next look reads the topic: its records are not there yet.
    state.sent = 2;
    await look();
    // Acknowledged after that look; then the topic is deleted before the next one.
    state.acknowledged = 2;
    state.mark = -1n;
    await look();
    expect(state.losses).toBe(1);
    await watch.stop();
  });

  it('sees the loss again at the next look when publishing everything again could not be asked', async () => {
    vi.useFakeTimers();
    const { state, watch, look } = harness();
    state.mark = 3n;
    await look();
    state.mark = 0n;
    state.failLoss = true;
    await look();
    state.failLoss = false;
    await look();
    expect(state.losses).toBe(2);
    await look();
    expect(state.losses).toBe(2);
    await watch.stop();
  });

  it('takes no record twice: one on the topic before its acknowledgement arrived is no loss', async () => {
    vi.useFakeTimers();
    const { state, watch, look } = harness();
    await look();
    // Sent, and on the topic when the next look reads it, but acknowledged only after that look.
    state.sent = 1;
    state.mark = 1n;
    await look();
    state.acknowledged = 1;
    await look();
    // Another publisher (a deploy's overlap) adds records too.
    state.mark = 4n;
    await look();
    expect(state.losses).toBe(0);
    await watch.stop();
  });
});
