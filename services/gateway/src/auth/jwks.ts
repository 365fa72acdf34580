import type { ServiceAccount } from '@vantageedge/shared/domain/gateway-config';
import { createLocalJWKSet, createRemoteJWKSet, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import type { CompiledServiceAccount } from '../config/compiled-tenant.js';

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
      try {
        const key = createLocalJWKSet({ keys: [jwk] as JSONWebKeySet['keys'] });
        byKid.set(jwk.kid, { id: account.id, key, scopes });
      } catch (error) {
        warn(`service key ${jwk.kid} of ${account.id} ignored: ${(error as Error).message}`);
      }
    }
  }
  return byKid;
}
