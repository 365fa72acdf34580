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

/** What one entry costs beyond its strings (map slot, objects, the scopes array). */
const ENTRY_OVERHEAD_BYTES = 256;

/**
 * Verified tokens by their full text, each kept until its own `exp`: RS256 verification costs far
 * more than a proxied request, and a client reuses its token for many requests. Bounded (LRU) in
 * entries and in bytes: a tenant whose identity provider mints large tokens (a long `sub`, hundreds of
 * scopes) would otherwise fill a replica's memory with them. Failures are not cached.
 */
export class TokenCache {
  readonly #cache: LRUCache<string, CachedToken> | null;

  constructor(maxEntries: number, maxBytes = 32 * 1024 * 1024) {
    this.#cache =
      maxEntries > 0 && maxBytes > 0
        ? new LRUCache({
            max: maxEntries,
            maxSize: maxBytes,
            sizeCalculation: entryBytes,
            ttlAutopurge: false,
          })
        : null;
  }

  get(token: string): CachedToken | undefined {
    return this.#cache?.get(token);
  }

  set(token: string, entry: CachedToken, expiresAtSeconds: number): void {
    const ttl = expiresAtSeconds * 1000 - Date.now();
    if (this.#cache === null || ttl <= 0) return;
    this.#cache.set(token, entry, { ttl });
  }

  /** The bytes the kept entries are counted at. */
  get bytes(): number {
    return this.#cache?.calculatedSize ?? 0;
  }
}

function entryBytes(entry: CachedToken, token: string): number {
  const { identity } = entry;
  let bytes = ENTRY_OVERHEAD_BYTES + token.length + entry.verifiedBy.length;
  for (const text of [identity.userId, identity.orgId, identity.apiKeyId, identity.serviceId])
    bytes += text?.length ?? 0;
  for (const scope of identity.scopes) bytes += scope.length + 16;
  return bytes;
}
