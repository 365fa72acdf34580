import type { TenantSnapshot } from '@vantageedge/shared/domain/gateway-config';
import { Authenticator } from '../auth/authenticator.js';
import { createCacheStage } from '../cache/cache-stage.js';
import type { ResponseCache } from '../cache/response-cache.js';
import type { CompiledTenant } from '../config/compiled-tenant.js';
import { type ConfigStoreWarning, GatewayConfigStore } from '../config/gateway-config-store.js';
import { createGatewayHandler } from '../pipeline/gateway-handler.js';
import { createRateLimitStage } from '../ratelimit/rate-limit-stage.js';
import type { RateLimiter } from '../ratelimit/rate-limiter.js';

/** What a gateway replica made of one tenant snapshot, and what it complained about while compiling. */
export interface SnapshotCompilation {
  readonly tenant: CompiledTenant | undefined;
  readonly warnings: readonly string[];
}

const noUpstreams = () => ({ acquire: () => undefined, close: async () => {} });
// Compiling reads neither: only requests would reach the limiter or the cache.
const idleLimiter = { storeDegraded: false } as unknown as RateLimiter;
const idleCache = {
  prepareTenant: async () => {},
  tenantBoundChanged: async () => {},
} as unknown as ResponseCache;

/**
 * Compiles `snapshot` as a replica does when it applies it, with every route policy of the request
 * pipeline (auth, limits, IP rules, CORS, transforms, rate limit, cache, traffic split, upstream), but
 * no origin connections and no listener.
 */
export function compileSnapshot(snapshot: TenantSnapshot): SnapshotCompilation {
  const warnings: string[] = [];
  const store = new GatewayConfigStore({
    baseDomains: ['localhost'],
    createUpstreamSet: noUpstreams,
    onWarning: (warning: ConfigStoreWarning) => warnings.push(warning.message),
  });
  createGatewayHandler({
    store,
    authenticator: new Authenticator({ apiKeyPepper: 'compile-only-pepper-0123456789abcdef' }),
    maxBodyBytes: 10 * 1024 * 1024,
    stages: [createRateLimitStage(idleLimiter), createCacheStage(idleCache)],
  });
  store.apply(snapshot);
  return { tenant: store.get(snapshot.tenant_id), warnings };
}
