import { createHash } from 'node:crypto';
import { urlWithoutCredentials } from '@vantageedge/shared/domain/credential-headers';
import { type ServiceAccount, verificationKeyRefusal } from '@vantageedge/shared/domain/gateway-config';
import { INTERNAL_LISTENER_HEADER } from '@vantageedge/shared/http/internal-listener';
import { repeatedMemberNames } from '@vantageedge/shared/json/repeated-member-names';
import {
  DEFAULT_ORIGIN_BLOCKED_CIDRS,
  OriginAddressPolicy,
} from '@vantageedge/shared/net/origin-address-policy';
import type { StructuredLogger } from '@vantageedge/shared/observability/logger';
import {
  createLocalJWKSet,
  type JSONWebKeySet,
  type JWK,
  type JWTVerifyGetKey,
  errors as joseErrors,
} from 'jose';
import { LRUCache } from 'lru-cache';
import { Counter, type Registry } from 'prom-client';
import { Agent, fetch as undiciFetch } from 'undici';
import type { CompiledServiceAccount } from '../config/compiled-tenant.js';
import { type Resolve, type TenantDnsLookups, tenantDnsLookups } from '../upstream/dns-lookups.js';
import { createGuardedConnector } from '../upstream/guarded-connector.js';
import { type JsonStructureBounds, jsonStructureExcess } from './json-structure.js';

/** How a replica fetches remote key sets: the same rules for Clerk's JWKS and every tenant's OIDC JWKS. */
export interface JwksFetchPolicy {
  /**
   * At most one fetch per URL per cooldown, successful or not, whatever the tokens ask for; URLs that
   * differ only in their query string count as one.
   */
  cooldownMs: number;
  /**
   * A key set older than this is refreshed on next use, in the background: tokens whose kid it lists
   * are verified with it meanwhile (stale-while-revalidate), and it is kept if the refresh fails.
   */
  maxAgeMs: number;
  /**
   * A key set older than this is not used until a refresh succeeds: tokens wait for the fetch as if
   * the set had never been fetched, and find no key if it fails. A key the provider removed therefore
   * stops verifying within this time even when its JWKS cannot be reached.
   */
  maxUsableAgeMs: number;
  timeoutMs: number;
  /** Unknown kids remembered per URL: a remembered kid never triggers a fetch again until it expires. */
  unknownKidCacheSize: number;
  /**
   * Characters those kids may take together (least recently used out first). A kid is the client's to
   * write, up to the header bound (about 12 KB): counted alone, 10,000 of them held 120 MB per key set.
   */
  unknownKidCacheChars: number;
  unknownKidTtlMs: number;
  /**
   * Largest key set read, in bytes of the decoded body. A declared Content-Length over it is refused
   * before the body is read; a body that grows past it is cut off there. Either is a failed fetch.
   */
  maxBytes: number;
  /** Most keys a set may list; a set with more is a failed fetch (jose scans every key per token). */
  maxKeys: number;
  /**
   * The shape a set's JSON may have, judged before it is parsed (a set beyond it is a failed fetch):
   * within maxBytes, some shapes take JSON.parse half a second, on the thread every request waits for.
   */
  maxJson: JsonStructureBounds;
}

export const DEFAULT_JWKS_FETCH_POLICY: JwksFetchPolicy = {
  cooldownMs: 30_000,
  maxAgeMs: 10 * 60_000,
  // Rides out a provider's JWKS being unreachable for a day (tokens keep verifying with the keys it
  // last listed) while bounding how long a key it has since removed is trusted.
  maxUsableAgeMs: 24 * 60 * 60_000,
  timeoutMs: 5_000,
  unknownKidCacheSize: 10_000,
  // Identity providers' kids are 20–50 characters: 10,000 of them fit.
  unknownKidCacheChars: 1024 * 1024,
  unknownKidTtlMs: 5 * 60_000,
  // Identity providers publish a few KB (Google, Auth0, Okta, Clerk: 1–3 keys; Microsoft Entra about a
  // dozen with their x5c certificates, ≈ 15 KB). 100 keys of RSA-4096 with a certificate chain each
  // still fit in 1 MiB, which parses in milliseconds.
  maxBytes: 1024 * 1024,
  maxKeys: 100,
  // A key set nests 4 deep (set, keys, key, x5c) and takes 40–60 tokens a key: 100 keys of Entra's
  // shape (three certificates each) take about 5,600. The costliest set within these bounds parses in
  // ~35 ms (1 MiB of long strings: ~5 ms); 1 MiB of 76,000 small objects would take 0.5 s.
  maxJson: { maxDepth: 16, maxTokens: 20_000 },
};

