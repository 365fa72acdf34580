import type { AuthMode } from '@vantageedge/shared/domain/gateway-config';
import {
  authorizedPartyRefusal,
  clerkUserRefusal,
  missingScope,
} from '@vantageedge/shared/gateway-policies/auth-rules';
import type { Identity } from '../auth/identity.js';
import type { TrustedKeySet, VerifyingKeySet } from '../auth/jwks.js';
import type { CompiledApiKey, CompiledRoute, CompiledTenant } from '../config/compiled-tenant.js';
import type { OpenConnectionFacts, OpenConnectionRefusal } from '../pipeline/stage.js';
import { splitOriginIds } from '../traffic-split/traffic-split-stage.js';
import { DEFAULT_ORIGIN_TLS } from '../upstream/origin-tls.js';
import { CLOSE_GOING_AWAY, CLOSE_POLICY_VIOLATION } from './close-frame.js';

/**
 * What admitted an open WebSocket, recorded at its upgrade: enough to tell, from a later snapshot of
 * its tenant alone, whether the upgrade would still be admitted — without its credentials, which the
 * gateway does not keep.
 */
export interface WebSocketAdmission extends OpenConnectionFacts {
  readonly tenantId: string;
  /** The upgrade's Host, as the tenant was resolved from it. */
  readonly host: string | undefined;
  readonly routeId: string;
  /** The origin the upgrade went to: the route's own, or the one its traffic split chose. */
  readonly originId: string;
  /**
   * The origin's TLS settings (OriginTlsSettings.key) its connection to an https target was made and
   * verified under; none for a plain target.
   */
  readonly originTls?: string | undefined;
  readonly identity: Identity;
  /** The tenant's OIDC provider that vouched for an OIDC user (another provider's subjects are other people). */
  readonly oidcProvider?: { readonly issuer: string; readonly audience: string } | undefined;
  /**
   * When the credentials stop being accepted, as at the upgrade (AuthResult.expiresAtMs) or, for an
   * API key, as the last snapshot that carried the key set it (TenantAdmissions.withKeyExpiry): a
   * rotation gives the old key one. None: they never expire.
   */
  readonly credentialsExpireAtMs?: number | undefined;
  /** The remote key set that verified its user token: the connection closes when it withdraws the token's key. */
  readonly verifiedWith?: VerifyingKeySet | undefined;
  /**
   * The service account's key that verified its service token (CompiledServiceAccount.keyDigest): the
   * connection closes when a snapshot no longer lists that key for its service.
   */
  readonly serviceKey?: string | undefined;
  /** A Clerk user's token's `azp`: the connection closes when the tenant no longer takes that app's tokens. */
  readonly authorizedParty?: string | undefined;
}

/**
 * Why an open WebSocket's admission was withdrawn: by a snapshot, by the clock (its credentials
 * expired) or by its token's provider (it withdrew the signing key); a fixed set (a metric label).
 */
export type WithdrawalReason =
  | 'tenant_removed'
  | 'host_moved'
  | 'route_removed'
  | 'route_answers_itself'
  | 'origin_changed'
  | 'origin_tls_changed'
  | 'key_revoked'
  | 'key_expired'
  | 'auth_changed'
  | 'credentials_expired'
  | 'signing_key_withdrawn'
  | OpenConnectionRefusal;

/**
 * RFC 6455 §7.4.1: 1001 (going away) when what the client talked to is no longer served here — it may
 * reconnect and get whatever serves the address now; 1008 (policy violation) when its credentials no
 * longer satisfy the route's policy — reconnecting with them is refused.
 */
export const WITHDRAWAL_CLOSE: Readonly<Record<WithdrawalReason, { code: number; reason: string }>> = {
  tenant_removed: { code: CLOSE_GOING_AWAY, reason: 'tenant removed' },
  host_moved: { code: CLOSE_GOING_AWAY, reason: 'host moved' },
  route_removed: { code: CLOSE_GOING_AWAY, reason: 'route removed' },
  route_answers_itself: { code: CLOSE_GOING_AWAY, reason: 'route answers itself' },
  origin_changed: { code: CLOSE_GOING_AWAY, reason: 'route origin changed' },
  origin_tls_changed: { code: CLOSE_GOING_AWAY, reason: 'origin tls changed' },
  key_revoked: { code: CLOSE_POLICY_VIOLATION, reason: 'api key revoked' },
  key_expired: { code: CLOSE_POLICY_VIOLATION, reason: 'api key expired' },
  auth_changed: { code: CLOSE_POLICY_VIOLATION, reason: 'route auth changed' },
  credentials_expired: { code: CLOSE_POLICY_VIOLATION, reason: 'credentials expired' },
  signing_key_withdrawn: { code: CLOSE_POLICY_VIOLATION, reason: 'signing key withdrawn' },
  ip_denied: { code: CLOSE_POLICY_VIOLATION, reason: 'address denied' },
  cors_not_allowed: { code: CLOSE_POLICY_VIOLATION, reason: 'origin not allowed' },
};

