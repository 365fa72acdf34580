import { Counter, type Registry } from 'prom-client';

export type Transport = 'tcp' | 'tls';
export type HttpProtocol = 'http/1.1' | 'h2';

/** Client connections by transport (tcp, tls) and the HTTP version spoken on them. */
export class ProtocolMetrics {
  readonly #connections: Counter<'transport' | 'protocol'>;
  readonly #overReadBudget: Counter;

  constructor(registry: Registry) {
    this.#connections = new Counter({
      name: 'vantageedge_gateway_connections_total',
      help: 'Client connections accepted, by transport (tcp, tls) and protocol (http/1.1, h2)',
      labelNames: ['transport', 'protocol'],
      registers: [registry],
    });
    this.#overReadBudget = new Counter({
      name: 'vantageedge_gateway_http2_sessions_over_read_budget_total',
      help: 'HTTP/2 sessions ended (GOAWAY ENHANCE_YOUR_CALM) for reading more frames than their requests explain: a WINDOW_UPDATE flood',
      registers: [registry],
    });
  }

  /** An HTTP/2 session was ended past its read budget (Http2ReadBudget). */
  sessionOverReadBudget(): void {
    this.#overReadBudget.inc();
  }

  connected(transport: Transport, protocol: HttpProtocol): void {
    this.#connections.labels(transport, protocol).inc();
  }
}
