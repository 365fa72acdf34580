import { LRUCache } from 'lru-cache';
import type { Identity } from './identity.js';

export interface CachedToken {
  readonly identity: Identity;
  /**
   * What verified it: "clerk" (valid for any tenant; the org is checked per route), or
   * "oidc|service:<tenant id>:<version>" (valid only for that tenant's snapshot, so a key rotation in a
   * new snapshot takes effect at once).
   */
  readonly verifiedBy: string;
}

/**
 * Verified tokens by their full text, each kept until its own `exp`: RS256 verification costs far
 * more than a proxied request, and a client reuses its token for many requests. Bounded (LRU).
 * Failures are not cached.
 */
export class TokenCache {
  readonly #cache: LRUCache<string, CachedToken> | null;

  constructor(maxEntries: number) {
    this.#cache = maxEntries > 0 ? new LRUCache({ max: maxEntries, ttlAutopurge: false }) : null;
  }

  get(token: string): CachedToken | undefined {
    return this.#cache?.get(token);
  }

  set(token: string, entry: CachedToken, expiresAtSeconds: number): void {
    const ttl = expiresAtSeconds * 1000 - Date.now();
    if (this.#cache === null || ttl <= 0) return;
    this.#cache.set(token, entry, { ttl });
  }
}
