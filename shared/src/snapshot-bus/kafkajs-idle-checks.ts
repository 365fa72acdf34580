import { createRequire } from 'node:module';

interface RequestQueue {
  pending: unknown[];
  throttledUntil: number;
  throttleCheckTimeoutId: ReturnType<typeof setTimeout> | null;
  checkPendingRequests(): void;
  scheduleCheckPendingRequests(): void;
}

/** kafkajs' own delay for a check of requests that wait while the connection is not throttled. */
const CHECK_PENDING_REQUESTS_INTERVAL_MS = 10;

const require = createRequire(import.meta.url);

/**
 * kafkajs 2.2.4 (its last release) checks every broker connection's queue of pending requests on a timer
 * that re-arms itself after each check, with a delay of `throttledUntil − now`: negative when the broker
 * has not throttled it, which node runs as 1 ms. So each connection of an idle consumer checks its empty
 * queue about a thousand times a second for as long as it lives (kafkajs#1704; on Node 24 every such
 * timer also prints TimeoutNegativeWarning, kafkajs#1751): 3.8% of a core for a replica's idle
 * subscription, measured. A check is needed only while requests wait or the connection is throttled: a
 * new request is sent at once or queued, and queuing one schedules the check again. The clock is read
 * once, so a throttle ending while the check is scheduled never gives a negative delay either.
 */
export function stopIdleRequestQueueChecks(): void {
  const { prototype } = require('kafkajs/src/network/requestQueue/index.js') as {
    prototype: RequestQueue & { [PATCHED]?: true };
  };
  if (prototype[PATCHED]) return;
  prototype.scheduleCheckPendingRequests = function scheduleWhileNeeded(this: RequestQueue): void {
    if (this.throttleCheckTimeoutId) return;
    const throttledFor = this.throttledUntil - Date.now();
    if (this.pending.length === 0 && throttledFor <= 0) return;
    const delay = throttledFor > 0 ? throttledFor : CHECK_PENDING_REQUESTS_INTERVAL_MS;
    this.throttleCheckTimeoutId = setTimeout(() => {
      this.throttleCheckTimeoutId = null;
      this.checkPendingRequests();
    }, delay);
  };
  prototype[PATCHED] = true;
}

const PATCHED = Symbol.for('vantageedge.kafkajs.idle-checks');
