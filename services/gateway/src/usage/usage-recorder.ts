import { randomUUID } from 'node:crypto';
import type { Logger } from '@vantageedge/shared/observability/logger';
import {
  encodeUsageCell,
  hourOf,
  statusClassOf,
  type UsageBatchStore,
  type UsageCounts,
} from '@vantageedge/shared/usage/usage-cells';
import { Counter, type Registry } from 'prom-client';
import type { GatewayExchange } from '../pipeline/exchange.js';

/**
 * Counts this replica's requests per tenant, route, API key, user, status class and UTC hour in
 * memory, and every `intervalMs` hands them to the usage batch store (Redis) as one batch with a
 * unique id; the usage flusher adds each batch into PostgreSQL exactly once. No request writes to
 * PostgreSQL or Redis.
 *
 * Accuracy: every answered request is counted once. A batch that cannot be written is kept and
 * retried under the same id (never counted twice); a graceful stop writes the last batch, so only a
 * replica that dies without stopping loses its counts since the last flush (at most `intervalMs`).
 */
export interface UsageRecorderOptions {
  batches: UsageBatchStore;
  replicaId: string;
  intervalMs: number;
  logger?: Logger;
  registry?: Registry;
  clock?: () => number;
}

export class UsageRecorder {
  readonly #options: UsageRecorderOptions;
  readonly #clock: () => number;
  #counts: UsageCounts = new Map();
  /** A batch that failed to be written, retried (same id, same counts) before the next one. */
  #unwritten: { id: string; counts: UsageCounts } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;
  readonly #failures: Counter;

  constructor(options: UsageRecorderOptions) {
    this.#options = options;
    this.#clock = options.clock ?? Date.now;
    this.#failures = new Counter({
      name: 'vantageedge_gateway_usage_batch_failures_total',
      help: 'Usage batches that could not be written to the batch store (kept and retried)',
      registers: options.registry ? [options.registry] : [],
    });
  }

  start(): this {
    this.#timer ??= setInterval(() => void this.flush(), this.#options.intervalMs);
    this.#timer.unref();
    return this;
  }

  /**
   * One finished exchange (once per response, also for the gateway's own error answers). A request
   * the client abandoned before any answer (status 0) and a host that is no tenant's are not counted.
   */
  record(exchange: GatewayExchange, status: number): void {
    const tenant = exchange.tenant;
    if (tenant === undefined || status === 0) return;
    const { identity } = exchange;
    const cell = encodeUsageCell({
      tenantId: tenant.id,
      routeId: exchange.route?.config.id ?? '',
      apiKeyId: identity.apiKeyId ?? '',
      userId: identity.userId ?? identity.serviceId ?? '',
      statusClass: statusClassOf(status),
      hour: hourOf(this.#clock()),
    });
    this.#counts.set(cell, (this.#counts.get(cell) ?? 0) + 1);
  }

  /** Writes what was counted so far (one at a time; a call during a flush waits for it). */
  flush(): Promise<void> {
    this.#flushing ??= this.#write().finally(() => {
      this.#flushing = undefined;
    });
    return this.#flushing;
  }

  /** Stops the timer and writes the last batch (a graceful stop loses nothing). */
  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#flushing;
    await this.flush(); // a batch kept from a failed write first,
    await this.flush(); // then what was counted since
  }

  async #write(): Promise<void> {
    if (this.#unwritten === undefined) {
      if (this.#counts.size === 0) return;
      this.#unwritten = { id: `${this.#options.replicaId}:${randomUUID()}`, counts: this.#counts };
      this.#counts = new Map();
    }
    const batch = this.#unwritten;
    try {
      await this.#options.batches.write(batch.id, batch.counts);
      this.#unwritten = undefined;
    } catch (error) {
      this.#failures.inc();
      this.#options.logger?.warn('usage batch not written; kept for the next flush', {
        batch_id: batch.id,
        error: String(error),
      });
    }
  }
}
