import type { StructuredLogger } from '@vantageedge/shared/observability/logger';
import type { TopicRetention } from '@vantageedge/shared/snapshot-bus/port';
import { type PeriodicLooks, startPeriodicLooks } from './periodic-looks.js';

export interface TopicRetentionWatchOptions {
  /** The snapshot topic's settings now (readTopicRetention). */
  readRetention: () => Promise<TopicRetention>;
  /**
   * Queues every tenant for publishing again; false (nothing queued) while those it queued last time
   * are still waiting to be published.
   */
  republish: () => Promise<boolean>;
  /** Told at each look whose answer differs from the last: true while the topic may delete tenants. */
  onUnsafe: (unsafe: boolean) => void;
  intervalMs: number;
  logger: StructuredLogger;
}

export interface TopicRetentionWatch {
  stop(): Promise<void>;
}

/**
 * Watches the snapshot topic's settings while the projector runs. Its start refuses a topic that may
 * delete a tenant's newest record (`compact,delete` with a finite retention.ms or retention.bytes), as
 * Kafka Connect refuses its internal topics without `cleanup.policy=compact` (KAFKA-9216); an operator
 * may set that on a running cluster, and segments then go past their retention: replicas started later
 * would miss every tenant whose config did not change for that long.
 *
 * Seen at a look, it is logged as an error and reported (`onUnsafe`, the operator's alert) until the
 * topic is compacted only again, and meanwhile every tenant is published again at once and whenever half
 * of retention.ms has passed since, so that no tenant's newest record gets old enough to be deleted
 * (retention.bytes alone: at once only, as nothing says when size deletes). Not before the tenants
 * queued last time are all published, though: queued again, those already sent would go before those
 * still waiting (a topic of many tenants, or a retention shorter than publishing them all takes), and
 * the latter, with every real change behind them, might never be sent. A look that fails, or a
 * republish that could not be queued yet, is tried at the next interval.
 */
export function startTopicRetentionWatch(options: TopicRetentionWatchOptions): TopicRetentionWatch {
  let unsafe: boolean | undefined;
  /** When every tenant was last queued again for this topic's retention (Date.now()). */
  let republishedAt: number | undefined;

  const look = async (looks: PeriodicLooks): Promise<void> => {
    const { problem, retentionMs } = await options.readRetention();
    if (looks.stopped) return;
    const now = problem !== undefined;
    if (now !== unsafe) {
      if (now) {
        options.logger.error(
          'snapshot topic may delete tenants’ snapshots: every tenant is published again',
          {
            problem,
          },
        );
      } else if (unsafe) options.logger.info('snapshot topic keeps every tenant’s snapshot again');
      unsafe = now;
      options.onUnsafe(now);
    }
    if (!now) {
      republishedAt = undefined;
      return;
    }
    const due =
      republishedAt === undefined ||
      (retentionMs !== undefined && Date.now() - republishedAt >= retentionMs / 2);
    if (!due) return;
    if (!(await options.republish())) return;
    republishedAt = Date.now();
  };

  return startPeriodicLooks({
    look,
    intervalMs: options.intervalMs,
    logger: options.logger,
    failure: 'snapshot topic settings not checked this time; will retry',
  });
}
