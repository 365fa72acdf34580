import { setTimeout as sleep } from 'node:timers/promises';
import type { StructuredLogger } from '@vantageedge/shared/observability/logger';
import {
  hourOf,
  isStorableUserId,
  newUsageBatchId,
  OVERFLOW_ID,
  type StatusClass,
  statusClassOf,
  type UsageBatchStore,
  type UsageCounts,
  usageCellKey,
} from '@vantageedge/shared/usage/usage-cells';
import { Counter, Gauge, Registry } from 'prom-client';
import type { Identity } from '../auth/identity.js';
import { BoundCounter, type CounterSeries } from '../observability/bound-metrics.js';
import type { GatewayExchange } from '../pipeline/exchange.js';

/**
 * The user a cell names: a Clerk user by its bare id, as the usage API has always shown and filtered it
 * (Clerk issues `user_…` ids, so no other principal can equal one); a tenant's OIDC subject or calling
 * service by its principal (`oidc:…`, `svc:…`), since either may use any id, a Clerk user's included.
 * An API key has its own column; an anonymous caller names none.
 */
export function usageUserId(identity: Identity): string {
  if (identity.kind === 'api_key') return '';
  if (identity.issuer === 'clerk') return identity.userId ?? '';
  return identity.principal ?? '';
}

/**
 * Counts this replica's requests per tenant, route, API key, user, status class and UTC hour in
 * memory, and every `intervalMs` hands them to the usage batch store (Redis) as one batch with a
 * unique id; the usage flusher adds each batch into PostgreSQL exactly once. No request writes to
 * PostgreSQL or Redis.
 *
 * Accuracy: every answered request is counted once. A batch that cannot be written is kept and
 * retried under the same id (never counted twice); a graceful stop writes the last batch, retrying for
 * up to `closeTimeoutMs` while the store refuses it (a Redis failover during a rollout), so only a
 * replica that dies without stopping loses its counts since the last flush (at most `intervalMs`), and
 * one whose store refuses its stop's writes that long loses what it held, with an error log of how many
 * requests that was.
 *
 * Cardinality limits (a tenant controls its own issuer, so the user ids it sends are unbounded; its
 * routes × keys are many too) hold per UTC hour, over all of the replica's batches of it, since every
 * batch's cells of an hour become rows of that hour in usage_counts: in one hour a tenant's cells name
 * at most `maxUsersPerTenant` distinct users — the requests of further users (and of user ids that
 * cannot be stored as they are) go to the cell of the same route, key, status class and hour with user
 * OVERFLOW_ID — and a tenant names at most `maxCellsPerTenant` cells, all tenants (and one batch) at
 * most `maxCells`; past either, a request that needs a new cell goes to the tenant's overflow cell of
 * its status class and hour (route, key and user OVERFLOW_ID).
 * Every request is still counted, so a tenant's totals (by hour and status class) stay exact; only the
 * breakdown is lost, and counted in vantageedge_gateway_usage_overflow_requests_total. The overflow
 * cells are bounded too (at most `maxCells` of them: one per tenant, status class and hour); a request
 * past that — only thousands of tenants through a Redis outage of many hours — is not counted, and
 * counted in vantageedge_gateway_usage_dropped_requests_total.
 *
 * While the store refuses batches the replica holds two: the refused one, retried unchanged under its
 * id, and the one it counts into, each within the limits above; and, to hold the limits across
 * batches, the keys of the cells it named in the current hour and its neighbours (at most `maxCells` an
 * hour). New counts are never merged into the refused batch: a write reported as failed may have
 * landed and been applied, and its id would then be skipped with the merged counts in it.
 *
 * The hot path, a request whose cell exists: one key string, one Map lookup and one store; the
 * limits are checked only when a request needs a new cell. A route's requests mostly repeat its last
 * request's cell, so that key string is reused: a string built anew is hashed anew by each lookup.
 */
/** A route's last cell: its key and what it was made of besides the tenant and route. */
interface LastCell {
  readonly apiKeyId: string;
  readonly userId: string;
  readonly statusClass: StatusClass;
  readonly hour: number;
  readonly key: string;
}

