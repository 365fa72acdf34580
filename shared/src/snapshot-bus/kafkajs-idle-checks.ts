import { createRequire } from 'node:module';

interface RequestQueue {
  pending: unknown[];
  throttledUntil: number;
  scheduleCheckPendingRequests(): void;
}

const require = createRequire(import.meta.url);

/**
 * kafkajs 2.2.4 (its last release) checks every broker connection's queue of pending requests on a timer
 * that re-arms itself after each check, with a delay of `throttledUntil − now`: negative when the broker
 * has not throttled it, which node runs as 1 ms. So each connection of an idle consumer checks its empty
 * queue about a thousand times a second for as long as it lives (kafkajs#1704; on Node 24 it also
 * prints TimeoutNegativeWarning, kafkajs#1751): 3.8% of a core for a replica's idle subscription,
 * measured. A check is needed only while requests wait or the connection is throttled: a new request
 * is sent at once or queued, and queuing one schedules the check again.
 */
export function stopIdleRequestQueueChecks(): void {
  const { prototype } = require('kafkajs/src/network/requestQueue/index.js') as {
    prototype: RequestQueue & { [PATCHED]?: true };
  };
  if (prototype[PATCHED]) return;
  const schedule = prototype.scheduleCheckPendingRequests;
  prototype.scheduleCheckPendingRequests = function scheduleWhileNeeded(this: RequestQueue): void {
    if (this.pending.length === 0 && this.throttledUntil <= Date.now()) return;
    schedule.call(this);
  };
  prototype[PATCHED] = true;
}

const PATCHED = Symbol.for('vantageedge.kafkajs.idle-checks');
