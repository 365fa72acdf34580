import type { QuotaPolicy } from '@vantageedge/shared/domain/gateway-config';
import type { QuotaStore } from '@vantageedge/shared/usage/quota-store';
import { quotaWindows } from '@vantageedge/shared/usage/quota-windows';
import type { QuotaWindowResource } from '../schemas/resources.js';

/** What is left of a key's quota now, read from the counters the gateways keep (null: no quota). */
export type ApiKeyQuotaReader = (
  tenantId: string,
  apiKeyId: string,
  quota: QuotaPolicy | null,
) => Promise<QuotaWindowResource[] | null>;

export function createApiKeyQuotaReader(
  store: QuotaStore,
  keyPrefix: string,
  /** The time the counters are read at; default theirs (Redis's clock decides the gateways' periods). */
  clock?: () => number,
): ApiKeyQuotaReader {
  const now = async () => (clock ? clock() : ((await store.time?.()) ?? Date.now()));
  return async (tenantId, apiKeyId, quota) => {
    if (!quota) return null;
    // Redis unreachable: the key is still answered, without the live numbers.
    const at = await now().catch(() => null);
    if (at === null) return null;
    const windows = quotaWindows(keyPrefix, tenantId, { kind: 'api_key', id: apiKeyId }, quota, at);
    if (windows.length === 0) return null;
    const used = await store.read(windows).catch(() => null);
    if (used === null) return null;
    return windows.map((window, index) => {
      const count = used[index] ?? 0;
      return {
        period: window.period,
        limit: window.limit,
        used: count,
        remaining: Math.max(0, window.limit - count),
        resets_at: new Date(window.resetsAt).toISOString(),
      };
    });
  };
}
