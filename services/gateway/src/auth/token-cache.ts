import { ownCopy, SHORTEST_VIEW } from '@vantageedge/shared/text/own-copy';
import type { AuthFailure, Identity } from './identity.js';
import type { VerifyingKeySet } from './jwks.js';

/** A token as verified for a tenant: accepted with its identity, or refused whatever the route. */
export type CachedToken = AcceptedToken | RefusedToken;

interface VerifiedBy {
  /**
   * What verified it: "clerk" or "clerk:<tenant's org id>" (Clerk's keys, its org's permissions counted
   * as that org's tenant had it; the org or user list is checked per route), or
   * "oidc|service:<tenant id>:<digest>" (the tenant's settings that judged it, VerificationTags: a
   * snapshot changing them has the token checked again). Either way the entry is found only under the
   * tenant it was verified for.
   */
  readonly verifiedBy: string;
}

export interface AcceptedToken extends VerifiedBy {
  readonly identity: Identity;
  /** When the token stops being accepted: its `exp` plus the clock skew its issuer's verification allows. */
  readonly expiresAtMs: number;
  /**
   * The remote key set that verified it (Clerk's JWKS, the tenant's OIDC jwks_url), its withdrawals
   * then and the token's key: once the set withdraws a key, the token is verified again. None for keys a
   * snapshot or the replica's settings hold (service accounts, CLERK_JWT_KEY), which change only with them.
   */
  readonly keySet?: VerifyingKeySet | undefined;
  /** The service account's key that verified a service token (CompiledServiceAccount.keyDigest). */
  readonly serviceKey?: string | undefined;
  /**
   * A Clerk session token's `azp` (the origin of the page it was minted for), checked against the
   * route's authorized parties each time it is presented: they change with the tenant's settings.
   */
  readonly authorizedParty?: string | undefined;
}

/**
 * A token whose signature holds but which is no user's session (a Clerk JWT template's, a pending
 * session's): presented again, it is refused without another signature check.
 */
export interface RefusedToken extends VerifiedBy {
  readonly refusal: AuthFailure;
  readonly identity?: never;
}

/**
 * The part of the cache's bytes, and of its entries, one tenant's tokens may hold together: a quarter
 * (GATEWAY_TOKEN_CACHE_TENANT_SHARE). A tenant controls its own signing keys and can mint any number
 * of valid tokens; past its share, its own least recently used tokens go, not the other tenants'.
 */
export const TENANT_TOKEN_CACHE_SHARE = 0.25;

/** What one entry costs beyond its strings (map slot, objects, the scopes array). */
const ENTRY_OVERHEAD_BYTES = 256;

/**
 * Tokens longer than this are found by their length and last TOKEN_TAIL_CHARS characters. A map
 * lookup hashes its key, and the token arrives as a new string with every request: hashing the
 * whole of a 12 KB token cost more than the rest of the lookup, comparing it with the one kept ~1%.
 */
const WHOLE_TOKEN_KEY_CHARS = 128;
/** A JWT ends with its signature: tokens whose tails are equal are one token or a forgery of one. */
const TOKEN_TAIL_CHARS = 64;

/**
 * Where a token is kept in its tenant's map. Two tokens with the same key are told apart by their
 * whole text; the one set last is kept.
 */
function tokenKey(token: string): string {
  return token.length <= WHOLE_TOKEN_KEY_CHARS ? token : `${token.length}:${token.slice(-TOKEN_TAIL_CHARS)}`;
}

/** One cached token, in two recency lists: the replica's (all tenants) and its tenant's. */
class Slot {
  newer: Slot | null = null;
  older: Slot | null = null;
  tenantNewer: Slot | null = null;
  tenantOlder: Slot | null = null;

  constructor(
    readonly tenant: TenantTokens,
    readonly key: string,
    readonly token: string,
    public entry: CachedToken,
    public expiresAtMs: number,
    public bytes: number,
  ) {}
}

/** One tenant's cached tokens by their key (tokenKey), and their recency list (newest first). */
class TenantTokens {
  readonly slots = new Map<string, Slot>();
  bytes = 0;
  newest: Slot | null = null;
  oldest: Slot | null = null;

  constructor(readonly id: string) {}
}

