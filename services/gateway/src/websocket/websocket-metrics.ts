import { Gauge, type Registry } from 'prom-client';
import { BoundCounter, registerTenantSeries } from '../observability/bound-metrics.js';
import { errorStatusLabel } from '../observability/gateway-metrics.js';
import type { WithdrawalReason } from './websocket-admission.js';

/**
 * WebSocket series: open proxied connections, upgrade requests by the status they got, and upgrades
 * refused at the tenant's WebSocket limit. They leave /metrics with their tenant (removeTenantSeries on
 * the registry): the counters at once, the open connections once the tenant is gone and none of its connections is open any more (a close after
 * the series went would otherwise bring it back at -1).
 */
export class WebSocketMetrics {
  readonly #upgrades: BoundCounter;
  readonly #limitRefusals: BoundCounter;
  readonly #admissionClosures: BoundCounter;
  /** Open connections by tenant; read by the gauge at scrape time. */
  readonly #open = new Map<string, number>();

  constructor(registry: Registry) {
    const open = this.#open;
    new Gauge({
      name: 'vantageedge_gateway_websocket_connections_open',
      help: 'Proxied WebSocket connections open now, by tenant',
      labelNames: ['tenant'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [tenant, count] of open) this.set({ tenant }, count);
      },
    });
    this.#upgrades = new BoundCounter({
      name: 'vantageedge_gateway_websocket_upgrades_total',
      help: 'WebSocket upgrade requests by tenant and the status answered (101 when proxied; an origin status without a registered name is counted as its class, e.g. 4xx)',
      labelNames: ['tenant', 'status'],
      registry,
    });
    this.#limitRefusals = new BoundCounter({
      name: 'vantageedge_gateway_websocket_limit_refusals_total',
      help: 'WebSocket upgrades refused 503 websocket_limit because the tenant held GATEWAY_MAX_WEBSOCKETS_PER_TENANT on this replica',
      labelNames: ['tenant'],
      registry,
    });
    this.#admissionClosures = new BoundCounter({
      name: 'vantageedge_gateway_websocket_admission_closures_total',
      help: 'Open WebSockets the gateway closed because a snapshot withdrew what admitted them or their credentials expired, by tenant and reason (key_revoked, key_expired, auth_changed, route_removed, route_answers_itself, origin_changed, origin_tls_changed, host_moved, credentials_expired, signing_key_withdrawn, ip_denied, cors_not_allowed)',
      labelNames: ['tenant', 'reason'],
      registry,
    });
    registerTenantSeries(registry, {
      removeTenant: (tenant, routeIsLive) => {
        // A replaced tenant keeps its series; a removed one's gauge goes now only if nothing is open.
        if (routeIsLive === undefined && open.get(tenant) === 0) open.delete(tenant);
      },
    });
  }

  /**
   * An upgrade answered `status`: `errorCode` when the gateway answered it (its statuses are a fixed
   * set and keep their value), none when the origin did (an unnamed status is counted as its class).
   */
  upgrade(tenant: string, status: number, errorCode: string | undefined): void {
    this.#upgrades.series([tenant, errorStatusLabel(status, errorCode)]).inc();
  }

  /** An upgrade was refused because the tenant held GATEWAY_MAX_WEBSOCKETS_PER_TENANT. */
  refusedAtLimit(tenant: string): void {
    this.#limitRefusals.series([tenant]).inc();
  }

  /** An open WebSocket of a (still configured) tenant was closed because its admission was withdrawn. */
  closedOnWithdrawal(tenant: string, reason: WithdrawalReason): void {
    this.#admissionClosures.series([tenant, reason]).inc();
  }

  opened(tenant: string): void {
    this.#open.set(tenant, (this.#open.get(tenant) ?? 0) + 1);
  }

  /** `tenantGone`: the tenant has left the replica's config; its series goes with its last connection. */
  closed(tenant: string, tenantGone: boolean): void {
    const count = (this.#open.get(tenant) ?? 1) - 1;
    if (count === 0 && tenantGone) this.#open.delete(tenant);
    else this.#open.set(tenant, count);
  }
}
