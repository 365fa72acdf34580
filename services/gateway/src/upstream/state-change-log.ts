import type { StructuredLogger } from '@vantageedge/shared/observability/logger';

/** Health and circuit lines one origin's targets may write per STATE_CHANGE_WINDOW_MS. */
export const STATE_CHANGE_LINES_PER_WINDOW = 10;
export const STATE_CHANGE_WINDOW_MS = 10_000;

export type StateChangeLog = (
  level: 'info' | 'warn',
  message: string,
  fields: Record<string, unknown>,
) => void;

/**
 * The service-log lines of an origin's target health and circuit changes: at most
 * STATE_CHANGE_LINES_PER_WINDOW per STATE_CHANGE_WINDOW_MS. An origin answering 5xx (to every request,
 * or to what some client sends it) flips each target up to four times per request once its cool-down
 * (0.1 s at the shortest) is over, and every tenant's lines share the replica's log buffer; the
 * metrics count every change. The first line written after some were left out carries their count
 * (`unlogged_changes`).
 */
export function createStateChangeLog(
  logger: StructuredLogger | undefined,
  now: () => number,
): StateChangeLog {
  if (logger === undefined) return () => {};
  let windowStartedAt = Number.NEGATIVE_INFINITY;
  let written = 0;
  let unlogged = 0;
  return (level, message, fields) => {
    const at = now();
    if (at - windowStartedAt >= STATE_CHANGE_WINDOW_MS) {
      windowStartedAt = at;
      written = 0;
    }
    if (written >= STATE_CHANGE_LINES_PER_WINDOW) {
      unlogged++;
      return;
    }
    written++;
    logger[level](message, unlogged > 0 ? { ...fields, unlogged_changes: unlogged } : fields);
    unlogged = 0;
  };
}