export type JwksFetchOutcome = 'ok' | 'failed';

/**
 * When key sets sharing it last started a fetch. The sets of one URL that differ only in their query
 * string share one: a query string is the tenant's to vary, and each variant would otherwise bring
 * its own fetch per cooldown to the same host. The sets take turns: one refused a fetch while the
 * cooldown ran is fetched when it passes, before the set asking then (which waits for its own turn).
 * Otherwise a tenant naming another tenant's jwks_url with a query string of its own, and sending
 * tokens with new kids, would take every fetch of that URL, and the other tenant's set would never be
 * fetched.
 */
export class FetchCooldown {
  #attemptedAt = Number.NEGATIVE_INFINITY;
  /** Sets refused a fetch while the cooldown ran, in the order they asked. */
  readonly #waiting = new Set<RemoteKeySet>();

  /**
   * The set whose fetch may start now (`asking` itself, or the set that has waited longest), or
   * undefined while the cooldown runs.
   */
  turn(asking: RemoteKeySet, now: number, cooldownMs: number): RemoteKeySet | undefined {
    if (now - this.#attemptedAt < cooldownMs) {
      this.#waiting.add(asking);
      return undefined;
    }
    this.#attemptedAt = now;
    for (const waited of this.#waiting) {
      this.#waiting.delete(waited);
      if (waited !== asking) this.#waiting.add(asking);
      return waited;
    }
    return asking;
  }

  /** A set no longer kept: it waits for no turn. */
  forget(set: RemoteKeySet): void {
    this.#waiting.delete(set);
  }
}

/** The one HTTP call a key set makes: the response's body is read as a stream, up to the policy's maxBytes. */
export type JwksFetch = (
  url: string,
  init: { headers: Record<string, string>; redirect: 'manual'; signal: AbortSignal },
) => Promise<{
  status: number;
  headers: { get(name: string): string | null };
  body: ReadableStream<Uint8Array> | null;
}>;

/**
 * The body as text, refused (and its stream cancelled, which closes the connection) as soon as it is
 * known to be longer than maxBytes: from its Content-Length, else from the bytes read so far.
 */
