export interface TenantStoreSlotsOptions {
  /** Store calls of one tenant in flight at once (TENANT_STORE_CALLS). */
  maxCalls?: number | undefined;
  /** Bytes one tenant's calls in flight are expected to move together (TENANT_STORE_BYTES). */
  maxBytes?: number | undefined;
  /** What a tenant's first reads are charged: the largest record one store command moves. */
  unknownReadBytes?: number | undefined;
  /** Calls of one tenant waiting for a slot (TENANT_STORE_QUEUE). */
  maxQueued?: number | undefined;
}

export const TENANT_STORE_CALLS = 16;
/** Two of the largest entries (GATEWAY_CACHE_STORE_MAX_ENTRY_BYTES): a few ms of the connection. */
export const TENANT_STORE_BYTES = 4 * 1024 * 1024;
export const TENANT_STORE_QUEUE = 64;
const UNKNOWN_READ_BYTES = 2 * 1024 * 1024;

/** A call expected to move at least this much holds up the connection noticeably (a few ms). */
export const LARGE_CALL_BYTES = 256 * 1024;

/** Held while one store call is in flight: give it back with the bytes it moved when they are known. */
export interface StoreSlot {
  /**
   * The call is expected to move a large reply or write, or one was in flight when it was sent:
   * its timeout is the load of the connection, not a sign the store is down.
   */
  readonly withLargeCalls: boolean;
  release(movedBytes?: number): void;
}

interface TenantCalls {
  calls: number;
  bytes: number;
  recentReadBytes: number;
  readonly waiting: Array<{ readonly bytes: number | undefined; readonly admit: (slot: StoreSlot) => void }>;
}

/**
 * A tenant's share of the replica's connection to the shared store. Every cache command of every tenant
 * goes down one Redis connection, and a reply of a large entry holds up every command queued behind it:
 * a tenant reading many large entries at once would make everyone's commands time out and open the
 * store circuit, switching caching off for all tenants. So each tenant has at most `maxCalls` store
 * calls in flight on a replica, and at most `maxBytes` of replies or writes by what they are expected to
 * move. A write's size is known; a read's is not until it answers, so reads are charged the tenant's
 * recent read size: it rises at once to a large read and halves with each smaller one. A tenant never
 * read from is charged the largest entry the store moves, so a burst of large reads starts slow.
 * A call past the tenant's share waits in the tenant's queue (at most `maxQueued`), one past that is
 * refused: that tenant's lookup bypasses the cache, nobody else's.
 */
export class TenantStoreSlots {
  readonly #maxCalls: number;
  readonly #maxBytes: number;
  readonly #unknownReadBytes: number;
  readonly #maxQueued: number;
  readonly #tenants = new Map<string, TenantCalls>();
  /** Large calls of every tenant in flight. */
  #largeCalls = 0;

  constructor(options: TenantStoreSlotsOptions = {}) {
    this.#maxCalls = Math.max(1, options.maxCalls ?? TENANT_STORE_CALLS);
    this.#maxBytes = options.maxBytes ?? TENANT_STORE_BYTES;
    this.#unknownReadBytes = options.unknownReadBytes ?? UNKNOWN_READ_BYTES;
    this.#maxQueued = options.maxQueued ?? TENANT_STORE_QUEUE;
  }

  /**
   * A slot for one store call of the tenant: `bytes` for a write (its record), undefined for a read.
   * Synchronous when the tenant has room; a promise while it waits; null when its queue is full.
   */
  acquire(tenantId: string, bytes?: number): StoreSlot | Promise<StoreSlot> | null {
    const tenant = this.#tenant(tenantId);
    if (tenant.waiting.length === 0 && this.#fits(tenant, bytes)) return this.#admit(tenant, bytes);
    if (tenant.waiting.length >= this.#maxQueued) return null;
    return new Promise((admit) => tenant.waiting.push({ bytes, admit }));
  }

  /** A large call of any tenant is in flight: a command sent now waits behind its reply. */
  get largeCallsInFlight(): boolean {
    return this.#largeCalls > 0;
  }

  /** The tenant left the config: what is known of its reads goes (its calls in flight still release). */
  forget(tenantId: string): void {
    const tenant = this.#tenants.get(tenantId);
    if (tenant && tenant.calls === 0 && tenant.waiting.length === 0) this.#tenants.delete(tenantId);
  }

  #tenant(tenantId: string): TenantCalls {
    let tenant = this.#tenants.get(tenantId);
    if (!tenant) {
      tenant = { calls: 0, bytes: 0, recentReadBytes: this.#unknownReadBytes, waiting: [] };
      this.#tenants.set(tenantId, tenant);
    }
    return tenant;
  }

  #charge(tenant: TenantCalls, bytes: number | undefined): number {
    return bytes ?? tenant.recentReadBytes;
  }

  #fits(tenant: TenantCalls, bytes: number | undefined): boolean {
    if (tenant.calls === 0) return true;
    return tenant.calls < this.#maxCalls && tenant.bytes + this.#charge(tenant, bytes) <= this.#maxBytes;
  }

  #admit(tenant: TenantCalls, bytes: number | undefined): StoreSlot {
    const charged = this.#charge(tenant, bytes);
    const large = charged >= LARGE_CALL_BYTES;
    tenant.calls++;
    tenant.bytes += charged;
    if (large) this.#largeCalls++;
    let released = false;
    return {
      withLargeCalls: this.#largeCalls > 0,
      release: (movedBytes) => {
        if (released) return;
        released = true;
        tenant.calls--;
        tenant.bytes -= charged;
        if (large) this.#largeCalls--;
        if (bytes === undefined && movedBytes !== undefined)
          tenant.recentReadBytes = Math.max(movedBytes, tenant.recentReadBytes / 2);
        this.#admitWaiting(tenant);
      },
    };
  }

  #admitWaiting(tenant: TenantCalls): void {
    while (tenant.waiting.length > 0 && this.#fits(tenant, tenant.waiting[0]!.bytes)) {
      const next = tenant.waiting.shift()!;
      next.admit(this.#admit(tenant, next.bytes));
    }
  }
}
