import { Counter, type Registry } from 'prom-client';

export type Transport = 'tcp' | 'tls';
export type HttpProtocol = 'http/1.1' | 'h2';

/** Client connections by transport (tcp, tls) and the HTTP version spoken on them. */
export class ProtocolMetrics {
  readonly #connections: Counter<'transport' | 'protocol'>;

  constructor(registry: Registry) {
    this.#connections = new Counter({
      name: 'vantageedge_gateway_connections_total',
      help: 'Client connections accepted, by transport (tcp, tls) and protocol (http/1.1, h2)',
      labelNames: ['transport', 'protocol'],
      registers: [registry],
    });
  }

  connected(transport: Transport, protocol: HttpProtocol): void {
    this.#connections.labels(transport, protocol).inc();
  }
}