async function readBoundedText(response: Awaited<ReturnType<JwksFetch>>, maxBytes: number): Promise<string> {
  const body = response.body;
  const declared = Number(response.headers.get('content-length') ?? Number.NaN);
  if (declared > maxBytes) {
    void body?.cancel().catch(() => {});
    throw new Error(`JWKS declares ${declared} bytes, more than ${maxBytes}`);
  }
  if (body === null) return '';
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let length = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    length += value.byteLength;
    if (length > maxBytes) {
      void reader.cancel().catch(() => {});
      throw new Error(`JWKS is larger than ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  return new TextDecoder().decode(Buffer.concat(chunks, length));
}

/**
 * The kid a token header names. The header is the client's JSON: a kid that is not a string (an object,
 * a number) names no key of any set, so it neither asks for a fetch nor is remembered.
 */
function kidOf(kid: unknown): string | undefined {
  return typeof kid === 'string' ? kid : undefined;
}

/**
 * A key set as the tokens verified with it are remembered: a token verified when the set had withdrawn
 * `withdrawals` keys is trusted while it has withdrawn no other.
 */
export interface TrustedKeySet {
  /** For jose's jwtVerify. */
  readonly getKey: JWTVerifyGetKey;
  /**
   * The refreshes that dropped or changed a key the set listed, and the times it grew too old to use.
   * Read before a verification starts, so a key withdrawn while it runs counts against the token.
   */
  readonly withdrawals: number;
  /**
   * Whether a token verified with the set when it had `withdrawals` may be taken as verified still. A use
   * refreshes a set past its refresh age as a verification would (in the background), so tokens served
   * from a cache alone still see the keys their provider removes; a set past its usable age trusts none.
   */
  stillTrusts(withdrawals: number): boolean;
  /**
   * The key the set lists under `kid` now, as `stillLists` knows it; undefined when it lists none
   * under that kid (or the token named none).
   */
  listedKey(kid: unknown): string | undefined;
  /** Whether the set lists the key `listedKey` named still, unchanged. */
  stillLists(listedKey: string): boolean;
  /** Calls `listener` after each withdrawal (what `withdrawals` counts); returns how to stop. */
  onWithdrawal(listener: () => void): () => void;
  /**
   * Resolves once the set knows its keys: at once when it has a usable set, else after a fetch (as the
   * fetch policy allows; a set that cannot be fetched lists no key). Never rejects.
   */
  load(): Promise<void>;
}

/**
 * The key set that verified a token, its withdrawals then (read before the verification) and the key
 * it listed under the token's kid (after): what decides whether the token is still trusted.
 */
export interface VerifyingKeySet {
  readonly set: TrustedKeySet;
  readonly withdrawals: number;
  /** Undefined when the token named no kid: any withdrawal may then have taken its key. */
  readonly key?: string | undefined;
}

/** The set that verified a token, as it is now: it withdrew the token's key since the verification. */
export function signingKeyWithdrawn(verifying: VerifyingKeySet): boolean {
  const { set, withdrawals, key } = verifying;
  if (set.withdrawals === withdrawals) return false;
  return key === undefined || !set.stillLists(key);
}

/**
 * One remote JSON Web Key Set. A token's `kid` can ask for a refresh, but the set is fetched by one
 * request at a time (callers share it), at most once per cooldown (failed fetches included, and no
 * retries), and never again for a kid that a fresh fetch did not contain. A token naming an unknown kid
 * therefore costs a map lookup, not a request to the identity provider.
 * Only tokens the set cannot answer wait for a fetch (a kid it does not list, or no usable set): a set
 * past its refresh age answers the kids it lists at once while it is refreshed in the background, so
 * a slow identity provider does not hold the tokens it already has keys for.
 */
export class RemoteKeySet implements TrustedKeySet {
  readonly #url: string;
  readonly #headers: Record<string, string>;
  readonly #policy: JwksFetchPolicy;
  readonly #onFetch: ((outcome: JwksFetchOutcome, reason?: string) => void) | undefined;
  readonly #cooldown: FetchCooldown;
  readonly #fetch: JwksFetch;
  readonly #unknownKids: LRUCache<string, true>;
  #keys = new Map<string, JWK>();
  /** Each usable key of the last good set (keyDigest): a key missing from a new set was withdrawn. */
  #listed = new Set<string>();
  /** The keyDigest of each usable key with a kid. */
  #listedByKid = new Map<string, string>();
  #withdrawals = 0;
  readonly #withdrawalListeners = new Set<() => void>();
  #local: JWTVerifyGetKey | null = null;
  #fetchedAt = Number.NEGATIVE_INFINITY;
  #attemptedAt = Number.NEGATIVE_INFINITY;
  #pending: Promise<void> | null = null;

  constructor(
    url: string,
    options: {
      headers?: Record<string, string>;
      policy?: JwksFetchPolicy;
      /** After each fetch; a failed one comes with its reason. */
      onFetch?: (outcome: JwksFetchOutcome, reason?: string) => void;
      /** Default: the global fetch. A tenant's key set gets one that connects only where allowed. */
      fetch?: JwksFetch;
      /** Default: one of its own. */
      cooldown?: FetchCooldown;
    } = {},
  ) {
    this.#fetch = options.fetch ?? fetch;
    this.#url = url;
    this.#headers = { accept: 'application/json, application/jwk-set+json', ...options.headers };
    this.#policy = options.policy ?? DEFAULT_JWKS_FETCH_POLICY;
    this.#onFetch = options.onFetch;
    this.#cooldown = options.cooldown ?? new FetchCooldown();
    this.#unknownKids = new LRUCache({
      max: Math.max(1, this.#policy.unknownKidCacheSize),
      maxSize: Math.max(1, this.#policy.unknownKidCacheChars),
      sizeCalculation: (_known, kid) => Math.max(1, kid.length),
      ttl: Math.max(1, this.#policy.unknownKidTtlMs),
    });
  }

  /** For jose's jwtVerify: the key for the token's header, refreshing the set only as the policy allows. */
  readonly getKey: JWTVerifyGetKey = async (header, token) => {
    await this.#ensure(kidOf(header.kid));
    if (this.#local === null) throw new joseErrors.JWKSNoMatchingKey();
    return this.#local(header, token);
  };

  get withdrawals(): number {
    return this.#withdrawals;
  }

  stillTrusts(withdrawals: number): boolean {
    if (this.#local !== null) {
      const now = Date.now();
      const age = now - this.#fetchedAt;
      if (age >= this.#policy.maxUsableAgeMs) this.#forgetKeys();
      else if (age >= this.#policy.maxAgeMs) void this.#fetchOnce(now);
    }
    return withdrawals === this.#withdrawals;
  }

  listedKey(kid: unknown): string | undefined {
    const named = kidOf(kid);
    return named === undefined ? undefined : this.#listedByKid.get(named);
  }

  stillLists(listedKey: string): boolean {
    return this.#listed.has(listedKey);
  }

  onWithdrawal(listener: () => void): () => void {
    this.#withdrawalListeners.add(listener);
    return () => this.#withdrawalListeners.delete(listener);
  }

  async load(): Promise<void> {
    await this.#ensure(undefined);
  }

  /** The JWK with this kid, or undefined when the set (as the policy lets us know it) has none. */
  async jwk(kid: string | undefined): Promise<JWK | undefined> {
    const named = kidOf(kid);
    if (named === undefined) return undefined;
    await this.#ensure(named);
    return this.#keys.get(named);
  }

  async #ensure(kid: string | undefined): Promise<void> {
    const now = Date.now();
    const age = now - this.#fetchedAt;
    if (age >= this.#policy.maxUsableAgeMs && this.#local !== null) this.#forgetKeys();
    const unknown = kid !== undefined && !this.#keys.has(kid) && !this.#unknownKids.has(kid);
    const mustWait = this.#local === null || unknown;
    if (!mustWait && age < this.#policy.maxAgeMs) return;
    const fetching = this.#fetchOnce(now);
    if (!mustWait || fetching === null) return;
    await fetching;
    if (kid !== undefined && !this.#keys.has(kid) && this.#fetchedAt >= this.#attemptedAt) {
      this.#unknownKids.set(kid, true);
    }
  }

  /**
   * The fetch in progress, else a new one if the cooldown allows it and it is this set's turn, else
   * null (the set whose turn it was is fetched instead).
   */
  #fetchOnce(now: number): Promise<void> | null {
    if (this.#pending !== null) return this.#pending;
    const turn = this.#cooldown.turn(this, now, this.#policy.cooldownMs);
    if (turn === undefined) return null;
    if (turn !== this) {
      void turn.#startFetch(now);
      return null;
    }
    return this.#startFetch(now);
  }

  #startFetch(now: number): Promise<void> {
    if (this.#pending !== null) return this.#pending;
    this.#attemptedAt = now;
    this.#pending = this.#refresh().finally(() => {
      this.#pending = null;
    });
    return this.#pending;
  }

  /** The set is too old to trust: until a fetch succeeds, it lists no key. */
  #forgetKeys(): void {
    this.#keys = new Map();
    this.#listed = new Set();
    this.#listedByKid = new Map();
    this.#local = null;
    this.#withdrew();
  }

  #withdrew(): void {
    this.#withdrawals++;
    for (const listener of [...this.#withdrawalListeners]) listener();
  }

  async #refresh(): Promise<void> {
    let withdrew = false;
    try {
      const response = await this.#fetch(this.#url, {
        headers: this.#headers,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.#policy.timeoutMs),
      });
      if (response.headers.get(INTERNAL_LISTENER_HEADER) !== null) {
        // A platform listener (the control plane, a replica's admin port): never a tenant's key set.
        void response.body?.cancel().catch(() => {});
        throw new Error("the key set URL is one of the platform's internal listeners");
      }
      if (response.status !== 200) {
        void response.body?.cancel().catch(() => {});
        throw new Error(`JWKS answered ${response.status}`);
      }
      const text = await readBoundedText(response, this.#policy.maxBytes);
      const excess = jsonStructureExcess(text, this.#policy.maxJson);
      if (excess !== undefined) throw new Error(`JWKS ${excess}`);
      const set = JSON.parse(text) as JSONWebKeySet;
      const ambiguousKeys = keysNamingAMemberTwice(text);
      // createLocalJWKSet refuses what is not a key set; the count is bounded before it copies the keys.
      if (Array.isArray(set?.keys) && set.keys.length > this.#policy.maxKeys) {
        throw new Error(`JWKS lists ${set.keys.length} keys, more than ${this.#policy.maxKeys}`);
      }
      // A key too costly to verify with, or naming a member twice, is left out, as if the set did not list it.
      const usable = set.keys.filter(
        (key, index) => !ambiguousKeys.has(index) && verificationKeyRefusal(key) === undefined,
      );
      // Only the keys are copied: members beside them are the set's to add and nothing reads them.
      const local = createLocalJWKSet({ keys: usable });
      const keys = new Map<string, JWK>();
      const listed = new Set<string>();
      const listedByKid = new Map<string, string>();
      for (const key of usable) {
        const digest = keyDigest(key);
        listed.add(digest);
        if (typeof key.kid !== 'string') continue;
        keys.set(key.kid, key);
        listedByKid.set(key.kid, digest);
      }
      this.#local = local;
      this.#keys = keys;
      for (const key of this.#listed) {
        if (listed.has(key)) continue;
        withdrew = true;
        break;
      }
      this.#listed = listed;
      this.#listedByKid = listedByKid;
      // Remembered unknown kids stay remembered: lookups check the set first, so a kid that a later
      // fetch brings is served at once; only the fetches a remembered kid would trigger are avoided.
      this.#fetchedAt = Date.now();
      this.#onFetch?.('ok');
    } catch (error) {
      // Keep serving the last good set; the cooldown stops the next token from refetching at once.
      this.#onFetch?.('failed', failureReason(error));
    }
    if (withdrew) this.#withdrew();
  }
}

