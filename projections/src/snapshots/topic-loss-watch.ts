import type { StructuredLogger } from '@vantageedge/shared/observability/logger';
import { type PeriodicLooks, startPeriodicLooks } from './periodic-looks.js';

/** How often a running snapshot projector looks whether the topic was lost. */
export const DEFAULT_TOPIC_WATCH_MS = 10_000;

export interface TopicLossWatchOptions {
  /** Each partition's high-water mark; empty when the topic does not exist. */
  readHighWaterMarks: () => Promise<Map<number, bigint>>;
  /** Records this process has sent to the topic so far, acknowledged or not (a running count). */
  sentRecords: () => number;
  /** Of those, the records the topic acknowledged (a running count). */
  acknowledgedRecords: () => number;
  /** Records sent whose send has not ended yet (acknowledged or failed). */
  recordsInFlight: () => number;
  /** The topic lost records it held (deleted, recreated empty): what it held must be published again. */
  onLost: () => Promise<void>;
  intervalMs?: number | undefined;
  logger: StructuredLogger;
}

export interface TopicLossWatch {
  stop(): Promise<void>;
}

/** What one look at the topic found, and the sent and acknowledged counts when it ended. */
interface Look {
  records: bigint;
  sentAfter: number;
  acknowledgedAfter: number;
  /** No send was under way during it: its marks hold exactly the records acknowledged by then. */
  settled: boolean;
}

/**
 * Watches the snapshot topic while the projector runs: the check at start covers a loss before it, this
 * one a loss during it, so replicas started after the loss come to serve every tenant without an
 * operator's republish or restart. A look that fails (Kafka unreachable), or whose loss could not be
 * acted on, is tried at the next interval.
 *
 * Offsets only grow on a topic (compaction removes records, never offsets), so its high-water marks
 * add up to at least what an earlier look found plus the records acknowledged since that were sent after
 * it ended: fewer means it was deleted or recreated. A record whose send was under way during a look may
 * be in its marks or not, so it is not added to that look's count; it is to the count of the last look
 * during which no send was under way, whose marks cannot hold it. (Counting it twice would republish
 * every tenant for nothing; counting it never, a loss right after its acknowledgement went unseen.)
 * Cheap (offsets only, no record read); other publishers only add to the topic, so they never make it
 * look lost. A topic deleted, recreated and written past that floor by others between two looks is not
 * seen.
 */
export function startTopicLossWatch(options: TopicLossWatchOptions): TopicLossWatch {
  let last: Look | undefined;
  let lastSettled: Look | undefined;

  const recordsAtLeast = (acknowledged: number): bigint => {
    const sinceLast =
      last === undefined ? 0n : last.records + BigInt(Math.max(0, acknowledged - last.sentAfter));
    const sinceSettled =
      lastSettled === undefined
        ? 0n
        : lastSettled.records + BigInt(acknowledged - lastSettled.acknowledgedAfter);
    return sinceLast > sinceSettled ? sinceLast : sinceSettled;
  };

  const look = async (looks: PeriodicLooks): Promise<void> => {
    const sentBefore = options.sentRecords();
    const acknowledgedBefore = options.acknowledgedRecords();
    const idleBefore = options.recordsInFlight() === 0;
    const marks = await options.readHighWaterMarks();
    if (looks.stopped) return;
    const records = [...marks.values()].reduce((sum, mark) => sum + mark, 0n);
    const floor = recordsAtLeast(acknowledgedBefore);
    const current: Look = {
      records,
      sentAfter: options.sentRecords(),
      acknowledgedAfter: options.acknowledgedRecords(),
      settled: idleBefore && options.sentRecords() === sentBefore,
    };
    if (records < floor) {
      options.logger.warn('snapshot topic lost records it held (deleted or recreated)', {
        high_water_marks: records.toString(),
        expected_at_least: floor.toString(),
      });
      // Counted from only once every tenant is queued again: a failure here is seen again next time.
      await options.onLost();
      lastSettled = undefined;
    }
    last = current;
    if (current.settled) lastSettled = current;
  };

  return startPeriodicLooks({
    look,
    intervalMs: options.intervalMs ?? DEFAULT_TOPIC_WATCH_MS,
    logger: options.logger,
    failure: 'snapshot topic not watched for a loss this time; will retry',
  });
}
