import { type LookupAddress, type LookupOptions, lookup } from 'node:dns';

export type ResolveCallback = (error: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void;
/** Every address of `hostname`, as dns.lookup with `all: true` gives them. */
export type Resolve = (hostname: string, options: LookupOptions, callback: ResolveCallback) => void;

export const resolveAtOnce: Resolve = (hostname, options, callback) =>
  lookup(hostname, { ...options, all: true }, callback);

interface TenantLookups {
  running: boolean;
  /** Lookups to start, in order, once the running one has finished. */
  readonly waiting: Array<() => void>;
  /** Who waits for each lookup running or waiting, by name and options: one lookup answers them all. */
  readonly answers: Map<string, ResolveCallback[]>;
}

/**
 * A replica's DNS lookups for origins, one tenant's at a time. A lookup is a getaddrinfo call on
 * libuv's thread pool (UV_THREADPOOL_SIZE, 4 threads), which nothing can cancel: a name whose name
 * server never answers holds a thread for the resolver's whole timeout, and a tenant with many such
 * names held them all (every other tenant's lookups waited). One running lookup per tenant keeps it to
 * one thread. Its other lookups wait, at most `maxWaiting` (past that one fails at once, EAI_AGAIN);
 * lookups of the same name wait for one answer (a burst of new connections to a target is one lookup).
 */
export class TenantDnsLookups {
  readonly #tenants = new Map<string, TenantLookups>();

  constructor(private readonly maxWaiting = 256) {}

  forTenant(tenantId: string): Resolve {
    return (hostname, options, callback) => this.#resolve(tenantId, hostname, options, callback);
  }

  #resolve(tenantId: string, hostname: string, options: LookupOptions, callback: ResolveCallback): void {
    let tenant = this.#tenants.get(tenantId);
    if (tenant === undefined) {
      tenant = { running: false, waiting: [], answers: new Map() };
      this.#tenants.set(tenantId, tenant);
    }
    const key = `${hostname}\u0000${options.family ?? 0}\u0000${options.hints ?? 0}\u0000${options.order ?? options.verbatim ?? ''}`;
    const joined = tenant.answers.get(key);
    if (joined !== undefined) {
      joined.push(callback);
      return;
    }
    if (tenant.waiting.length >= this.maxWaiting) {
      const error: NodeJS.ErrnoException = new Error(`too many DNS lookups of this tenant wait: ${hostname}`);
      error.code = 'EAI_AGAIN';
      queueMicrotask(() => callback(error, []));
      return;
    }
    tenant.answers.set(key, [callback]);
    const start = () =>
      resolveAtOnce(hostname, options, (error, addresses) => {
        const callbacks = tenant.answers.get(key) ?? [];
        tenant.answers.delete(key);
        this.#next(tenantId, tenant);
        for (const waiting of callbacks) waiting(error, addresses);
      });
    if (tenant.running) {
      tenant.waiting.push(start);
      return;
    }
    tenant.running = true;
    start();
  }

  #next(tenantId: string, tenant: TenantLookups): void {
    const next = tenant.waiting.shift();
    if (next !== undefined) {
      next();
      return;
    }
    tenant.running = false;
    if (tenant.answers.size === 0) this.#tenants.delete(tenantId);
  }
}

/** The process's lookups: every upstream set of every tenant of this replica shares them. */
export const tenantDnsLookups = new TenantDnsLookups();