/**
 * The indexes of the keys naming one of their members twice (two `n`, two `kid`): JSON.parse reads the
 * last, another verifier or a reviewer may read the first, so the key is not used (RFC 7517 §5 ignores
 * keys that cannot be used). A set naming one of its own members twice (two `keys`) is refused whole.
 */
function keysNamingAMemberTwice(text: string): Set<number> {
  const keys = new Set<number>();
  for (const path of repeatedMemberNames(text)) {
    const [member, index] = path;
    if (member !== 'keys' || typeof index !== 'number' || path.length < 3) {
      throw new Error(`JWKS names ${path.join('.')} more than once`);
    }
    keys.add(index);
  }
  return keys;
}

/** A key as a set (or a service account) lists it, in a few bytes: a set may list 100 keys with certificate chains. */
function keyDigest(key: JWK): string {
  return createHash('sha256').update(JSON.stringify(key)).digest('base64url');
}

/** An error's message, with the cause fetch() wraps its connection errors in (ECONNREFUSED, a blocked address). */
function failureReason(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause;
  return cause instanceof Error ? `${error.message}: ${cause.message}` : error.message;
}

/**
 * Every remote key set of a replica, one per URL: shared by every snapshot of every tenant that names
 * the same URL (a new snapshot does not refetch) and by Clerk's JWKS. A tenant's set is kept while a
 * snapshot in force names its URL (counted by `acquire` and `release`), so a tenant changing its
 * jwks_url again and again does not grow the replica.
 * A tenant's jwks_url is tenant input: its fetches connect only where the origin address policy allows
 * (ORIGIN_BLOCKED_CIDRS, checked after DNS, and never the gateway's own listeners). Clerk's URL is the
 * operator's setting and is fetched as configured.
 */