export interface UsageRecorderOptions {
  batches: UsageBatchStore;
  replicaId: string;
  intervalMs: number;
  logger?: StructuredLogger | undefined;
  registry?: Registry;
  /** The time the hours and batch ids are named by: the counters' (Redis's) clock, StoreClock (default the system's). */
  clock?: () => number;
  /**
   * Whether `clock` reads the counters' clock yet (StoreClock's `known`; default: always). Until it
   * does, no batch is named — a batch id keeps the time it was named at, and the flusher measures its
   * age on Redis's clock — so a replica that starts while Redis is down holds its counts, within the
   * limits, until Redis answers; only a stop names a batch by the replica's own clock.
   */
  clockKnown?: () => boolean;
  /** Distinct users one tenant's cells name in an hour (GATEWAY_USAGE_MAX_USERS_PER_TENANT). */
  maxUsersPerTenant?: number;
  /** Cells in one hour (and one batch), all tenants (GATEWAY_USAGE_MAX_CELLS). */
  maxCells?: number;
  /** Cells one tenant names in an hour, at most maxCells (GATEWAY_USAGE_MAX_CELLS_PER_TENANT). */
  maxCellsPerTenant?: number;
  /** How long close() goes on retrying batches the store refuses (default USAGE_CLOSE_TIMEOUT_MS). */
  closeTimeoutMs?: number;
  /** The pause between those retries (default USAGE_CLOSE_RETRY_INTERVAL_MS). */
  closeRetryIntervalMs?: number;
}

/**
 * A graceful stop retries the batches the store refuses this long: through a Redis failover (a few
 * seconds), within the replica's shutdown deadline (drain + GATEWAY_SHUTDOWN_TIMEOUT_SECONDS + 15 s).
 */
export const USAGE_CLOSE_TIMEOUT_MS = 5_000;
export const USAGE_CLOSE_RETRY_INTERVAL_MS = 250;

export const USAGE_LIMIT_DEFAULTS = {
  maxUsersPerTenant: 1_000,
  maxCells: 100_000,
  maxCellsPerTenant: 10_000,
} as const;

type OverflowReason = 'users' | 'user_id' | 'cells';

/**
 * One tenant in one hour: the users its cells name, its cells, its overflow series (looked up once, and
 * again after the tenant's removal took it from /metrics).
 */
interface TenantCells {
  readonly users: Set<string>;
  cells: number;
  readonly overflow: Partial<Record<OverflowReason, CounterSeries>>;
}

/**
 * The cells this replica named in one UTC hour, over all its batches: the limits hold per hour, since
 * every batch's cells of an hour become rows of that hour in usage_counts (a limit per batch let a
 * tenant name new users every flush interval, 720 times an hour).
 */
class HourCells {
  readonly tenants = new Map<string, TenantCells>();
  /** Cells within the limits (all but the tenants' overflow cells). */
  readonly named = new Set<string>();
}

/** The counts of one batch. */
class Batch {
  readonly counts: UsageCounts = new Map();
  /** Cells within the limits. */
  cells = 0;
  /** Tenants' overflow cells: route, key and user OVERFLOW_ID. */
  overflowCells = 0;
}

export class UsageRecorder {
  readonly #options: UsageRecorderOptions;
  readonly #clock: () => number;
  readonly #maxUsers: number;
  readonly #maxCells: number;
  readonly #maxTenantCells: number;
  #batch = new Batch();
  /** The cells named per hour: the current one and its neighbours (requests finishing across an hour). */
  readonly #hours = new Map<number, HourCells>();
  /** The cell of the last request of each compiled route (of the tenant, for requests without one). */
  readonly #lastCells = new WeakMap<object, LastCell>();
  /** A batch that failed to be written, retried (same id, same counts) before the next one. */
  #unwritten: { id: string; counts: UsageCounts } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;
  readonly #failures: Counter;
  readonly #overflowed: BoundCounter;
  readonly #dropped: Counter;

