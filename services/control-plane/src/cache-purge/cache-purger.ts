/**
 * How a purge reaches every gateway replica's cache. With Redis, the gateways' response cache
 * protocol (a generation bump plus pub/sub, services/gateway/src/cache) is the adapter; in the
 * single-process dev mode the gateway's in-process cache is handed over directly. Both satisfy this.
 */
export interface CachePurger {
  purgeRoute(tenantId: string, routeId: string): Promise<void>;
  purgeTenant(tenantId: string): Promise<void>;
}
