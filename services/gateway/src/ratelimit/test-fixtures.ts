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

/**
 * A sliding window counts in aligned windows of the server's clock (this machine's, for the tests):
 * waits, when the current aligned window of `windowMs` has less than `needMs` left, for the next one,
 * so that a test's admissions fall in one aligned window, where `limit` bounds them exactly (a window
 * of the same length across a boundary may see up to limit × (1 + f), see limit-store.ts).
 */
export async function withinOneAlignedWindow(windowMs: number, needMs: number): Promise<void> {
  const left = windowMs - (Date.now() % windowMs);
  if (left < needMs) await new Promise((resolve) => setTimeout(resolve, left + 5));
}
