import type { Counter } from 'prom-client';
import {
  isCommandTimeout,
  type StoreCircuit,
  storeFailureReason,
  UncountedStoreFailure,
} from '../store-circuit/store-circuit.js';
import type { StoreCircuits } from '../store-circuit/store-circuits.js';
import { type CacheEntry, type CacheRecord, recordSize } from './cache-entry.js';
import type { CacheStore } from './cache-store.js';
import type { TenantStoreSlots } from './tenant-store-slots.js';

/**
 * Store commands timing out one after another, none answered between them, that may be the load of
 * large replies on the connection rather than a store gone: past them, timeouts open the circuit.
 */
const UNCOUNTED_TIMEOUTS_MAX = 32;

export interface SharedStoreCallsOptions {
  shared: CacheStore;
  circuits: StoreCircuits;
  storeSlots: TenantStoreSlots;
  storeErrors: Counter<'reason'>;
  /** Whether the tenant is still served here (a write is not sent for a tenant that left). */
  serves: (tenantId: string) => boolean;
}

/** What a read of the shared store gave: a record or nothing, or no answer (`unavailable`, `busy`). */
export type SharedRead = CacheRecord | null | 'unavailable' | 'busy';

/** The cache's calls to the shared store, through each node's circuit and each tenant's store slots. */
export interface SharedStoreCalls {
  callShared<T>(tenantId: string, withLargeCalls: boolean, call: () => Promise<T>): Promise<T>;
  readShared(tenantId: string, key: string): Promise<SharedRead>;
  putShared(tenantId: string, write: () => Promise<unknown>): Promise<unknown>;
  writeShared<T>(
    tenantId: string,
    entry: CacheEntry,
    write: () => Promise<T>,
  ): Promise<T | 'tenant_busy' | 'tenant_removed' | undefined>;
}

export function isRecord(stored: SharedRead): stored is CacheRecord | null {
  return stored !== 'unavailable' && stored !== 'busy';
}

export function createSharedStoreCalls(options: SharedStoreCallsOptions): SharedStoreCalls {
  const { shared, circuits, storeSlots, storeErrors, serves } = options;
  // Per circuit, so per node: each node's connection carries its own large replies.
  const timeoutsSinceAnswer = new WeakMap<StoreCircuit, number>();

  /**
   * A store call through the circuit (`withLargeCalls`: a large call was in flight when it was sent, or
   * it is one, see StoreSlot). A command that timed out while large replies held
   * up the connection fails alone: it does not count towards opening the circuit the lookups of every
   * tenant on that node go through (unless the circuit is already on trial). A node that stopped
   * answering altogether still opens it: past UNCOUNTED_TIMEOUTS_MAX timeouts with no answer between them.
   */
  const callShared = <T>(tenantId: string, withLargeCalls: boolean, call: () => Promise<T>): Promise<T> => {
    const circuit = circuits.of(tenantId);
    return circuit.run(async () => {
      try {
        const answer = await call();
        timeoutsSinceAnswer.set(circuit, 0);
        return answer;
      } catch (error) {
        if (!isCommandTimeout(error)) throw error;
        const timeouts = (timeoutsSinceAnswer.get(circuit) ?? 0) + 1;
        timeoutsSinceAnswer.set(circuit, timeouts);
        const loadNotOutage = timeouts <= UNCOUNTED_TIMEOUTS_MAX && !circuit.degraded;
        if (withLargeCalls && loadNotOutage) throw new UncountedStoreFailure(error);
        throw error;
      }
    });
  };

  /**
   * The tenant's record under `key` from the store, within the tenant's share of the replica's store
   * calls: `busy` when the tenant has too many waiting already (only its own lookups bypass).
   */
  const readShared = async (tenantId: string, key: string): Promise<SharedRead> => {
    if (circuits.of(tenantId).skipping) {
      storeErrors.labels({ reason: 'circuit_open' }).inc();
      return 'unavailable';
    }
    const slot = await storeSlots.acquire(tenantId);
    if (slot === null) {
      storeErrors.labels({ reason: 'tenant_busy' }).inc();
      return 'busy';
    }
    // Unknown for a failed read: what the tenant's reads were expected to move stays as it was.
    let moved: number | undefined;
    try {
      const record = await callShared(tenantId, slot.withLargeCalls, () => shared.get(key));
      moved = record === null ? 0 : recordSize(record);
      return record;
    } catch (error) {
      storeErrors.labels({ reason: storeFailureReason(error) }).inc();
      return 'unavailable';
    } finally {
      slot.release(moved);
    }
  };

  const putShared = async (tenantId: string, write: () => Promise<unknown>): Promise<unknown> => {
    try {
      return await circuits.of(tenantId).run(write);
    } catch (error) {
      storeErrors.labels({ reason: storeFailureReason(error) }).inc();
      return undefined;
    }
  };

  /**
   * A write of the tenant's `entry` within the tenant's share of the replica's store calls (its size is
   * known): `tenant_busy`, not written, when the tenant has too many calls waiting already;
   * `tenant_removed`, not written, when the tenant left this replica's config while the write waited.
   */
  const writeShared = async <T>(
    tenantId: string,
    entry: CacheEntry,
    write: () => Promise<T>,
  ): Promise<T | 'tenant_busy' | 'tenant_removed' | undefined> => {
    const slot = await storeSlots.acquire(tenantId, recordSize(entry));
    if (slot === null) return 'tenant_busy';
    try {
      // Checked as the write is sent: one behind the replica's forget of a removed tenant would write
      // its accounting back (tenantRemoved).
      return await callShared<T | 'tenant_removed'>(tenantId, slot.withLargeCalls, () =>
        serves(tenantId) ? write() : Promise.resolve('tenant_removed'),
      );
    } catch (error) {
      storeErrors.labels({ reason: storeFailureReason(error) }).inc();
      return undefined;
    } finally {
      slot.release();
    }
  };

  return { callShared, readShared, putShared, writeShared };
}