  constructor(options: UsageRecorderOptions) {
    this.#options = options;
    this.#clock = options.clock ?? Date.now;
    this.#maxUsers = options.maxUsersPerTenant ?? USAGE_LIMIT_DEFAULTS.maxUsersPerTenant;
    this.#maxCells = options.maxCells ?? USAGE_LIMIT_DEFAULTS.maxCells;
    this.#maxTenantCells = Math.min(
      options.maxCellsPerTenant ?? USAGE_LIMIT_DEFAULTS.maxCellsPerTenant,
      this.#maxCells,
    );
    const registers = options.registry ? [options.registry] : [];
    this.#failures = new Counter({
      name: 'vantageedge_gateway_usage_batch_failures_total',
      help: 'Usage batches that could not be written to the batch store (kept and retried)',
      registers,
    });
    this.#overflowed = new BoundCounter({
      name: 'vantageedge_gateway_usage_overflow_requests_total',
      help: 'Requests counted in a tenant’s usage overflow cell (id "*") instead of their own, by tenant and reason: users (past GATEWAY_USAGE_MAX_USERS_PER_TENANT in an hour), user_id (an id too long or with control characters), cells (past the tenant’s GATEWAY_USAGE_MAX_CELLS_PER_TENANT or the hour’s GATEWAY_USAGE_MAX_CELLS)',
      labelNames: ['tenant', 'reason'],
      registry: options.registry ?? new Registry(),
    });
    this.#dropped = new Counter({
      name: 'vantageedge_gateway_usage_dropped_requests_total',
      help: 'Answered requests not counted in usage: the batch’s overflow cells were full too (GATEWAY_USAGE_MAX_CELLS of them)',
      registers,
    });
    const recorder = this;
    new Gauge({
      name: 'vantageedge_gateway_usage_cells',
      help: 'Usage cells this replica holds in memory: the batch it counts into and one the store refused',
      registers,
      collect() {
        this.set(recorder.cells);
      },
    });
  }

  /** Cells held in memory: the batch being counted and a refused one kept for retry. */
  get cells(): number {
    return this.#batch.counts.size + (this.#unwritten?.counts.size ?? 0);
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
    const routeId = exchange.route?.config.id ?? '';
    const apiKeyId = identity.apiKeyId ?? '';
    const userId = usageUserId(identity);
    const statusClass = statusClassOf(status);
    const hour = hourOf(this.#clock());
    const counts = this.#batch.counts;
    const cell = this.#cellKey(
      exchange.route ?? tenant,
      tenant.id,
      routeId,
      apiKeyId,
      userId,
      statusClass,
      hour,
    );
    const requests = counts.get(cell);
    if (requests !== undefined) {
      counts.set(cell, requests + 1);
      return;
    }
    this.#recordInNewCell(tenant.id, routeId, apiKeyId, userId, statusClass, hour, cell);
  }

  #cellKey(
    lastOf: object,
    tenantId: string,
    routeId: string,
    apiKeyId: string,
    userId: string,
    statusClass: StatusClass,
    hour: number,
  ): string {
    const last = this.#lastCells.get(lastOf);
    if (
      last !== undefined &&
      last.hour === hour &&
      last.statusClass === statusClass &&
      last.apiKeyId === apiKeyId &&
      last.userId === userId
    ) {
      return last.key;
    }
    const key = usageCellKey(tenantId, routeId, apiKeyId, userId, statusClass, hour);
    this.#lastCells.set(lastOf, { apiKeyId, userId, statusClass, hour, key });
    return key;
  }

  /** A request whose cell does not exist yet: the limits decide which cell counts it. */
  #recordInNewCell(
    tenantId: string,
    routeId: string,
    apiKeyId: string,
    userId: string,
    statusClass: StatusClass,
    hour: number,
    cell: string,
  ): void {
    const batch = this.#batch;
    const { counts } = batch;
    const thisHour = this.#hourCells(hour);
    if (thisHour.named.has(cell)) {
      // Named in an earlier batch of the hour: within the limits already.
      counts.set(cell, 1);
      batch.cells += 1;
      return;
    }
    let tenant = thisHour.tenants.get(tenantId);
    if (tenant === undefined) {
      tenant = { users: new Set(), cells: 0, overflow: {} };
      thisHour.tenants.set(tenantId, tenant);
    }
    let reason: OverflowReason | undefined;
    let newUser = false;
    if (userId !== '' && userId !== OVERFLOW_ID && !tenant.users.has(userId)) {
      if (!isStorableUserId(userId)) reason = 'user_id';
      else if (tenant.users.size >= this.#maxUsers) reason = 'users';
      else newUser = true;
      if (reason !== undefined) {
        cell = usageCellKey(tenantId, routeId, apiKeyId, OVERFLOW_ID, statusClass, hour);
        const requests = counts.get(cell);
        if (requests !== undefined) {
          counts.set(cell, requests + 1);
          this.#overflow(tenant, tenantId, reason);
          return;
        }
        if (thisHour.named.has(cell)) {
          counts.set(cell, 1);
          batch.cells += 1;
          this.#overflow(tenant, tenantId, reason);
          return;
        }
      }
    }
    if (
      tenant.cells < this.#maxTenantCells &&
      thisHour.named.size < this.#maxCells &&
      batch.cells < this.#maxCells
    ) {
      counts.set(cell, 1);
      thisHour.named.add(cell);
      tenant.cells += 1;
      batch.cells += 1;
      if (newUser) tenant.users.add(userId);
      if (reason !== undefined) this.#overflow(tenant, tenantId, reason);
      return;
    }
    // The tenant's share or the batch is full: the tenant's overflow cell of this status class and hour.
    cell = usageCellKey(tenantId, OVERFLOW_ID, OVERFLOW_ID, OVERFLOW_ID, statusClass, hour);
    const requests = counts.get(cell);
    if (requests !== undefined) {
      counts.set(cell, requests + 1);
    } else if (batch.overflowCells < this.#maxCells) {
      counts.set(cell, 1);
      batch.overflowCells += 1;
    } else {
      this.#dropped.inc();
      return;
    }
    this.#overflow(tenant, tenantId, 'cells');
  }

  /** The hour's named cells; a new hour drops all but its neighbours' (a clock stepped back included). */
  #hourCells(hour: number): HourCells {
    let cells = this.#hours.get(hour);
    if (cells === undefined) {
      cells = new HourCells();
      for (const known of this.#hours.keys()) {
        if (Math.abs(known - hour) > 3_600) this.#hours.delete(known);
      }
      this.#hours.set(hour, cells);
    }
    return cells;
  }

  #overflow(tenant: TenantCells, tenantId: string, reason: OverflowReason): void {
    let series = tenant.overflow[reason];
    // Not exported: the tenant left the config since (or was not in it), and may be back.
    if (series === undefined || !series.exported) {
      series = this.#overflowed.series([tenantId, reason]);
      tenant.overflow[reason] = series;
    }
    series.inc();
  }

  /** Writes what was counted so far (one at a time; a call during a flush waits for it). */
  flush(): Promise<void> {
    return this.#flush(false);
  }

  #flush(stopping: boolean): Promise<void> {
    this.#flushing ??= this.#write(stopping).finally(() => {
      this.#flushing = undefined;
    });
    return this.#flushing;
  }

  /**
   * Stops the timer and writes what it holds — a batch kept from a failed write first, then what was
   * counted since — retrying while the store refuses, for up to `closeTimeoutMs`; past that what is
   * left is lost, and logged as an error with its number of requests.
   */
  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#flushing;
    const timeoutMs = this.#options.closeTimeoutMs ?? USAGE_CLOSE_TIMEOUT_MS;
    const retryMs = this.#options.closeRetryIntervalMs ?? USAGE_CLOSE_RETRY_INTERVAL_MS;
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      await this.#flush(true);
      if (this.#unwritten === undefined && this.#batch.counts.size === 0) return;
      const left = deadline - performance.now();
      if (left <= 0) break;
      // Only a refused write pauses: a written batch goes straight on to the next.
      if (this.#unwritten !== undefined) await sleep(Math.min(retryMs, left));
    }
    this.#options.logger?.error('usage counts not written at shutdown: the batch store refused them', {
      requests: requestsIn(this.#unwritten?.counts) + requestsIn(this.#batch.counts),
      batch_id: this.#unwritten?.id,
      timeout_ms: timeoutMs,
    });
  }

  async #write(stopping: boolean): Promise<void> {
    if (this.#unwritten === undefined) {
      if (this.#batch.counts.size === 0) return;
      if (!stopping && this.#options.clockKnown?.() === false) return;
      this.#unwritten = {
        // The counters' clock, as the hours are: the flusher measures a batch's age on it to refuse one
        // too old, so a replica whose own clock is weeks behind does not have every batch refused.
        id: newUsageBatchId(this.#options.replicaId, this.#clock()),
        counts: this.#batch.counts,
      };
      this.#batch = new Batch();
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

function requestsIn(counts: UsageCounts | undefined): number {
  let requests = 0;
  for (const count of counts?.values() ?? []) requests += count;
  return requests;
}
