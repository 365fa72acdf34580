import { hashApiKey, looksLikeApiKey } from '@vantageedge/shared/domain/api-key-hash';
import { FairLru } from '../ratelimit/fair-lru.js';

/**
 * HMAC-SHA-256(pepper, key) of presented API keys, remembered per tenant and key so a client that
 * sends the same key on every request costs one HMAC, not one per request. Only the digest is cached:
 * the lookup in the tenant's key index (and the expiry check) still runs per request against the
 * snapshot in force, so a key revoked or expired takes effect with the next request.
 *
 * Tenants share the cache fairly (FairLru), and only a digest that named one of the tenant's keys is
 * remembered: clients sending endless made-up keys, or one tenant's clients churning through its own
 * keys, cost that tenant's entries, never make another tenant's keys hashed again. Memory stays
 * bounded by `maxEntries` × ~150 bytes whatever clients send.
 */
export class ApiKeyDigests {
  readonly #pepper: string;
  readonly #digests: FairLru<string> | null;
  readonly #hash: typeof hashApiKey;

  constructor(pepper: string, maxEntries: number, hash: typeof hashApiKey = hashApiKey) {
    this.#pepper = pepper;
    this.#digests = maxEntries > 0 ? new FairLru(maxEntries) : null;
    this.#hash = hash;
  }

  /** The entry of the tenant's key index (by digest) that `key` names, if any. */
  find<T>(tenantId: string, key: string, index: ReadonlyMap<string, T>): T | undefined {
    const remembered = this.#digests?.get(tenantId, key);
    if (remembered !== undefined) return index.get(remembered);
    const digest = this.#hash(this.#pepper, key);
    const entry = index.get(digest);
    if (entry !== undefined && looksLikeApiKey(key)) this.#digests?.set(tenantId, key, digest);
    return entry;
  }
}
