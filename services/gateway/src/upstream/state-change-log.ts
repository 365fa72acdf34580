import type { StructuredLogger } from '@vantageedge/shared/observability/logger';
import { TenantLineBudget } from '../observability/tenant-line-budget.js';

/** Health and circuit lines one origin's targets may write per STATE_CHANGE_WINDOW_MS. */
export const STATE_CHANGE_LINES_PER_WINDOW = 10;
export const STATE_CHANGE_WINDOW_MS = 10_000;
/** Health and circuit lines all of one tenant's origins may write per STATE_CHANGE_WINDOW_MS. */
export const STATE_CHANGE_LINES_PER_TENANT_WINDOW = 30;

/**
 * The replica's bound on each tenant's state-change lines (STATE_CHANGE_LINES_PER_TENANT_WINDOW), shared
 * by every upstream set: a tenant's many origins, each within its own bound, flapping at once.
 */
export function stateChangeLineBudget(logger: StructuredLogger): TenantLineBudget {
  return new TenantLineBudget({
    linesPerWindow: STATE_CHANGE_LINES_PER_TENANT_WINDOW,
    windowMs: STATE_CHANGE_WINDOW_MS,
    summarize: (tenantId, suppressed) =>
      logger.warn(`${suppressed} more state changes for tenant ${tenantId} suppressed`, {
        tenant_id: tenantId,
        suppressed_changes: suppressed,
        window_ms: STATE_CHANGE_WINDOW_MS,
      }),
  });
}

export type StateChangeLog = (
  level: 'info' | 'warn',
  message: string,
  fields: Record<string, unknown>,
) => void;

/**
 * The service-log lines of an origin's target health and circuit changes: at most
 * STATE_CHANGE_LINES_PER_WINDOW per STATE_CHANGE_WINDOW_MS, and within its tenant's share
 * (`tenantLines`) of the lines all its origins write. An origin answering 5xx (to every request, or to
 * what some client sends it) flips each target up to four times per request once its cool-down (0.1 s
 * at the shortest) is over, and every tenant's lines share the replica's log buffer; the metrics count
 * every change. The origin's first line written after some were left out by its own bound carries
 * their count (`unlogged_changes`); those its tenant's share left out are counted in the tenant's
 * summary line.
 */
export function createStateChangeLog(
  logger: StructuredLogger | undefined,
  now: () => number,
  tenantLines?: { readonly tenantId: string; readonly budget: TenantLineBudget },
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
    if (tenantLines !== undefined && !tenantLines.budget.admit(tenantLines.tenantId)) return;
    written++;
    logger[level](message, unlogged > 0 ? { ...fields, unlogged_changes: unlogged } : fields);
    unlogged = 0;
  };
}
