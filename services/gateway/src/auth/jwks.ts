import { createLocalJWKSet, createRemoteJWKSet, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';

/**
 * Remote JWKS, one per URL for the life of the process: jose fetches the set once, caches it, and
 * refetches only for an unknown `kid` (rate-limited by its cooldown) — never per request. Shared by
 * every snapshot of every tenant that names the same URL, so a new snapshot does not refetch.
 */
export class RemoteJwksRegistry {
  readonly #sets = new Map<string, JWTVerifyGetKey>();

  get(url: string): JWTVerifyGetKey {
    let keys = this.#sets.get(url);
    if (keys === undefined) {
      keys = createRemoteJWKSet(new URL(url), { timeoutDuration: 5_000, cooldownDuration: 30_000 });
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
