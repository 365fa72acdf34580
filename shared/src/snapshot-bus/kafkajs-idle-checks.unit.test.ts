import { createRequire } from 'node:module';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { stopIdleRequestQueueChecks } from './kafkajs-idle-checks.js';

interface QueueForTest {
  pending: unknown[];
  throttledUntil: number;
  throttleCheckTimeoutId: unknown;
  checkPendingRequests(): void;
  scheduleCheckPendingRequests(): void;
}

const { prototype } = createRequire(import.meta.url)('kafkajs/src/network/requestQueue/index.js') as {
  prototype: QueueForTest;
};

/** A broker connection's request queue, as kafkajs keeps it, with `pending` requests waiting. */
function queue(pending: number, throttledUntil: number): QueueForTest {
  const queue = Object.create(prototype) as QueueForTest;
  Object.assign(queue, {
    pending: Array.from({ length: pending }, () => ({})),
    throttledUntil,
    throttleCheckTimeoutId: null,
    checkPendingRequests: () => {},
  });
  return queue;
}

/** The delays a queue's scheduling passes to setTimeout, the clock reading `now` in turn. */
function delaysScheduled(subject: QueueForTest, ...now: number[]): number[] {
  const clock = vi.spyOn(Date, 'now');
  for (const reading of now) clock.mockReturnValueOnce(reading);
  clock.mockReturnValue(now[now.length - 1]!);
  const timers = vi.spyOn(globalThis, 'setTimeout').mockImplementation((() => ({})) as never);
  subject.scheduleCheckPendingRequests();
  return timers.mock.calls.map(([, delay]) => delay ?? 0);
}

afterEach(() => {
  vi.restoreAllMocks();
});

/**
 * kafkajs schedules each connection's queue check `throttledUntil − now` ms ahead: a negative delay,
 * which Node 24 reports as TimeoutNegativeWarning (kafkajs#1751), whenever the throttle has ended. No
 * delay may be negative, also when the throttle ends while the check is being scheduled.
 */
describe('kafkajs request queue checks', () => {
  it('schedules nothing for an idle connection that is not throttled', () => {
    stopIdleRequestQueueChecks();
    expect(delaysScheduled(queue(0, -1), 5_000)).toEqual([]);
  });

  it('checks a throttled connection when its throttle ends', () => {
    stopIdleRequestQueueChecks();
    expect(delaysScheduled(queue(0, 5_300), 5_000)).toEqual([300]);
  });

  it('checks waiting requests soon, with a positive delay, once the throttle has ended', () => {
    stopIdleRequestQueueChecks();
    const [delay] = delaysScheduled(queue(3, -1), 5_000);
    expect(delay).toBeGreaterThan(0);
  });

  it('never schedules a negative delay when the throttle ends while the check is scheduled', () => {
    stopIdleRequestQueueChecks();
    // Throttled until 5,001: still throttled at the first reading of the clock, over at the next.
    const delays = delaysScheduled(queue(0, 5_001), 5_000, 5_003);
    expect(delays.filter((delay) => delay < 0)).toEqual([]);
  });
});
