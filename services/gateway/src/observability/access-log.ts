import { Counter, type Registry } from 'prom-client';
import { FIXED_RESPONSE_CODE } from '../fixed-response/fixed-response-stage.js';
import type { GatewayExchange } from '../pipeline/exchange.js';
import { CONFIG_LOADING_CODE } from '../pipeline/unknown-host.js';
import { accessLogLine, refusalLogLine } from './access-log-line.js';
import { BatchedLineWriter, type LineSink } from './batched-line-writer.js';
import type { ListenerRefusal } from './listener-refusals.js';

export interface AccessLogOptions {
  /** Where lines go (stdout in a replica: fileDescriptorSink(1)). */
  sink: LineSink;
  /**
   * Fraction of requests below 500 (and of 508 loop_detected, a route's own fixed_response and 503
   * config_loading) that get a line; every other 5xx does.
   */
  sampleRate: number;
  /** Lines waiting to be written, in characters; past it lines are dropped and counted. */
  maxBufferedChars: number;
  registry: Registry;
  /** The `service` field (the service log's name for this process). */
  service?: string;
}

/**
 * 508 (loop detected) is sampled like a 4xx: any client can have one answered on any route by sending
 * the platform's CDN-Loop entries, and a real loop shows in its metric and the tenant's 5xx ratio.
 * So is a 5xx a route answers itself (fixed_response: maintenance, or a route a tenant admin made to
 * answer 500): nothing failed, and every request its clients send would otherwise be a line. So is
 * 503 config_loading, the loading replica's 404 tenant_not_found: any client gets one for any host it
 * makes up, its line names no tenant, and the replica's loading shows in its readiness and metrics.
 */
const LOOP_DETECTED = 508;
const SAMPLED_5XX_CODES: ReadonlySet<string | undefined> = new Set([
  FIXED_RESPONSE_CODE,
  CONFIG_LOADING_CODE,
]);

/**
 * One JSON line per request, sampled: `sampleRate` of the requests below 500 (and of 508s, fixed
 * responses and config_loading), and every other 5xx (the lines an operator needs are never sampled away). The line is built by a fixed-shape serializer and written
 * asynchronously in batches with a bounded buffer; when the destination cannot keep up, lines are
 * dropped and counted (vantageedge_gateway_access_log_dropped_total) rather than slowing requests.
 * Service logs (winston) are separate and unaffected.
 */
export class AccessLog {
  readonly #writer: BatchedLineWriter;
  readonly #sampleRate: number;
  readonly #service: string;

  constructor(options: AccessLogOptions) {
    const dropped = new Counter({
      name: 'vantageedge_gateway_access_log_dropped_total',
      help: 'Access-log lines dropped because the destination could not keep up (buffer full) or failed',
      registers: [options.registry],
    });
    this.#writer = new BatchedLineWriter(options.sink, {
      maxBufferedChars: options.maxBufferedChars,
      onDrop: (lines) => dropped.inc(lines),
    });
    this.#sampleRate = options.sampleRate;
    this.#service = options.service ?? 'gateway';
  }

  record(exchange: GatewayExchange, status: number, latencyMs: number): void {
    if (this.#sampledAway(status, exchange.errorCode)) return;
    this.#writer.write(accessLogLine(exchange, this.#service, status, latencyMs));
  }

  /** A request a listener refused before the pipeline saw it (sampled like any other line). */
  recordRefusal(refusal: ListenerRefusal): void {
    if (this.#sampledAway(refusal.status, refusal.code)) return;
    this.#writer.write(refusalLogLine(refusal, this.#service));
  }

  #sampledAway(status: number, errorCode: string | undefined): boolean {
    return (
      (status < 500 || status === LOOP_DETECTED || SAMPLED_5XX_CODES.has(errorCode)) &&
      (this.#sampleRate <= 0 || (this.#sampleRate < 1 && Math.random() >= this.#sampleRate))
    );
  }

  /** Resolves once every line recorded so far is written (shutdown). */
  flush(): Promise<void> {
    return this.#writer.flush();
  }
}