/**
 * Verified tokens by tenant and full text, each kept until its own `exp`: RS256 verification costs far
 * more than a proxied request, and a client reuses its token for many requests. Tokens that fail
 * verification are not cached; a verified token refused for what it is (RefusedToken) is.
 *
 * - Scoped by tenant: a token is looked up only among the tokens verified for the requesting tenant,
 *   so what one tenant's rules accepted is never taken for another tenant's (whose own rules, e.g. an
 *   OIDC provider claiming the same issuer, may refuse it). The same Clerk token used at two tenants
 *   is verified once at each.
 * - Bounded (LRU) in entries and in bytes: a tenant whose identity provider mints large tokens (a long
 *   `sub`, hundreds of scopes) would otherwise fill a replica's memory with them.
 * - Fair: one tenant's tokens hold at most `tenantShare` of both bounds. A tenant over its share loses
 *   its own least recently used tokens; the replica's bound, when reached, takes the least recently used
 *   of all. So a tenant minting endless distinct tokens cannot push the others' tokens out (which would
 *   cost them a signature verification per request), unless `1 / tenantShare` tenants do it together.
 *
 * Lookups are two map reads and two list moves: no allocation, no scan. A lookup reads the clock as of
 * the last millisecond at most (a blocked event loop: as of its last turn), as lru-cache did before.
 */
