import type { StructuredLogger } from '@vantageedge/shared/observability/logger';
import type { UnverifiedSnapshotMessage } from '@vantageedge/shared/snapshot-bus/port';

/** `unsigned snapshot message refused` lines a replica writes per UNVERIFIED_LOG_WINDOW_MS. */
export const UNVERIFIED_LINES_PER_WINDOW = 10;
export const UNVERIFIED_LOG_WINDOW_MS = 10_000;
/** A refused record's key is whatever its writer sent (up to a message's size): logged by its start. */
const LOGGED_TENANT_ID_CHARS = 100;

/**
 * The log line of a snapshot record refused for its signature, at most UNVERIFIED_LINES_PER_WINDOW
 * per UNVERIFIED_LOG_WINDOW_MS: whoever can write the topic can write millions of small forged
 * records, each read by every replica (and again by each replica that starts, records under
 * distinct keys are never compacted away). The first line written after some were left out carries
 * their count (`unlogged_refusals`); vantageedge_config_unverified_messages_total counts every one.
 */
export function createUnverifiedRecordLog(
  logger: StructuredLogger,
  now: () => number,
): (problem: UnverifiedSnapshotMessage) => void {
  let windowStartedAt = Number.NEGATIVE_INFINITY;
  let written = 0;
  let unlogged = 0;
  return (problem) => {
    const at = now();
    if (at - windowStartedAt >= UNVERIFIED_LOG_WINDOW_MS) {
      windowStartedAt = at;
      written = 0;
    }
    if (written >= UNVERIFIED_LINES_PER_WINDOW) {
      unlogged++;
      return;
    }
    written++;
    const tenantId = problem.tenantId;
    const long = tenantId !== null && tenantId.length > LOGGED_TENANT_ID_CHARS;
    logger.error('unsigned snapshot message refused', {
      tenant_id: long ? `${tenantId.slice(0, LOGGED_TENANT_ID_CHARS)}…` : tenantId,
      ...(long ? { tenant_id_bytes: Buffer.byteLength(tenantId) } : {}),
      reason: problem.detail,
      ...(unlogged > 0 ? { unlogged_refusals: unlogged } : {}),
    });
    unlogged = 0;
  };
}
