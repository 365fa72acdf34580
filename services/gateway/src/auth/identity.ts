import {
  apiKeyPrincipal,
  clerkUserPrincipal,
  oidcUserPrincipal,
  servicePrincipal,
  type UserIssuer,
} from '@vantageedge/shared/gateway-policies/caller-principal';
import type { VerifyingKeySet } from './jwks.js';

export type { UserIssuer };

/** Who made a request, as established by the route's auth mode; forwarded to the origin as headers. */
export interface Identity {
  readonly kind: 'anonymous' | 'user' | 'api_key' | 'service';
  /**
   * The caller qualified by who vouched for it, for everything kept per caller (cache entries,
   * rate-limit buckets, usage): `clerk:<sub>`, `oidc:<issuer digest>:<sub>`, `svc:<service id>` or
   * `key:<API key id>`; none for an anonymous caller. The ids alone share one namespace: a tenant's
   * OIDC provider may issue any `sub` (a Clerk user's id, a service's id, `anon-ip:<address>`).
   * Set by the constructors below from the shared formats (gateway-policies/caller-principal, which
   * the control plane's explain uses too), never assembled elsewhere.
   */
  readonly principal?: string | undefined;
  /** Who vouched for a user (kind 'user'). */
  readonly issuer?: UserIssuer | undefined;
  /** Clerk user id or the OIDC subject, as the token says: unique only together with `issuer`. */
  readonly userId?: string | undefined;
  readonly orgId?: string | undefined;
  readonly apiKeyId?: string | undefined;
  /** The calling service (`sub` of its service token). */
  readonly serviceId?: string | undefined;
  readonly scopes: readonly string[];
}

export const ANONYMOUS: Identity = Object.freeze({ kind: 'anonymous', scopes: Object.freeze([]) });

export function clerkUserIdentity(
  sub: string,
  orgId: string | undefined,
  scopes: readonly string[],
): Identity {
  return { kind: 'user', principal: clerkUserPrincipal(sub), issuer: 'clerk', userId: sub, orgId, scopes };
}

/**
 * A subject of the tenant's OIDC provider. The issuer is in the principal as a fixed-length digest:
 * issuer text may contain ':', and subjects of a provider the tenant replaced are other people.
 */
export function oidcUserIdentity(issuer: string, sub: string, scopes: readonly string[]): Identity {
  return { kind: 'user', principal: oidcUserPrincipal(issuer, sub), issuer: 'oidc', userId: sub, scopes };
}

export function serviceIdentity(serviceId: string, scopes: readonly string[]): Identity {
  return { kind: 'service', principal: servicePrincipal(serviceId), serviceId, scopes };
}

export function apiKeyIdentity(apiKeyId: string, scopes: readonly string[]): Identity {
  return { kind: 'api_key', principal: apiKeyPrincipal(apiKeyId), apiKeyId, scopes };
}

export type AuthResult =
  | {
      readonly ok: true;
      readonly identity: Identity;
      /**
       * When the gateway stops accepting the credential (ms since the epoch): a token's `exp` plus the
       * clock skew its verification allows, an API key's `expires_at`; none when it never expires.
       */
      readonly expiresAtMs?: number | undefined;
      /** The remote key set that verified a user token (Clerk's JWKS, the tenant's OIDC jwks_url). */
      readonly verifiedWith?: VerifyingKeySet | undefined;
      /** The service account's key that verified a service token (CompiledServiceAccount.keyDigest). */
      readonly serviceKey?: string | undefined;
      /** A Clerk session token's `azp`: the app it was minted for. */
      readonly authorizedParty?: string | undefined;
    }
  | {
      readonly ok: false;
      readonly status: 401 | 403 | 429;
      readonly code: string;
      readonly message: string;
      /** WWW-Authenticate value. */
      readonly challenge: string;
      /** Retry-After value (429 too_many_auth_failures). */
      readonly retryAfterSeconds?: number;
    };

/** A refused authentication. */
export type AuthFailure = Extract<AuthResult, { readonly ok: false }>;