/** The identity kinds each auth mode admits. */
const ADMITTED_KINDS: Readonly<Record<AuthMode, ReadonlySet<Identity['kind']>>> = {
  public: new Set(['anonymous', 'user', 'api_key', 'service']),
  apikey_required: new Set(['api_key']),
  jwt_required: new Set(['user']),
  jwt_or_apikey: new Set(['user', 'api_key']),
  service: new Set(['service']),
};

/**
 * One version of a tenant indexed for checking its open WebSockets: built once per snapshot (only when
 * the tenant has any open), then each connection costs a few map lookups.
 */
export class TenantAdmissions {
  readonly #tenant: CompiledTenant;
  readonly #routes = new Map<string, CompiledRoute>();
  readonly #keys = new Map<string, CompiledApiKey>();
  /** The scopes each service account is granted (a token counts no other). */
  readonly #serviceGrants = new Map<string, ReadonlySet<string>>();
  /** The service each registered key (CompiledServiceAccount.keyDigest) signs for. */
  readonly #serviceKeys = new Map<string, string>();
  /** The origins each route sends upgrades to, worked out for the first connection that asks. */
  readonly #routeOrigins = new Map<CompiledRoute, ReadonlySet<string>>();
  readonly #resolveHost: (host: string | undefined) => CompiledTenant | undefined;
  readonly #clerkParties: ReadonlySet<string> | null;

  /**
   * `resolveHost`: the replica's host → tenant lookup as it stands (another tenant's claim may have won).
   * `clerkParties`: the apps whose Clerk session tokens the
   * tenant's routes take now (Authenticator.authorizedPartiesOf); null takes any.
   */
  constructor(
    tenant: CompiledTenant,
    resolveHost: (host: string | undefined) => CompiledTenant | undefined,
    clerkParties: ReadonlySet<string> | null = null,
  ) {
    this.#tenant = tenant;
    this.#resolveHost = resolveHost;
    this.#clerkParties = clerkParties;
    for (const route of tenant.routes) this.#routes.set(route.config.id, route);
    for (const key of tenant.apiKeys.values()) this.#keys.set(key.id, key);
    for (const account of tenant.auth.serviceAccounts.values()) {
      this.#serviceGrants.set(account.id, account.scopes);
      this.#serviceKeys.set(account.keyDigest, account.id);
    }
  }

