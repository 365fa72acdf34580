import { splitOriginIds } from '../traffic-split/traffic-split-stage.js';
import type { CompiledTenant } from './compiled-tenant.js';

const NONE: ReadonlySet<number> = new Set();

/**
 * Tells each origin of a tenant version the connect_ms values of the routes sending to it (its own, or
 * by traffic split): an origin that did not change keeps its targets, and their pools of values its
 * routes no longer use give their places up to the values they use now (UpstreamSet.useConnectTimeouts).
 */
export function useRouteConnectTimeouts(tenant: Pick<CompiledTenant, 'origins' | 'routes'>): void {
  const byOrigin = new Map<string, Set<number>>();
  for (const route of tenant.routes) {
    const connectMs = route.config.timeouts?.connect_ms;
    if (connectMs === undefined) continue;
    const ids = [route.origin?.config.id, ...(splitOriginIds(route.config, tenant.origins) ?? [])];
    for (const id of ids) {
      if (id === undefined) continue;
      const values = byOrigin.get(id);
      if (values === undefined) byOrigin.set(id, new Set([connectMs]));
      else values.add(connectMs);
    }
  }
  for (const [id, origin] of tenant.origins) origin.upstreams.useConnectTimeouts?.(byOrigin.get(id) ?? NONE);
}
