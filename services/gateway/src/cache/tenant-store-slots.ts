export interface TenantStoreSlotsOptions {
  /** Store calls of one tenant in flight at once (TENANT_STORE_CALLS). */
  maxCalls?: number | undefined;
  /** Bytes one tenant's calls in flight are expected to move together (TENANT_STORE_BYTES). */
  maxBytes?: number | undefined;
  /** What a tenant's first reads are charged: the largest record one store command moves. */
  unknownReadBytes?: number | undefined;
  /** Calls of one tenant waiting for a slot (TENANT_STORE_QUEUE). */
  maxQueued?: number | undefined;
  /** Bytes the calls of every tenant in flight are expected to move together (STORE_BYTES_IN_FLIGHT). */
  maxBytesInFlight?: number | undefined;
  /** Store calls of every tenant in flight at once (STORE_CALLS_IN_FLIGHT). */
  maxCallsInFlight?: number | undefined;
}

export const TENANT_STORE_CALLS = 16;
/** Two of the largest entries (GATEWAY_CACHE_STORE_MAX_ENTRY_BYTES): a few ms of the connection. */
export const TENANT_STORE_BYTES = 4 * 1024 * 1024;
export const TENANT_STORE_QUEUE = 64;
/**
 * Two tenants' bytes: about 27 ms of one Redis connection (which moves ~1.9 MB in 6 ms), half the
 * default command timeout (REDIS_COMMAND_TIMEOUT_MS, 50 ms), so a command sent behind every reply in
 * flight still answers in time.
 */
export const STORE_BYTES_IN_FLIGHT = 2 * TENANT_STORE_BYTES;
/** Sixteen tenants' calls: small commands cost the connection little, this only bounds the pipeline. */
export const STORE_CALLS_IN_FLIGHT = 16 * TENANT_STORE_CALLS;
const UNKNOWN_READ_BYTES = 2 * 1024 * 1024;
/** The weight of one read in the replica's average read size: about the last eight reads count. */
const AVERAGE_READ_WEIGHT = 1 / 8;

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

interface Waiting {
  readonly bytes: number | undefined;
  readonly admit: (slot: StoreSlot) => void;
}

interface TenantCalls {
  readonly id: string;
  calls: number;
  bytes: number;
  /** What the tenant's reads are charged; undefined until one of them answered. */
  recentReadBytes: number | undefined;
  readonly waiting: Waiting[];
  /** The replica's queue the tenant's first waiting call is in, while it waits for the replica's room. */
  queuedIn: Set<TenantCalls> | null;
  /** Counted in the tenants sharing the replica's bound (calls in flight or waiting). */
  sharing: boolean;
  /** The tenant left the config with calls in flight or waiting: it goes when the last one ends. */
  forgotten: boolean;
}

/**
 * A tenant's share of the replica's connection to the shared store. Every cache command of every tenant
 * goes down one Redis connection, and a reply of a large entry holds up every command queued behind it:
 * a tenant reading many large entries at once would make everyone's commands time out and open the
 * store circuit, switching caching off for all tenants. So each tenant has at most `maxCalls` store
 * calls in flight on a replica, and at most `maxBytes` of replies or writes by what they are expected to
 * move. A write's size is known; a read's is not until it answers, so reads are charged the tenant's
 * recent read size: it rises at once to a large read and halves with each smaller one. A tenant never
 * read from is charged the replica's average read size (at most the largest entry the store moves): its
 * own rises at its first large read, so a new tenant's first reads are not all charged the largest entry.
 * A call past the tenant's share waits in the tenant's queue (at most `maxQueued`), one past that is
 * refused: that tenant's lookup bypasses the cache, nobody else's.
 *
 * Many tenants together are held to `maxBytesInFlight` and `maxCallsInFlight`, shared fairly: the fair
 * part of a tenant is the bound divided among the tenants with calls in flight or waiting. A tenant with
 * nothing in flight, or below its fair part, takes any room there is; its calls that find none wait in
 * turn, before those of tenants at or over their fair part, which take room only when nobody waits for it.
 */