export class TokenCache {
  readonly #enabled: boolean;
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  readonly #tenantMaxEntries: number;
  readonly #tenantMaxBytes: number;
  readonly #tenants = new Map<string, TenantTokens>();
  #newest: Slot | null = null;
  #oldest: Slot | null = null;
  #entries = 0;
  #bytes = 0;
  /** Date.now() for lookups, read once a millisecond (as lru-cache does): Date.now() allocates its result. */
  #nowMs = 0;
  readonly #forgetNow = () => {
    this.#nowMs = 0;
  };

  constructor(maxEntries: number, maxBytes = 32 * 1024 * 1024, tenantShare = TENANT_TOKEN_CACHE_SHARE) {
    if (!(tenantShare > 0 && tenantShare <= 1)) {
      throw new RangeError(`tenantShare must be in (0, 1], got ${tenantShare}`);
    }
    this.#enabled = maxEntries > 0 && maxBytes > 0;
    this.#maxEntries = maxEntries;
    this.#maxBytes = maxBytes;
    this.#tenantMaxEntries = Math.max(1, Math.floor(maxEntries * tenantShare));
    this.#tenantMaxBytes = Math.max(1, Math.floor(maxBytes * tenantShare));
  }

  /** The tenant's verified token, unless it expired; it becomes the most recently used. */
  get(tenantId: string, token: string): CachedToken | undefined {
    const slot = this.#tenants.get(tenantId)?.slots.get(tokenKey(token));
    if (slot === undefined || slot.token !== token) return undefined;
    if (slot.expiresAtMs <= this.#now()) {
      this.#remove(slot);
      return undefined;
    }
    this.#touch(slot);
    return slot.entry;
  }

  /**
   * Keeps a token verified for the tenant until `expiresAtSeconds`. A token larger than the tenant's
   * share is not kept. Past the tenant's share its least recently used tokens go, then past the
   * cache's bounds the least recently used of all.
   */
  set(tenantId: string, presented: string, entry: CachedToken, expiresAtSeconds: number): void {
    const expiresAtMs = expiresAtSeconds * 1000;
    if (!this.#enabled || !(expiresAtMs > Date.now())) return;
    // Kept as a copy of its own: the token presented is cut from its request's header, and V8 keeps a
    // cut as a view of the whole header (a token after 15,000 spaces of `Authorization` held 15 KB).
    const token = presented.length >= SHORTEST_VIEW ? ownCopy(presented) : presented;
    const bytes = entryBytes(entry, token);
    const key = tokenKey(token);
    let tenant = this.#tenants.get(tenantId);
    let existing = tenant?.slots.get(key);
    if (existing !== undefined && existing.token !== token) {
      this.#remove(existing);
      existing = undefined;
      tenant = this.#tenants.get(tenantId);
    }
    if (bytes > this.#tenantMaxBytes) {
      if (existing !== undefined) this.#remove(existing);
      return;
    }
    if (tenant !== undefined && existing !== undefined) {
      tenant.bytes += bytes - existing.bytes;
      this.#bytes += bytes - existing.bytes;
      existing.entry = entry;
      existing.expiresAtMs = expiresAtMs;
      existing.bytes = bytes;
      this.#touch(existing);
    } else {
      if (tenant === undefined) {
        tenant = new TenantTokens(tenantId);
        this.#tenants.set(tenantId, tenant);
      }
      const slot = new Slot(tenant, key, token, entry, expiresAtMs, bytes);
      tenant.slots.set(key, slot);
      tenant.bytes += bytes;
      this.#bytes += bytes;
      this.#entries++;
      this.#linkNewest(slot);
    }
    // The new token fits the share on its own, so these never remove it (nor empty the tenant).
    while (tenant.bytes > this.#tenantMaxBytes || tenant.slots.size > this.#tenantMaxEntries) {
      this.#remove(tenant.oldest!);
    }
    while (this.#bytes > this.#maxBytes || this.#entries > this.#maxEntries) this.#remove(this.#oldest!);
  }

  /** The bytes the kept entries are counted at. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The entries kept, expired ones not yet dropped included. */
  get size(): number {
    return this.#entries;
  }

  /** The bytes the tenant's kept entries are counted at. */
  bytesOf(tenantId: string): number {
    return this.#tenants.get(tenantId)?.bytes ?? 0;
  }

  /** The most bytes one tenant's entries may be counted at. */
  get tenantMaxBytes(): number {
    return this.#tenantMaxBytes;
  }

  #now(): number {
    if (this.#nowMs === 0) {
      this.#nowMs = Date.now();
      setTimeout(this.#forgetNow, 1).unref();
    }
    return this.#nowMs;
  }

  #touch(slot: Slot): void {
    if (this.#newest !== slot) {
      this.#unlink(slot);
      this.#linkNewest(slot);
    }
  }

  #linkNewest(slot: Slot): void {
    slot.newer = null;
    slot.older = this.#newest;
    if (this.#newest !== null) this.#newest.newer = slot;
    else this.#oldest = slot;
    this.#newest = slot;
    const tenant = slot.tenant;
    slot.tenantNewer = null;
    slot.tenantOlder = tenant.newest;
    if (tenant.newest !== null) tenant.newest.tenantNewer = slot;
    else tenant.oldest = slot;
    tenant.newest = slot;
  }

  #unlink(slot: Slot): void {
    if (slot.newer !== null) slot.newer.older = slot.older;
    else this.#newest = slot.older;
    if (slot.older !== null) slot.older.newer = slot.newer;
    else this.#oldest = slot.newer;
    const tenant = slot.tenant;
    if (slot.tenantNewer !== null) slot.tenantNewer.tenantOlder = slot.tenantOlder;
    else tenant.newest = slot.tenantOlder;
    if (slot.tenantOlder !== null) slot.tenantOlder.tenantNewer = slot.tenantNewer;
    else tenant.oldest = slot.tenantNewer;
    slot.newer = slot.older = slot.tenantNewer = slot.tenantOlder = null;
  }

  #remove(slot: Slot): void {
    this.#unlink(slot);
    const tenant = slot.tenant;
    tenant.slots.delete(slot.key);
    tenant.bytes -= slot.bytes;
    this.#bytes -= slot.bytes;
    this.#entries--;
    if (tenant.slots.size === 0) this.#tenants.delete(tenant.id);
  }
}

function entryBytes(entry: CachedToken, token: string): number {
  let bytes = ENTRY_OVERHEAD_BYTES + token.length + entry.verifiedBy.length;
  // A refusal is one of a few shared answers: the entry holds only a reference to it.
  if ('refusal' in entry) return bytes;
  const { identity } = entry;
  bytes += entry.authorizedParty?.length ?? 0;
  for (const text of [
    identity.principal,
    identity.userId,
    identity.orgId,
    identity.apiKeyId,
    identity.serviceId,
  ])
    bytes += text?.length ?? 0;
  for (const scope of identity.scopes) bytes += scope.length + 16;
  return bytes;
}