export class RemoteJwksRegistry {
  readonly #sets = new Map<string, RemoteKeySet>();
  /** Snapshots in force naming each tenant key set (by id); Clerk's set is never released. */
  readonly #users = new Map<string, number>();
  readonly #policy: JwksFetchPolicy;
  readonly #fetches: Counter<'source' | 'outcome'> | undefined;
  readonly #tenantFetch: JwksFetch;
  readonly #logger: StructuredLogger | undefined;
  /** The cooldown of each URL without its query string, with the sets kept that share it. */
  readonly #cooldowns = new Map<string, { cooldown: FetchCooldown; sets: number }>();
  readonly #lookups: TenantDnsLookups;
  /** Tenant key sets kept per host name: a name no kept set has is no longer looked up. */
  readonly #setsByHostname = new Map<string, number>();

  constructor(
    options: {
      policy?: Partial<JwksFetchPolicy>;
      registry?: Registry;
      /** Default: the default ORIGIN_BLOCKED_CIDRS. */
      addressPolicy?: OriginAddressPolicy;
      /** Where a failed fetch is reported, with its reason. */
      logger?: StructuredLogger;
      /** Default: the process's, which origin lookups take turns in too. */
      dnsLookups?: TenantDnsLookups;
    } = {},
  ) {
    const lookups = options.dnsLookups ?? tenantDnsLookups;
    this.#lookups = lookups;
    const addressPolicy = options.addressPolicy ?? new OriginAddressPolicy(DEFAULT_ORIGIN_BLOCKED_CIDRS);
    // A key set's name is looked up in a turn of its own among the origins' (TenantDnsLookups): one whose
    // name server never answers holds one libuv thread, never the pool.
    const resolve: Resolve = (hostname, lookupOptions, callback) =>
      lookups.forTenant(lookupTurn(hostname))(hostname, lookupOptions, callback);
    const dispatcher = new Agent({
      connect: createGuardedConnector(addressPolicy, { timeout: 5_000 }, resolve),
    });
    this.#tenantFetch = (url, init) => undiciFetch(url, { ...init, dispatcher });
    this.#policy = { ...DEFAULT_JWKS_FETCH_POLICY, ...options.policy };
    this.#logger = options.logger;
    this.#fetches = options.registry
      ? new Counter({
          name: 'vantageedge_gateway_jwks_fetches_total',
          help: 'Fetches of remote JSON Web Key Sets (Clerk, tenant OIDC), by outcome',
          labelNames: ['source', 'outcome'],
          registers: [options.registry],
        })
      : undefined;
  }

