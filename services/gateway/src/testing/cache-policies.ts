import { randomUUID } from 'node:crypto';
import { cachePolicy, routeConfig } from '@vantageedge/shared/domain/gateway-config';
import {
  type CompiledCachePolicy,
  compileCachePolicy,
} from '@vantageedge/shared/gateway-policies/compile-cache-policy';

/**
 * The compiled cache policy of a public `/*` route of `tenantId` that caches for `ttlSeconds` (and
 * stores bodies up to `maxBodyBytes`, if given).
 */
export function publicRouteCachePolicy(
  tenantId: string,
  ttlSeconds = 300,
  maxBodyBytes?: number,
): CompiledCachePolicy {
  return compileCachePolicy(
    tenantId,
    routeConfig.parse({
      id: randomUUID(),
      origin_id: randomUUID(),
      path_pattern: '/*',
      auth_mode: 'public',
      cache_policy: cachePolicy.parse({
        ttl_seconds: ttlSeconds,
        ...(maxBodyBytes === undefined ? {} : { max_body_bytes: maxBodyBytes }),
      }),
    }),
  )!;
}
