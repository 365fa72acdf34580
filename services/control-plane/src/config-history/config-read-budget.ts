import type { EventStore, RecordedEvent } from '@vantageedge/shared/event-store/port';
import { snapshotJsonBytes } from '@vantageedge/shared/snapshot-bus/codec';
import type { TenantAccess } from '../auth/caller.js';
import { rateLimited } from '../domain/errors.js';

/**
 * How much config one tenant's whole-config reads (GET …/config, …/config/document, …/config/diff,
 * POST …/explain, …/config/plan) may go through per minute in one control-plane process, in bytes of the
 * configs' JSON. Such a read costs the process's one thread about its config's size (≈ 15–20 ms per MB:
 * 170–270 ms for a 13 MB tenant), so the per-caller request limit alone let one admin keep the admin
 * API of every tenant busy. A token bucket per tenant, as big as a minute's worth: a read starts while
 * the bucket is not in debt and takes its configs' bytes (it may go into debt: a config larger than the
 * bucket can still be read, once per refill); in debt, 429 `admin_rate_limited` naming
 * `tenant_config_read_bytes_per_minute` until it is repaid, before the read folds any event. The events
 * a read folds (a far position may need up to CONTROL_PLANE_CONFIG_READ_MAX_EVENTS of them, each parsed
 * and folded on that same thread) are charged too, each its stored size (at least `MIN_FOLDED_EVENT_BYTES`),
 * and a fold stops between two pages of events once the bucket is in debt (tenant-folds.ts). Configs are
 * counted from the cached (frozen) folds, so counting costs about nothing. An Idempotency-Key answer sent
 * again (a rollback's lists the resources it changed, before and after) costs what reading its JSON
 * does, and is charged its size before it is read (command-router.ts). A plan or apply reads the stream
 * of each id its document names that is not live (a deleted resource it may bring back): each read is
 * charged as one folded event besides the events it returns, and the reads stop once the bucket is in
 * debt (config-commands.ts), so a reader's 1,000-route plan costs what it makes the store do. An
 * audit-log page costs its entries' JSON, each entry its tenant's (queries/router.ts).
 *
 * The callers with read access only to a tenant (members, viewers, other org roles) read from a bucket
 * of their own of the same size (`configReadBudgetOf(store, 'read')`): however much they read, the
 * tenant's writers (owners, admins, platform admins) can still read, plan, apply and roll back its
 * config, and its commands measure their snapshots. A tenant's reads may so cost up to twice the budget.
 */

export const DEFAULT_CONFIG_READ_BYTES_PER_MINUTE = 512 * 1024 * 1024;

/**
 * What folding one event of the log costs at least, in bytes of config read: reading, parsing and folding
 * an event (≈ 0.1 ms for a route change) costs about what going through 8 KiB of config does. A larger
 * event costs its stored size (the store reports it with the event: nothing is measured again here), so
 * a tenant's large events (whole config documents applied again and again) are charged the memory and
 * time they take. At the default budget a tenant's reads fold at most 65,536 events a minute on a
 * replica, fewer the larger they are.
 */
export const MIN_FOLDED_EVENT_BYTES = 8 * 1024;

/**
 * What a byte of a document that plan or apply validates costs, in bytes of config read: every entry
 * goes through its schema and the plan, some 300–400 ms of the thread per MB (measured on a 2-core
 * machine) against the 15–20 ms per MB a config read costs. Counted as read bytes alone, one tenant's
 * admin could plan its largest document back to back and hold the admin API of every tenant.
 */
export const DOCUMENT_VALIDATION_WEIGHT = 20;

/**
 * What rehearsing one step of a plan costs, in bytes of config read: a plan or a rollback's dry run
 * runs its steps as apply does before its first append (each step's command, the streams it reads, its
 * checks), about 1 ms of the thread per step (a plan of 100 origins and 1,000 routes: ≈ 1 s of CPU,
 * against ≈ 0.1 s for planning it alone), what going through some 64 KiB of config costs.
 */
export const REHEARSED_STEP_BYTES = 64 * 1024;

/**
 * What a byte of a config's routes costs, in bytes of config read, when explain builds their route matcher
 * (once per version of the config while explain keeps it decoded, explain-source.ts; shared by the
 * explains of it): every pattern is compiled and filed,
 * ≈ 150 ms of the thread for 1,000 routes of 255 segments (1.1 MB of JSON) against the ≈ 20 ms reading
 * that config costs.
 */