  /** A tenant's OIDC key set, kept until as many `release(url)` calls. */
  acquire(url: string): TrustedKeySet {
    const set = this.#set(url, 'oidc');
    const id = setId(url, 'oidc');
    this.#users.set(id, (this.#users.get(id) ?? 0) + 1);
    return set;
  }

  /** A snapshot naming the URL is no longer in force; the set goes with the last one. */
  release(url: string): void {
    const id = setId(url, 'oidc');
    const users = (this.#users.get(id) ?? 0) - 1;
    if (users > 0) {
      this.#users.set(id, users);
      return;
    }
    this.#users.delete(id);
    const set = this.#sets.get(id);
    if (set === undefined) return;
    this.#sets.delete(id);
    this.#forgetCooldown(cooldownId(url, 'oidc'), set);
    this.#forgetHostname(url);
  }

  /** The key sets kept. */
  get size(): number {
    return this.#sets.size;
  }

  /** Clerk's JWKS from its Backend API (`<apiUrl>/v1/jwks`, authenticated with the secret key). */
  clerk(apiUrl: string, secretKey: string): RemoteKeySet {
    const url = new URL('v1/jwks', apiUrl.endsWith('/') ? apiUrl : `${apiUrl}/`).href;
    return this.#set(url, 'clerk', { authorization: `Bearer ${secretKey}` });
  }

  #set(url: string, source: 'oidc' | 'clerk', headers?: Record<string, string>): RemoteKeySet {
    const id = setId(url, source);
    let set = this.#sets.get(id);
    if (set === undefined) {
      set = new RemoteKeySet(url, {
        policy: this.#policy,
        ...(headers ? { headers } : {}),
        onFetch: (outcome, reason) => {
          this.#fetches?.labels(source, outcome).inc();
          if (outcome === 'failed') {
            const shown = urlWithoutCredentials(url);
            // fetch() names the URL in some errors (one with user information, for instance).
            this.#logger?.warn('JWKS fetch failed', {
              source,
              jwks_url: shown,
              reason: reason?.replaceAll(url, shown).replaceAll(URL.parse(url)?.href ?? url, shown),
            });
          }
        },
        ...(source === 'oidc' ? { fetch: this.#tenantFetch } : {}),
        cooldown: this.#shareCooldown(cooldownId(url, source)),
      });
      this.#sets.set(id, set);
      if (source === 'oidc') this.#keepHostname(url);
    }
    return set;
  }

