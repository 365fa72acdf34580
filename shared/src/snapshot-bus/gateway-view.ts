import type { TenantSnapshot } from '../domain/gateway-config.js';

/**
 * A snapshot as gateways are sent it: without the origins' and routes' tags, which only the control
 * plane reads (lists, config documents, rollbacks) and which would otherwise spend the snapshot's size
 * budget (up to 16 tags of 64 characters on each of 20,000 routes). Gateways read them as none. The
 * snapshot itself when nothing in it is tagged.
 */
export function gatewayViewOf(snapshot: TenantSnapshot): TenantSnapshot {
  const tagged = (item: { tags?: readonly string[] }) => item.tags !== undefined && item.tags.length > 0;
  if (!snapshot.origins.some(tagged) && !snapshot.routes.some(tagged)) return snapshot;
  return {
    ...snapshot,
    origins: snapshot.origins.map((origin) => (tagged(origin) ? { ...origin, tags: [] } : origin)),
    routes: snapshot.routes.map((route) => (tagged(route) ? { ...route, tags: [] } : route)),
  };
}
