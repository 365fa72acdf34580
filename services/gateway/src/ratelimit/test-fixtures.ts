import { randomUUID } from 'node:crypto';
import {
  type RateLimitPolicy,
  type RouteConfig,
  rateLimitPolicy,
  routeConfig,
  type TenantSnapshot,
  tenantSettings,
} from '@vantageedge/shared/domain/gateway-config';

/** Test helpers: a tenant and a route as the snapshot would carry them (defaults applied by the schemas). */
export function tenantWith(
  rateLimit: Partial<RateLimitPolicy> | null,
  tenantId = randomUUID(),
): TenantSnapshot['tenant'] {
  return {
    id: tenantId,
    name: 'acme',
    subdomain: 'acme',
    clerk_org_id: null,
    settings: tenantSettings.parse({ rate_limit: rateLimit ? rateLimitPolicy.parse(rateLimit) : null }),
  };
}

export function routeWith(
  rateLimit: Partial<RateLimitPolicy> | null,
  extra: Partial<RouteConfig> = {},
): RouteConfig {
  return routeConfig.parse({
    id: randomUUID(),
    origin_id: randomUUID(),
    path_pattern: '/api/*',
    auth_mode: 'public',
    rate_limit: rateLimit ? rateLimitPolicy.parse(rateLimit) : null,
    ...extra,
  });
}
