import type { StructuredLogger } from '@vantageedge/shared/observability/logger';

/** How often a running snapshot projector looks whether the topic was lost. */
export const DEFAULT_TOPIC_WATCH_MS = 10_000;

export interface TopicLossWatchOptions {
  /** Each partition's high-water mark; empty when the topic does not exist. */
  readHighWaterMarks: () => Promise<Map<number, bigint>>;
  /** Records this process has sent to the topic so far, acknowledged or not (a running count). */
  sentRecords: () => number;
  /** Of those, the records the topic acknowledged (a running count). */
  acknowledgedRecords: () => number;
  /** The topic lost records it held (deleted, recreated empty): what it held must be published again. */
  onLost: () => Promise<void>;
  intervalMs?: number | undefined;
  logger: StructuredLogger;
}

export interface TopicLossWatch {
  stop(): Promise<void>;
}

/** What one look at the topic found, and the sent count when it ended. */
interface Look {
  records: bigint;
  sentAfter: number;
}

/**
 * Watches the snapshot topic while the projector runs: the check at start covers a loss before it, this
 * one a loss during it, so replicas started after the loss come to serve every tenant without an
 * operator's republish or restart. A look that fails (Kafka unreachable) is tried at the next interval.
 *
 * Offsets only grow on a topic (compaction removes records, never offsets), so its high-water marks
 * add up to at least what an earlier look found plus the records sent after that look ended and
 * acknowledged before this one began: fewer means it was deleted or recreated. (A record whose send began
 * before a look ended may be in that look's marks already, acknowledged or not: it is not added again.) Cheap (offsets only, no record read); other publishers only add to
 * the topic, so they never make it look lost. A topic deleted, recreated and written past that floor
 * by others between two looks is not seen.
 */
export function startTopicLossWatch(options: TopicLossWatchOptions): TopicLossWatch {
  let last: Look | undefined;
  let looking: Promise<void> = Promise.resolve();
  let stopped = false;

  const look = async (): Promise<void> => {
    const acknowledgedBefore = options.acknowledgedRecords();
    const marks = await options.readHighWaterMarks();
    if (stopped) return;
    const records = [...marks.values()].reduce((sum, mark) => sum + mark, 0n);
    const floor =
      last === undefined ? 0n : last.records + BigInt(Math.max(0, acknowledgedBefore - last.sentAfter));
    last = { records, sentAfter: options.sentRecords() };
    if (records < floor) {
      options.logger.warn('snapshot topic lost records it held (deleted or recreated)', {
        high_water_marks: records.toString(),
        expected_at_least: floor.toString(),
      });
      await options.onLost();
    }
  };

  const tick = (): void => {
    looking = looking.then(look).catch((error: unknown) =>
      options.logger.warn('snapshot topic not watched for a loss this time; will retry', {
        error: error instanceof Error ? error.message : String(error),
      }),
    );
  };
  const timer = setInterval(tick, options.intervalMs ?? DEFAULT_TOPIC_WATCH_MS);
  timer.unref();
  tick();

  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await looking;
    },
  };
}