  /** Why this version no longer admits the connection at `nowMs`; undefined while it does. */
  withdrawal(admission: WebSocketAdmission, nowMs: number): WithdrawalReason | undefined {
    if (this.#resolveHost(admission.host)?.id !== this.#tenant.id) return 'host_moved';
    const route = this.#routes.get(admission.routeId);
    if (route === undefined) return 'route_removed';
    // A fixed response (maintenance mode) or a redirect: the route sends nothing to any origin now.
    if (route.config.fixed_response !== null || route.config.redirect !== null) return 'route_answers_itself';
    if (!this.#sendsTo(route, admission.originId)) return 'origin_changed';
    if (admission.originTls !== undefined && admission.originTls !== this.#tlsOf(admission.originId))
      return 'origin_tls_changed';
    return refusedByStage(route, admission) ?? this.#credentialWithdrawal(route, admission, nowMs);
  }

  /** The key of the origin's TLS settings in this version (the origin is there: the route sends to it). */
  #tlsOf(originId: string): string {
    return (this.#tenant.origins.get(originId)?.upstreams.tls ?? DEFAULT_ORIGIN_TLS).key;
  }

  /** Whether an upgrade on the route could go to the origin now: its own, or one its split sends to. */
  #sendsTo(route: CompiledRoute, originId: string): boolean {
    let ids = this.#routeOrigins.get(route);
    if (ids === undefined) {
      ids =
        splitOriginIds(route.config, this.#tenant.origins) ??
        new Set(route.origin ? [route.origin.config.id] : []);
      this.#routeOrigins.set(route, ids);
    }
    return ids.has(originId);
  }

  /**
   * When the connection's credentials stop being accepted under this version: an API key's
   * `expires_at` as the tenant set it now (it may have moved it either way), a token's as it said;
   * none once the route is public (no credential admits the connection any more).
   */
  credentialsExpireAtMs(admission: WebSocketAdmission): number | undefined {
    if (this.#routes.get(admission.routeId)?.authMode === 'public') return undefined;
    const { identity } = admission;
    if (identity.kind !== 'api_key' || identity.apiKeyId === undefined)
      return admission.credentialsExpireAtMs;
    return this.#keys.get(identity.apiKeyId)?.expiresAtMs ?? undefined;
  }

  /**
   * The admission with its API key's expiry as this snapshot carries it: once snapshots drop a key past
   * that expiry (a rotation's grace ended), its absence reads as expired, not revoked. The same object
   * when nothing changed.
   */
  withKeyExpiry(admission: WebSocketAdmission): WebSocketAdmission {
    const { identity } = admission;
    if (identity.kind !== 'api_key' || identity.apiKeyId === undefined) return admission;
    const key = this.#keys.get(identity.apiKeyId);
    if (key === undefined) return admission;
    const expiresAtMs = key.expiresAtMs ?? undefined;
    if (expiresAtMs === admission.credentialsExpireAtMs) return admission;
    return { ...admission, credentialsExpireAtMs: expiresAtMs };
  }

  /**
   * The admission held to the tenant's OIDC key set as this version names it (a new jwks_url that
   * lists the token's signing key too): that set's withdrawals close it from now on. The same object
   * when the set did not change.
   */
  withCurrentKeySet(admission: WebSocketAdmission): WebSocketAdmission {
    const keys = this.#tenant.auth.oidc?.keys;
    if (keys === undefined || !verifiedByAnotherKeySet(admission, keys)) return admission;
    const key = admission.verifiedWith?.key;
    return { ...admission, verifiedWith: { set: keys, withdrawals: keys.withdrawals, key } };
  }

  #credentialWithdrawal(
    route: CompiledRoute,
    admission: WebSocketAdmission,
    nowMs: number,
  ): WithdrawalReason | undefined {
    if (route.authMode === 'public') return undefined;
    const { identity } = admission;
    if (!ADMITTED_KINDS[route.authMode].has(identity.kind)) return 'auth_changed';
    let scopes = identity.scopes;
    if (identity.kind === 'api_key') {
      const key = identity.apiKeyId === undefined ? undefined : this.#keys.get(identity.apiKeyId);
      if (key === undefined) {
        // Snapshots leave out keys that have expired: a key missing after its expiry was not revoked.
        const expiresAtMs = admission.credentialsExpireAtMs;
        return expiresAtMs !== undefined && expiresAtMs <= nowMs ? 'key_expired' : 'key_revoked';
      }
      if (key.expiresAtMs !== null && key.expiresAtMs <= nowMs) return 'key_expired';
      // The key's scopes as this snapshot grants them.
      scopes = key.identity.scopes;
    } else if (identity.kind === 'service') {
      const granted =
        identity.serviceId === undefined ? undefined : this.#serviceGrants.get(identity.serviceId);
      if (granted === undefined) return 'auth_changed';
      // The key that signed its token, taken out of the service (leaked, or the service registered anew).
      const { serviceKey } = admission;
      if (serviceKey !== undefined && this.#serviceKeys.get(serviceKey) !== identity.serviceId)
        return 'signing_key_withdrawn';
      // The token's scopes as this snapshot grants its service them.
      scopes = scopes.filter((scope) => granted.has(scope));
    } else if (identity.issuer === 'clerk') {
      const tenant = this.#tenant;
      const hasUser = (id: string) => tenant.userIds.has(id);
      if (clerkUserRefusal({ clerkOrgId: tenant.clerkOrgId, hasUser }, route.config, identity) !== null)
        return 'auth_changed';
      if (authorizedPartyRefusal(this.#clerkParties, admission.authorizedParty) !== null)
        return 'auth_changed';
    } else if (identity.issuer === 'oidc') {
      const oidc = this.#tenant.auth.oidc;
      const provider = admission.oidcProvider;
      if (oidc === null || oidc.issuer !== provider?.issuer || oidc.audience !== provider.audience)
        return 'auth_changed';
      if (verifiedByAnotherKeySet(admission, oidc.keys) && !listsSigningKey(oidc.keys, admission))
        return 'signing_key_withdrawn';
    }
    return missingScope(route.requiredScopes, scopes) === undefined ? undefined : 'auth_changed';
  }
}

/**
 * The route's checks of where a connection comes from (IP rules, the page its CORS policy allows) as
 * this version compiled them, applied to what the connection showed at its upgrade: a rule tightened
 * since ends a connection it would refuse now, as it refuses a new upgrade (before authentication).
 */
function refusedByStage(route: CompiledRoute, facts: OpenConnectionFacts): OpenConnectionRefusal | undefined {
  for (const stage of route.stages.all) {
    const refusal = stage.refusesOpenConnection?.(facts);
    if (refusal !== undefined) return refusal;
  }
  return undefined;
}

/**
 * An OIDC user's token verified by a key set other than `keys` (its tenant named another jwks_url
 * since): `keys` must list its signing key for the connection to stay open.
 */
export function verifiedByAnotherKeySet(admission: WebSocketAdmission, keys: TrustedKeySet): boolean {
  const { verifiedWith } = admission;
  return admission.oidcProvider !== undefined && verifiedWith !== undefined && verifiedWith.set !== keys;
}

/** Whether `keys` lists the key that signed the connection's token, unchanged (a token without a kid: never known). */
function listsSigningKey(keys: TrustedKeySet, admission: WebSocketAdmission): boolean {
  const key = admission.verifiedWith?.key;
  return key !== undefined && keys.stillLists(key);
}