  #shareCooldown(id: string): FetchCooldown {
    let shared = this.#cooldowns.get(id);
    if (shared === undefined) {
      shared = { cooldown: new FetchCooldown(), sets: 0 };
      this.#cooldowns.set(id, shared);
    }
    shared.sets++;
    return shared.cooldown;
  }

  #keepHostname(url: string): void {
    const hostname = URL.parse(url)?.hostname;
    if (hostname !== undefined)
      this.#setsByHostname.set(hostname, (this.#setsByHostname.get(hostname) ?? 0) + 1);
  }

  /**
   * The last kept set on a host name is gone: its lookups still waiting for their turn leave the line.
   * Otherwise a tenant pointing its jwks_url at one never-answering name after another would put a
   * turn per name ahead of every other tenant's origin lookups.
   */
  #forgetHostname(url: string): void {
    const hostname = URL.parse(url)?.hostname;
    if (hostname === undefined) return;
    const sets = (this.#setsByHostname.get(hostname) ?? 0) - 1;
    if (sets > 0) {
      this.#setsByHostname.set(hostname, sets);
      return;
    }
    this.#setsByHostname.delete(hostname);
    this.#lookups.forget(lookupTurn(hostname));
  }

  #forgetCooldown(id: string, set: RemoteKeySet): void {
    const shared = this.#cooldowns.get(id);
    if (shared === undefined) return;
    shared.cooldown.forget(set);
    if (--shared.sets === 0) this.#cooldowns.delete(id);
  }
}

/** The turn a key set's host name is looked up in, among the origins' (TenantDnsLookups). */
function lookupTurn(hostname: string): string {
  return `jwks ${hostname}`;
}

function setId(url: string, source: 'oidc' | 'clerk'): string {
  return `${source} ${url}`;
}

/** The URL without its query string (or fragment): the sets whose fetches one cooldown bounds. */
function cooldownId(url: string, source: 'oidc' | 'clerk'): string {
  const parsed = URL.parse(url);
  return `${source} ${parsed === null ? url : `${parsed.origin}${parsed.pathname}`}`;
}

/**
 * The tenant's service accounts keyed by the `kid` of each key: a token's header names its key, the
 * key names its one service. A key that does not load is left out (the warning names it); a kid
 * listed by two services (the control plane refuses that) is trusted for neither.
 */
export function compileServiceAccounts(
  accounts: readonly ServiceAccount[],
  warn: (message: string) => void,
): ReadonlyMap<string, CompiledServiceAccount> {
  const byKid = new Map<string, CompiledServiceAccount>();
  const ambiguous = new Set<string>();
  for (const account of accounts) {
    const scopes = new Set(account.scopes);
    for (const jwk of account.keys) {
      if (byKid.has(jwk.kid) || ambiguous.has(jwk.kid)) {
        ambiguous.add(jwk.kid);
        byKid.delete(jwk.kid);
        warn(`service key ${jwk.kid} is listed by more than one service: trusted for none`);
        continue;
      }
      const refusal = verificationKeyRefusal(jwk);
      if (refusal !== undefined) {
        warn(`service key ${jwk.kid} of ${account.id} ignored: its ${refusal.member} ${refusal.issue}`);
        continue;
      }
      try {
        const key = createLocalJWKSet({ keys: [jwk] as JSONWebKeySet['keys'] });
        byKid.set(jwk.kid, { id: account.id, key, keyDigest: keyDigest(jwk as JWK), scopes });
      } catch (error) {
        warn(`service key ${jwk.kid} of ${account.id} ignored: ${(error as Error).message}`);
      }
    }
  }
  return byKid;
}
