import { randomUUID } from 'node:crypto';
import type { InspectableUpstreamSet } from '../upstream/upstream-set.js';
import type { TestGateway } from './gateway-harness.js';
import { buildSnapshot, type TestOrigin, type TestRoute } from './snapshots.js';

/**
 * Applies on `gateway` a tenant of its own (a fresh circuit and health) whose one origin is `origin`,
 * every route of `routes` going to it (default: one route, `/*`). Returns a reader of that origin's
 * upstream set as the gateway holds it.
 */
export function applyOneOriginTenant(
  gateway: Pick<TestGateway, 'store'>,
  subdomain: string,
  origin: TestOrigin,
  routes: ReadonlyArray<Omit<TestRoute, 'origin_id'>> = [{ path_pattern: '/*' }],
): () => InspectableUpstreamSet {
  const tenantId = randomUUID();
  const originId = randomUUID();
  gateway.store.apply(
    buildSnapshot({
      tenantId,
      subdomain,
      origins: [{ ...origin, id: originId }],
      routes: routes.map((route) => ({ origin_id: originId, ...route })),
    }),
  );
  return () => gateway.store.get(tenantId)?.origins.get(originId)?.upstreams as InspectableUpstreamSet;
}