export const ROUTE_MATCHER_BUILD_WEIGHT = 8;

/** Tenants whose buckets are kept, least recently used out (a dropped bucket is full again). */
const MAX_TENANTS = 100_000;

export interface ConfigReadBudget {
  /**
   * Throws 429 when the tenant's bucket is in debt, taking nothing: called before a read folds
   * anything, so that a refused read costs no fold of the tenant's history either.
   */
  admit(tenantId: string): void;
  /** Takes the values' JSON bytes from the tenant's bucket, refusing nothing: for a read admitted already. */
  spend(tenantId: string, values: readonly unknown[]): void;
  /** Takes each event's stored bytes (at least `MIN_FOLDED_EVENT_BYTES`) a read folded, refusing nothing. */
  spendFoldedEvents(tenantId: string, events: readonly Pick<RecordedEvent, 'storedBytes'>[]): void;
  /**
   * Takes what one read of an event stream costs (a statement: `MIN_FOLDED_EVENT_BYTES`) and the events
   * it returned (each as `spendFoldedEvents` counts it), refusing nothing.
   */
  spendStreamRead(tenantId: string, events: readonly Pick<RecordedEvent, 'storedBytes'>[]): void;
  /** Takes `REHEARSED_STEP_BYTES` for each step a preview rehearses, refusing nothing: for a read admitted already. */
  spendRehearsedSteps(tenantId: string, steps: number): void;
  /** Takes the routes' JSON bytes × ROUTE_MATCHER_BUILD_WEIGHT, refusing nothing: their matcher was built. */
  spendRouteMatcherBuild(tenantId: string, routes: readonly unknown[]): void;
  /** Takes the configs' bytes from the tenant's bucket; throws 429 when the bucket is in debt. */
  charge(tenantId: string, configs: readonly unknown[]): void;
  /** Takes `bytes` of JSON from the tenant's bucket (a value not at hand yet); throws 429 when the bucket is in debt. */
  chargeBytes(tenantId: string, bytes: number): void;
  /**
   * Takes a plan's or apply's bytes before its document is validated: the tenant's live config, and the
   * document's bytes × DOCUMENT_VALIDATION_WEIGHT; throws 429 when the bucket is in debt.
   */
  chargeDocument(tenantId: string, document: unknown, config: unknown): void;
}

export function createConfigReadBudget({
  bytesPerMinute = DEFAULT_CONFIG_READ_BYTES_PER_MINUTE,
  now = Date.now,
}: {
  /** 0: no limit. */
  bytesPerMinute?: number;
  now?: () => number;
} = {}): ConfigReadBudget {
  const buckets = new Map<string, { bytes: number; at: number }>();
  const perMs = bytesPerMinute / 60_000;
  /** The bytes in the tenant's bucket at `at` (negative: in debt). */
  const refilled = (tenantId: string, at: number): number => {
    const kept = buckets.get(tenantId);
    return kept ? Math.min(bytesPerMinute, kept.bytes + (at - kept.at) * perMs) : bytesPerMinute;
  };
  /** The same, or 429 when the bucket is in debt. */
  const available = (tenantId: string, at: number): number => {
    const bytes = refilled(tenantId, at);
    if (bytes <= 0) {
      throw rateLimited(
        'admin_rate_limited',
        "too much of this tenant's config read in the last minute: retry later",
        'tenant_config_read_bytes_per_minute',
        `whole-config reads of one tenant may go through ${bytesPerMinute} bytes of config per minute (CONTROL_PLANE_TENANT_CONFIG_READ_BYTES_PER_MINUTE)`,
        Math.max(1, Math.ceil(-bytes / perMs / 1000)),
      );
    }
    return bytes;
  };
  const take = (tenantId: string, bytes: number, at: number, cost: number) => {
    buckets.delete(tenantId);
    buckets.set(tenantId, { bytes: bytes - cost, at });
    for (const oldest of buckets.keys()) {
      if (buckets.size <= MAX_TENANTS) break;
      buckets.delete(oldest);
    }
  };
  return {
    admit(tenantId) {
      if (bytesPerMinute !== 0) available(tenantId, now());
    },
    spend(tenantId, values) {
      if (bytesPerMinute === 0) return;
      const at = now();
      take(tenantId, refilled(tenantId, at), at, jsonBytesOf(values));
    },
    spendFoldedEvents(tenantId, events) {
      if (bytesPerMinute === 0 || events.length === 0) return;
      const at = now();
      take(tenantId, refilled(tenantId, at), at, foldedBytesOf(events));
    },
    spendStreamRead(tenantId, events) {
      if (bytesPerMinute === 0) return;
      const at = now();
      take(tenantId, refilled(tenantId, at), at, MIN_FOLDED_EVENT_BYTES + foldedBytesOf(events));
    },
    spendRehearsedSteps(tenantId, steps) {
      if (bytesPerMinute === 0 || steps === 0) return;
      const at = now();
      take(tenantId, refilled(tenantId, at), at, steps * REHEARSED_STEP_BYTES);
    },
    spendRouteMatcherBuild(tenantId, routes) {
      if (bytesPerMinute === 0 || routes.length === 0) return;
      const at = now();
      take(tenantId, refilled(tenantId, at), at, jsonBytesOf(routes) * ROUTE_MATCHER_BUILD_WEIGHT);
    },
    charge(tenantId, configs) {
      if (bytesPerMinute === 0) return;
      const at = now();
      take(tenantId, available(tenantId, at), at, jsonBytesOf(configs));
    },
    chargeBytes(tenantId, bytes) {
      if (bytesPerMinute === 0) return;
      const at = now();
      take(tenantId, available(tenantId, at), at, bytes);
    },
    chargeDocument(tenantId, document, config) {
      if (bytesPerMinute === 0) return;
      const at = now();
      const cost = snapshotJsonBytes(config) + snapshotJsonBytes(document) * DOCUMENT_VALIDATION_WEIGHT;
      take(tenantId, available(tenantId, at), at, cost);
    },
  };
}

