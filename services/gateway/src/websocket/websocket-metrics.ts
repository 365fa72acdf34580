import { Counter, Gauge, type Registry } from 'prom-client';

/** WebSocket series: open proxied connections and upgrade requests by the status they got. */
export class WebSocketMetrics {
  readonly open: Gauge<'tenant'>;
  readonly #upgrades: Counter<'tenant' | 'status'>;

  constructor(registry: Registry) {
    this.open = new Gauge({
      name: 'vantageedge_gateway_websocket_connections_open',
      help: 'Proxied WebSocket connections open now, by tenant',
      labelNames: ['tenant'],
      registers: [registry],
    });
    this.#upgrades = new Counter({
      name: 'vantageedge_gateway_websocket_upgrades_total',
      help: 'WebSocket upgrade requests by tenant and the status answered (101 when proxied)',
      labelNames: ['tenant', 'status'],
      registers: [registry],
    });
  }

  upgrade(tenant: string, status: number): void {
    this.#upgrades.labels(tenant, String(status)).inc();
  }
}
