import type { CompiledTenant } from '../config/compiled-tenant.js';
import type { WebSocketMetrics } from './websocket-metrics.js';

/**
 * Counts each upgrade's answer in the WebSocket metrics: `errorCode` when the gateway answered, none
 * when the origin did. Not once the tenant left the config (an upgrade still in flight then): its
 * series are gone with it.
 */
export class UpgradeCounts {
  readonly #metrics: WebSocketMetrics | undefined;
  readonly #store: { get(tenantId: string): CompiledTenant | undefined };

  constructor(
    metrics: WebSocketMetrics | undefined,
    store: { get(tenantId: string): CompiledTenant | undefined },
  ) {
    this.#metrics = metrics;
    this.#store = store;
  }

  count(tenant: CompiledTenant | undefined, status: number, errorCode: string | undefined): void {
    const metrics = this.#metrics;
    if (metrics === undefined) return;
    if (tenant !== undefined && this.#store.get(tenant.id) === undefined) return;
    metrics.upgrade(tenant?.id ?? 'unknown', status, errorCode);
  }
}