export class TenantStoreSlots {
  readonly #maxCalls: number;
  readonly #maxBytes: number;
  readonly #unknownReadBytes: number;
  readonly #maxQueued: number;
  readonly #maxBytesInFlight: number;
  readonly #maxCallsInFlight: number;
  readonly #tenants = new Map<string, TenantCalls>();
  /** Tenants waiting for the replica's room while below their fair part, in turn. */
  readonly #waitingBelowFairPart = new Set<TenantCalls>();
  /** Tenants waiting for the replica's room at or over their fair part, in turn. */
  readonly #waitingAtFairPart = new Set<TenantCalls>();
  #sharingTenants = 0;
  #callsInFlight = 0;
  #bytesInFlight = 0;
  #averageReadBytes: number;
  /** Large calls of every tenant in flight. */
  #largeCalls = 0;

  constructor(options: TenantStoreSlotsOptions = {}) {
    this.#maxCalls = Math.max(1, options.maxCalls ?? TENANT_STORE_CALLS);
    this.#maxBytes = options.maxBytes ?? TENANT_STORE_BYTES;
    this.#unknownReadBytes = options.unknownReadBytes ?? UNKNOWN_READ_BYTES;
    this.#maxQueued = options.maxQueued ?? TENANT_STORE_QUEUE;
    this.#maxBytesInFlight = options.maxBytesInFlight ?? STORE_BYTES_IN_FLIGHT;
    this.#maxCallsInFlight = Math.max(1, options.maxCallsInFlight ?? STORE_CALLS_IN_FLIGHT);
    this.#averageReadBytes = this.#unknownReadBytes;
  }

  /**
   * A slot for one store call of the tenant: `bytes` for a write (its record), undefined for a read.
   * Synchronous when the tenant and the replica have room; a promise while it waits; null when the
   * tenant's queue is full.
   */
  acquire(tenantId: string, bytes?: number): StoreSlot | Promise<StoreSlot> | null {
    const tenant = this.#tenant(tenantId);
    if (tenant.waiting.length === 0 && this.#fitsTenant(tenant, bytes)) {
      const belowFairPart = this.#isBelowFairPart(tenant);
      const othersWaiting = this.#waitingBelowFairPart.size > 0 || this.#waitingAtFairPart.size > 0;
      if (this.#fitsReplica(this.#charge(tenant, bytes)) && (belowFairPart || !othersWaiting)) {
        return this.#admit(tenant, bytes);
      }
    }
    if (tenant.waiting.length >= this.#maxQueued) return null;
    return new Promise((admit) => {
      tenant.waiting.push({ bytes, admit });
      this.#updateSharing(tenant);
      this.#queueForReplica(tenant);
    });
  }

  /** A large call of any tenant is in flight: a command sent now waits behind its reply. */
  get largeCallsInFlight(): boolean {
    return this.#largeCalls > 0;
  }

  /** The tenant left the config: what is known of its reads goes (its calls in flight still release). */
  forget(tenantId: string): void {
    const tenant = this.#tenants.get(tenantId);
    if (!tenant) return;
    if (tenant.calls === 0 && tenant.waiting.length === 0) this.#tenants.delete(tenantId);
    else tenant.forgotten = true;
  }

  #tenant(tenantId: string): TenantCalls {
    let tenant = this.#tenants.get(tenantId);
    if (tenant) tenant.forgotten = false;
    else {
      tenant = {
        id: tenantId,
        calls: 0,
        bytes: 0,
        recentReadBytes: undefined,
        waiting: [],
        queuedIn: null,
        sharing: false,
        forgotten: false,
      };
      this.#tenants.set(tenantId, tenant);
    }
    return tenant;
  }

  #charge(tenant: TenantCalls, bytes: number | undefined): number {
    // Whole bytes (the averages and halved read sizes are fractions): fractions added to and taken from
    // the bytes in flight leave a residue, and a call exactly filling the bound would then wait.
    const charged =
      bytes ?? tenant.recentReadBytes ?? Math.min(this.#averageReadBytes, this.#unknownReadBytes);
    return Math.round(charged);
  }

