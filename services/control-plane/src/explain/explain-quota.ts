import type { RouteConfig, TenantSnapshot } from '@vantageedge/shared/domain/gateway-config';
import type { AuthExplanation, QuotaExplanation } from '@vantageedge/shared/domain/request-explanation';
import type { QuotaStore } from '@vantageedge/shared/usage/quota-store';
import {
  type QuotaWindow,
  refusingWindowIndex,
  requestQuotaWindows,
} from '@vantageedge/shared/usage/quota-windows';

/**
 * The request quotas a request is checked against and counted in, as the gateways' quota stage
 * computes them (requestQuotaWindows), and how much of each is used now: read from the counters the
 * gateways count in, never spent.
 */

/** The gateways' quota counters (their Redis, under GATEWAY_REDIS_KEY_PREFIX). */
export interface QuotaCounters {
  store: QuotaStore;
  keyPrefix: string;
  /** The time the counters are read at (their current periods); default the counters' own clock. */
  clock?: () => number;
  /**
   * The request is explained as of now (no at_time): its windows are those of the counters' period
   * now, by their clock (Redis's, which decides the gateways' periods), not by this process's.
   */
  atNow?: boolean;
}

export interface ExplainedQuota {
  quota: QuotaExplanation;
  /** The first window the gateways would find used up (they refuse the request with 429 then). */
  exceeded: { window: QuotaWindow; used: number } | null;
}

export async function explainQuota(
  snapshot: TenantSnapshot,
  route: RouteConfig,
  auth: AuthExplanation,
  now: Date,
  counters: QuotaCounters | undefined,
): Promise<ExplainedQuota> {
  const tenantQuota = snapshot.tenant.settings.quota ?? null;
  const apiKeyId = auth.identity.api_key_id;
  const apiKey =
    apiKeyId === undefined
      ? undefined
      : { id: apiKeyId, quota: snapshot.api_keys.find((key) => key.id === apiKeyId)?.quota ?? null };
  const windowsAt = (keyPrefix: string, nowMs: number) =>
    requestQuotaWindows(keyPrefix, snapshot.tenant_id, tenantQuota, apiKey, nowMs);
  // The counters' clock (null: they do not answer), asked only when a quota applies.
  const applies = windowsAt('', now.getTime()).length > 0;
  const currentMs = counters === undefined || !applies ? null : await countersNow(counters).catch(() => null);
  const explainedMs = counters?.atNow && currentMs !== null ? currentMs : now.getTime();
  // Reported like the rate limits' counters: without the store's prefix.
  const windows = windowsAt('', explainedMs);
  const report = (counts: QuotaExplanation['counts'], reason: string, used?: readonly number[]) => ({
    windows: windows.map((window, index) => {
      const count = used?.[index] ?? null;
      return {
        subject: window.subject,
        api_key_id: window.subject === 'api_key' ? (apiKeyId ?? null) : null,
        period: window.period,
        limit: window.limit,
        key: window.key,
        resets_at: new Date(window.resetsAt).toISOString(),
        used: count,
        remaining: count === null ? null : Math.max(0, window.limit - count),
      };
    }),
    counts,
    reason,
  });

  if (windows.length === 0) {
    return { quota: report('not_read', noQuotaReason(route, apiKey)), exceeded: null };
  }
  const whose = quotaOwners(windows);
  if (counters === undefined) {
    return {
      quota: report('not_read', `${whose}; the control plane has no access to the counters`),
      exceeded: null,
    };
  }
  if (currentMs === null) {
    return { quota: report('unknown', `${whose}; the counters could not be read`), exceeded: null };
  }
  const current = windowsAt(counters.keyPrefix, currentMs);
  const explained = windowsAt(counters.keyPrefix, explainedMs);
  if (current.some((window, index) => window.key !== explained[index]?.key)) {
    return {
      quota: report(
        'not_read',
        `${whose}; at_time falls in another period than now: only the current period's counts are read`,
      ),
      exceeded: null,
    };
  }
  // Unreachable or failing counters: the gateways serve the request uncounted, and explain still answers.
  const used = await counters.store.read(current).catch(() => null);
  if (used === null) {
    return { quota: report('unknown', `${whose}; the counters could not be read`), exceeded: null };
  }
  const full = refusingWindowIndex(windows, used);
  return {
    quota: report('read', `${whose}; counts read from the gateways' counters`, used),
    exceeded: full < 0 ? null : { window: windows[full]!, used: used[full] ?? 0 },
  };
}

async function countersNow(counters: QuotaCounters): Promise<number> {
  if (counters.clock) return counters.clock();
  return (await counters.store.time?.()) ?? Date.now();
}

function quotaOwners(windows: readonly QuotaWindow[]): string {
  const tenant = windows.some((window) => window.subject === 'tenant');
  const key = windows.some((window) => window.subject === 'api_key');
  if (tenant && key) return "the tenant's quota and the API key's apply";
  return tenant ? "the tenant's quota applies" : "the API key's quota applies";
}

/** Why no window opens: the tenant has no quota (a tenant quota always opens one), nor has the caller. */
function noQuotaReason(route: RouteConfig, apiKey: { quota: unknown } | undefined): string {
  if (route.auth_mode === 'public')
    return 'no quota applies: the tenant has none, and a public route reads no API key';
  if (apiKey === undefined)
    return 'no quota applies: the tenant has none, and the request names no valid API key';
  return 'no quota applies: neither the tenant nor the API key has one';
}