function foldedBytesOf(events: readonly Pick<RecordedEvent, 'storedBytes'>[]): number {
  let bytes = 0;
  for (const { storedBytes } of events) bytes += Math.max(MIN_FOLDED_EVENT_BYTES, storedBytes);
  return bytes;
}

function jsonBytesOf(values: readonly unknown[]): number {
  let bytes = 0;
  for (const value of values) bytes += snapshotJsonBytes(value);
  return bytes;
}

/** The same buckets' rules over a bucket of each tenant's readers, apart from its own. */
function readersBudgetOf(budget: ConfigReadBudget): ConfigReadBudget {
  const readers = (tenantId: string) => `${tenantId} readers`;
  return {
    admit: (tenantId) => budget.admit(readers(tenantId)),
    spend: (tenantId, values) => budget.spend(readers(tenantId), values),
    spendFoldedEvents: (tenantId, events) => budget.spendFoldedEvents(readers(tenantId), events),
    spendStreamRead: (tenantId, events) => budget.spendStreamRead(readers(tenantId), events),
    spendRehearsedSteps: (tenantId, steps) => budget.spendRehearsedSteps(readers(tenantId), steps),
    spendRouteMatcherBuild: (tenantId, routes) => budget.spendRouteMatcherBuild(readers(tenantId), routes),
    charge: (tenantId, configs) => budget.charge(readers(tenantId), configs),
    chargeBytes: (tenantId, bytes) => budget.chargeBytes(readers(tenantId), bytes),
    chargeDocument: (tenantId, document, config) =>
      budget.chargeDocument(readers(tenantId), document, config),
  };
}

/** Each store's budget: every router of one control plane over that store shares it. */
const budgetsByStore = new WeakMap<EventStore, ConfigReadBudget>();
const readersBudgets = new WeakMap<ConfigReadBudget, ConfigReadBudget>();

/** The budget whole-config reads over `store` use (set once, at start-up; default: the default). */
export function useConfigReadBudget(store: EventStore, budget: ConfigReadBudget): void {
  budgetsByStore.set(store, budget);
}

/**
 * The budget of the reads over `store` of a caller with `access` to the tenant (default: write, as
 * commands read): callers with read access only have buckets of their own.
 */
export function configReadBudgetOf(store: EventStore, access: TenantAccess = 'write'): ConfigReadBudget {
  let budget = budgetsByStore.get(store);
  if (budget === undefined) {
    budget = createConfigReadBudget();
    budgetsByStore.set(store, budget);
  }
  if (access === 'write') return budget;
  let readers = readersBudgets.get(budget);
  if (readers === undefined) {
    readers = readersBudgetOf(budget);
    readersBudgets.set(budget, readers);
  }
  return readers;
}