  #fitsTenant(tenant: TenantCalls, bytes: number | undefined): boolean {
    if (tenant.calls === 0) return true;
    return tenant.calls < this.#maxCalls && tenant.bytes + this.#charge(tenant, bytes) <= this.#maxBytes;
  }

  /** A call alone always fits, or nothing would ever be admitted with a bound below the largest entry. */
  #fitsReplica(charged: number): boolean {
    if (this.#callsInFlight === 0) return true;
    return (
      this.#callsInFlight < this.#maxCallsInFlight && this.#bytesInFlight + charged <= this.#maxBytesInFlight
    );
  }

  #isBelowFairPart(tenant: TenantCalls): boolean {
    if (tenant.calls === 0) return true;
    const sharing = this.#sharingTenants + (tenant.sharing ? 0 : 1);
    return tenant.bytes < this.#maxBytesInFlight / sharing && tenant.calls < this.#maxCallsInFlight / sharing;
  }

  #updateSharing(tenant: TenantCalls): void {
    const sharing = tenant.calls > 0 || tenant.waiting.length > 0;
    if (sharing === tenant.sharing) return;
    tenant.sharing = sharing;
    this.#sharingTenants += sharing ? 1 : -1;
  }

  /** Puts the tenant in turn for the replica's room, unless its first waiting call waits for its own share. */
  #queueForReplica(tenant: TenantCalls): void {
    if (tenant.queuedIn !== null || tenant.waiting.length === 0) return;
    if (!this.#fitsTenant(tenant, tenant.waiting[0]!.bytes)) return;
    tenant.queuedIn = this.#isBelowFairPart(tenant) ? this.#waitingBelowFairPart : this.#waitingAtFairPart;
    tenant.queuedIn.add(tenant);
  }

  #admit(tenant: TenantCalls, bytes: number | undefined): StoreSlot {
    const charged = this.#charge(tenant, bytes);
    const large = charged >= LARGE_CALL_BYTES;
    tenant.calls++;
    tenant.bytes += charged;
    this.#callsInFlight++;
    this.#bytesInFlight += charged;
    this.#updateSharing(tenant);
    if (large) this.#largeCalls++;
    let released = false;
    return {
      withLargeCalls: this.#largeCalls > 0,
      release: (movedBytes) => {
        if (released) return;
        released = true;
        tenant.calls--;
        tenant.bytes -= charged;
        this.#callsInFlight--;
        this.#bytesInFlight -= charged;
        this.#updateSharing(tenant);
        if (large) this.#largeCalls--;
        if (bytes === undefined && movedBytes !== undefined) this.#recordRead(tenant, movedBytes);
        this.#queueForReplica(tenant);
        this.#admitWaiting();
        if (tenant.forgotten) this.forget(tenant.id);
      },
    };
  }

  #recordRead(tenant: TenantCalls, movedBytes: number): void {
    tenant.recentReadBytes = Math.max(movedBytes, (tenant.recentReadBytes ?? 0) / 2);
    this.#averageReadBytes += (movedBytes - this.#averageReadBytes) * AVERAGE_READ_WEIGHT;
  }

  /**
   * Admits waiting calls in turn while the replica has room: tenants below their fair part first. A
   * tenant gets one call per turn, then goes to the back of the queue its next call belongs in.
   */
  #admitWaiting(): void {
    for (;;) {
      const queue =
        this.#waitingBelowFairPart.size > 0 ? this.#waitingBelowFairPart : this.#waitingAtFairPart;
      const tenant: TenantCalls | undefined = queue.values().next().value;
      if (tenant === undefined) return;
      const next = tenant.waiting[0]!;
      if (this.#fitsTenant(tenant, next.bytes)) {
        if (!this.#fitsReplica(this.#charge(tenant, next.bytes))) return;
        tenant.waiting.shift();
        next.admit(this.#admit(tenant, next.bytes));
      }
      // Admitted, or waiting for its own share (its recent read size rose; its own release queues it again).
      queue.delete(tenant);
      tenant.queuedIn = null;
      this.#queueForReplica(tenant);
    }
  }
}
