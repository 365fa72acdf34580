import {
  DEFAULT_ORIGIN_BLOCKED_CIDRS,
  OriginAddressPolicy,
} from '@vantageedge/shared/net/origin-address-policy';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  type FetchImplementation,
  type JSONWebKeySet,
  type JWTVerifyGetKey,
} from 'jose';
import { Agent, fetch } from 'undici';
import { createGuardedConnector } from '../upstream/guarded-connector.js';

/**
 * Remote JWKS, one per URL for the life of the process: jose fetches the set once, caches it, and
 * refetches only for an unknown `kid` (rate-limited by its cooldown) — never per request. Shared by
 * every snapshot of every tenant that names the same URL, so a new snapshot does not refetch.
 * The URL is a tenant's setting, so fetches connect only where the origin address policy allows.
 */
export class RemoteJwksRegistry {
  readonly #sets = new Map<string, JWTVerifyGetKey>();
  readonly #fetch: FetchImplementation;

  constructor(addressPolicy = new OriginAddressPolicy(DEFAULT_ORIGIN_BLOCKED_CIDRS)) {
    const dispatcher = new Agent({ connect: createGuardedConnector(addressPolicy, { timeout: 5_000 }) });
    this.#fetch = (url, options) =>
      fetch(url, {
        method: options.method,
        redirect: options.redirect,
        signal: options.signal,
        headers: Object.fromEntries(options.headers.entries()),
        dispatcher,
      }) as unknown as ReturnType<FetchImplementation>;
  }

  get(url: string): JWTVerifyGetKey {
    let keys = this.#sets.get(url);
    if (keys === undefined) {
      keys = createRemoteJWKSet(new URL(url), {
        timeoutDuration: 5_000,
        cooldownDuration: 30_000,
        [customFetch]: this.#fetch,
      });
      this.#sets.set(url, keys);
    }
    return keys;
  }
}

/** Local key set from the tenant's settings.service_jwks (public JWKs); null when there are none. */
export function compileLocalJwks(jwks: ReadonlyArray<Record<string, unknown>>): JWTVerifyGetKey | null {
  if (jwks.length === 0) return null;
  return createLocalJWKSet({ keys: jwks as JSONWebKeySet['keys'] });
}
