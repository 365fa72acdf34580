import { type LookupAddress, type LookupOptions, lookup } from 'node:dns';
import { LastDnsAnswers } from './last-dns-answers.js';

export type ResolveCallback = (error: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void;
/** Every address of `hostname`, as dns.lookup with `all: true` gives them. */
export type Resolve = (hostname: string, options: LookupOptions, callback: ResolveCallback) => void;

export const resolveAtOnce: Resolve = (hostname, options, callback) =>
  lookup(hostname, { ...options, all: true }, callback);

/**
 * How many of libuv's threads (UV_THREADPOOL_SIZE, 4 unless set before the process started) origin
 * lookups may hold at once: all but two, which stay for the rest of the process's thread-pool work
 * (the access log's file writes, JWKS and other lookups, crypto).
 */
export function originLookupThreads(threadPoolSize = Number(process.env['UV_THREADPOOL_SIZE']) || 4): number {
  return Math.max(1, Math.min(threadPoolSize, 1024) - 2);
}

/** One who waits for a lookup, and the user of the tenant's lookups it asked for (see `scoped`). */
interface Waiter {
  readonly callback: ResolveCallback;
  readonly scope: object | undefined;
}

interface TenantLookups {
  /** A lookup of this tenant holds a thread. */
  running: boolean;
  /** In line for a thread (the ready queue). */
  queued: boolean;
  /** Lookups to start, in order, by their key in `answers`. */
  readonly waiting: Array<{ readonly key: string; readonly start: () => void }>;
  /** Who waits for each lookup running or waiting, by name and options: one lookup answers them all. */
  readonly answers: Map<string, Waiter[]>;
}

export interface TenantDnsLookupsOptions {
  /** Lookups of one tenant that may wait; past that one fails at once (EAI_AGAIN). */
  maxWaiting?: number;
  /** Lookups running at once, every tenant's together (default: originLookupThreads()). */
  maxRunning?: number;
  resolve?: Resolve;
  /** How long a name's last answer stands in for lookups that fail (EAI_AGAIN) or are slow (default: an hour). */
  staleMs?: number;
  /** How long a lookup of a name answered before may take until its last answer is used (default: 1 s). */
  staleAfterMs?: number;
  now?: () => number;
}

/** Kong's `dns_stale_ttl`. */
const DEFAULT_STALE_MS = 3_600_000;
const DEFAULT_STALE_AFTER_MS = 1_000;
/**
 * Names answered within the last `staleMs`: every tenant's together, and of one tenant (its default
 * TENANT_MAX_TARGETS of 1,000 names, looked up with a few sets of options). At most 16 addresses each
 * (≈ 2 KB), so a few hundred megabytes at worst.
 */
const LAST_ANSWERS_BOUNDS = { maxAnswers: 100_000, maxAnswersPerOwner: 4_096, maxAddresses: 16 } as const;

/**
 * A replica's DNS lookups for origins. A lookup is a getaddrinfo call on libuv's thread pool, which
 * nothing can cancel: a name whose name server never answers holds a thread for the resolver's whole
 * timeout. So a tenant runs one lookup at a time (its names that never resolve hold one thread, not the
 * pool), origin lookups together hold at most `maxRunning` threads (the rest of the process keeps two),
 * and tenants take turns for them: when a lookup ends, the tenant that has waited longest starts its
 * next one, and the tenant whose lookup ended goes to the back of the line. Lookups of the same name
 * wait for one answer (a burst of new connections to a target is one lookup).
 *
 * A name the tenant resolved before is answered with its last addresses (for `staleMs`) when its lookup
 * fails with EAI_AGAIN (the name servers failed or did not answer, or too many lookups wait) or has not
 * answered after `staleAfterMs`; the lookup goes on, and what it answers is the next last answer. A
 * name that no longer exists (ENOTFOUND) fails. Whatever the answer, the connector's address policy
 * checks it.
 */
export class TenantDnsLookups {
  readonly #tenants = new Map<string, TenantLookups>();
  /** Tenants with a lookup to start, in the order they began to wait for a thread. */
  readonly #ready: TenantLookups[] = [];
  #running = 0;
  readonly #maxWaiting: number;
  readonly #maxRunning: number;
  readonly #lookup: Resolve;
  readonly #lastAnswers: LastDnsAnswers;
  readonly #staleAfterMs: number;

  constructor({
    maxWaiting = 256,
    maxRunning = originLookupThreads(),
    resolve = resolveAtOnce,
    staleMs = DEFAULT_STALE_MS,
    staleAfterMs = DEFAULT_STALE_AFTER_MS,
    now = () => performance.now(),
  }: TenantDnsLookupsOptions = {}) {
    this.#maxWaiting = maxWaiting;
    this.#maxRunning = Math.max(1, maxRunning);
    this.#lookup = resolve;
    this.#lastAnswers = new LastDnsAnswers({ ...LAST_ANSWERS_BOUNDS, staleMs }, now);
    this.#staleAfterMs = staleAfterMs;
  }

  forTenant(tenantId: string): Resolve {
    return (hostname, options, callback) => this.#resolve(tenantId, hostname, options, callback, undefined);
  }

  /**
   * The tenant's lookups for one user of them (an upstream set), and `release` for when it closes: its
   * lookups that have not started and that no one else waits for leave the line, failed with EAI_AGAIN.
   * Otherwise a closed set's names that never resolve (its origin changed, its tenant deleted) each held
   * a thread for the resolver's whole timeout when their turn came, up to `maxWaiting` of them, and the
   * tenant's new names waited behind them.
   */
  scoped(tenantId: string): { resolve: Resolve; release: () => void } {
    const scope = {};
    return {
      resolve: (hostname, options, callback) => this.#resolve(tenantId, hostname, options, callback, scope),
      release: () => this.#release(tenantId, scope),
    };
  }

  #resolve(
    tenantId: string,
    hostname: string,
    options: LookupOptions,
    asked: ResolveCallback,
    scope: object | undefined,
  ): void {
    let tenant = this.#tenants.get(tenantId);
    if (tenant === undefined) {
      tenant = { running: false, queued: false, waiting: [], answers: new Map() };
      this.#tenants.set(tenantId, tenant);
    }
    const key = `${hostname}\u0000${options.family ?? 0}\u0000${options.hints ?? 0}\u0000${options.order ?? options.verbatim ?? ''}`;
    const waiter: Waiter = { callback: this.#lastAnswerWhenSlow(tenantId, key, asked), scope };
    const joined = tenant.answers.get(key);
    if (joined !== undefined) {
      joined.push(waiter);
      return;
    }
    if (tenant.waiting.length >= this.#maxWaiting) {
      const error: NodeJS.ErrnoException = new Error(`too many DNS lookups of this tenant wait: ${hostname}`);
      error.code = 'EAI_AGAIN';
      queueMicrotask(() => this.#answer(tenantId, key, error, [], [waiter]));
      return;
    }
    const owner = tenant;
    owner.answers.set(key, [waiter]);
    owner.waiting.push({
      key,
      start: () =>
        this.#lookup(hostname, options, (error, addresses) => {
          const waiters = owner.answers.get(key) ?? [];
          owner.answers.delete(key);
          this.#finished(tenantId, owner);
          if (error === null) this.#lastAnswers.remember(tenantId, key, addresses);
          this.#answer(tenantId, key, error, addresses, waiters);
        }),
    });
    if (!owner.running && !owner.queued) this.#enqueue(owner);
    this.#startReady();
  }

  /** A lookup's answer, or the name's last one when the name servers failed (EAI_AGAIN). */
  #answer(
    tenantId: string,
    key: string,
    error: NodeJS.ErrnoException | null,
    addresses: LookupAddress[],
    waiters: readonly Waiter[],
  ): void {
    const last = error?.code === 'EAI_AGAIN' ? this.#lastAnswers.last(tenantId, key) : undefined;
    for (const { callback } of waiters) {
      if (last === undefined) callback(error, addresses);
      else callback(null, last);
    }
  }

  /** `callback`, answered with the name's last addresses if the lookup has not answered in time. */
  #lastAnswerWhenSlow(tenantId: string, key: string, callback: ResolveCallback): ResolveCallback {
    if (this.#lastAnswers.last(tenantId, key) === undefined) return callback;
    let pending = true;
    const timer = setTimeout(() => {
      const last = this.#lastAnswers.last(tenantId, key);
      if (last === undefined) return;
      pending = false;
      callback(null, last);
    }, this.#staleAfterMs);
    timer.unref();
    return (error, addresses) => {
      if (!pending) return;
      pending = false;
      clearTimeout(timer);
      callback(error, addresses);
    };
  }

  #enqueue(tenant: TenantLookups): void {
    tenant.queued = true;
    this.#ready.push(tenant);
  }

  #startReady(): void {
    while (this.#running < this.#maxRunning) {
      const tenant = this.#ready.shift();
      if (tenant === undefined) return;
      tenant.queued = false;
      const next = tenant.waiting.shift();
      if (next === undefined) continue;
      tenant.running = true;
      this.#running++;
      next.start();
    }
  }

  /**
   * Lookups of `tenantId` that have not started are no longer wanted (what they were for is gone): they
   * leave the line, failed with EAI_AGAIN, and hold no thread later. One already running goes on.
   */
  forget(tenantId: string): void {
    const tenant = this.#tenants.get(tenantId);
    if (tenant === undefined) return;
    const dropped = tenant.waiting.splice(0);
    if (!tenant.running) this.#tenants.delete(tenantId);
    for (const { key } of dropped) {
      const waiters = tenant.answers.get(key) ?? [];
      tenant.answers.delete(key);
      for (const { callback } of waiters) queueMicrotask(() => callback(noLongerWanted(), []));
    }
  }

  #release(tenantId: string, scope: object): void {
    const tenant = this.#tenants.get(tenantId);
    if (tenant === undefined) return;
    const dropped: Waiter[] = [];
    for (let i = tenant.waiting.length - 1; i >= 0; i--) {
      const { key } = tenant.waiting[i]!;
      const waiters = tenant.answers.get(key) ?? [];
      const others = waiters.filter((waiter) => waiter.scope !== scope);
      if (others.length === waiters.length) continue;
      dropped.push(...waiters.filter((waiter) => waiter.scope === scope));
      if (others.length > 0) {
        tenant.answers.set(key, others);
        continue;
      }
      tenant.answers.delete(key);
      tenant.waiting.splice(i, 1);
    }
    if (!tenant.running && !tenant.queued && tenant.answers.size === 0) this.#tenants.delete(tenantId);
    for (const { callback } of dropped) queueMicrotask(() => callback(noLongerWanted(), []));
  }

  #finished(tenantId: string, tenant: TenantLookups): void {
    tenant.running = false;
    this.#running--;
    if (tenant.waiting.length > 0) this.#enqueue(tenant);
    this.#startReady();
    const idle = !tenant.running && !tenant.queued && tenant.answers.size === 0;
    // A forgotten tenant's entry may already have been replaced by one of its next lookups.
    if (idle && this.#tenants.get(tenantId) === tenant) this.#tenants.delete(tenantId);
  }
}

function noLongerWanted(): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error('the lookup is no longer wanted');
  error.code = 'EAI_AGAIN';
  return error;
}

/** The process's lookups: every upstream set of every tenant of this replica shares them. */
export const tenantDnsLookups = new TenantDnsLookups();
