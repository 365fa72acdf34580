import { hashApiKey, looksLikeApiKey } from '@vantageedge/shared/domain/api-key-hash';
import { LRUCache } from 'lru-cache';

/**
 * HMAC-SHA-256(pepper, key) of presented API keys, remembered per key (bounded LRU) so a client that
 * sends the same key on every request costs one HMAC, not one per request. Only the digest is cached:
 * the lookup in the tenant's key index (and the expiry check) still runs per request against the
 * snapshot in force, so a key revoked or expired takes effect with the next request.
 *
 * Only values shaped like our keys (`ve_live_` + 32 characters) are remembered, so memory stays bounded
 * by `maxEntries` × ~100 bytes whatever clients send; anything else is hashed every time.
 */
export class ApiKeyDigests {
  readonly #pepper: string;
  readonly #digests: LRUCache<string, string> | null;
  readonly #hash: typeof hashApiKey;

  constructor(pepper: string, maxEntries: number, hash: typeof hashApiKey = hashApiKey) {
    this.#pepper = pepper;
    this.#digests = maxEntries > 0 ? new LRUCache({ max: maxEntries }) : null;
    this.#hash = hash;
  }

  digest(key: string): string {
    const cache = this.#digests;
    if (cache === null) return this.#hash(this.#pepper, key);
    let digest = cache.get(key);
    if (digest === undefined) {
      digest = this.#hash(this.#pepper, key);
      if (looksLikeApiKey(key)) cache.set(key, digest);
    }
    return digest;
  }
}
