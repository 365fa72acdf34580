import type { IncomingHttpHeaders } from 'node:http';
import {
  authorizedPartyRefusal,
  bearerCandidate,
  bearerToken,
  clerkClaims,
  clerkUserRefusal,
  JWT_CLOCK_TOLERANCE_SECONDS,
  looksLikeJwt,
  missingScope,
  presentedApiKey,
  scopesOf,
  serviceClaimsRefusal,
  subjectRefusal,
} from '@vantageedge/shared/gateway-policies/auth-rules';
import { clerkSessionRefusal } from '@vantageedge/shared/gateway-policies/clerk-session-refusal';
import { singleHeader } from '@vantageedge/shared/http/header-values';
import { type JwtJsonObject, readCompactJws } from '@vantageedge/shared/json/compact-jws-refusal';
import { namesClerkInstance } from '@vantageedge/shared/settings/clerk-issuer';
import {
  type CompactVerifyGetKey,
  compactVerify,
  decodeJwt,
  type JWK,
  type JWTPayload,
  errors as joseErrors,
} from 'jose';
import type { CompiledRoute, CompiledTenant } from '../config/compiled-tenant.js';
import { ApiKeyDigests } from './api-key-digests.js';
import type { AuthFailureLimiter } from './auth-failure-limiter.js';
import { clerkJwkFromPem } from './clerk-pem-key.js';
import {
  ANONYMOUS,
  type AuthFailure,
  type AuthResult,
  clerkUserIdentity,
  type Identity,
  oidcUserIdentity,
  serviceIdentity,
} from './identity.js';
import { RemoteJwksRegistry, type RemoteKeySet } from './jwks.js';
import { type AcceptedToken, type CachedToken, TokenCache } from './token-cache.js';
import {
  CLERK_TOKEN_ALGORITHMS,
  type ClaimsVerdict,
  clerkClaimsVerdict,
  clerkHeaderVerdict,
  jwtClaimsVerdict,
} from './token-claim-checks.js';

export interface AuthenticatorOptions {
  apiKeyPepper: string;
  clerk?: {
    jwtKey?: string | undefined;
    secretKey?: string | undefined;
    /** Clerk's Backend API (JWKS at `<apiUrl>/v1/jwks`); default https://api.clerk.com. */
    apiUrl?: string | undefined;
    /** The `azp` values taken on a Clerk session token (CLERK_AUTHORIZED_PARTIES) where a tenant lists none. Unset or empty: any. */
    authorizedParties?: readonly string[] | undefined;
    /** The instance's `iss`: a token naming another is refused. Unset: not checked. */
    issuer?: string | undefined;
  };
  tokenCacheSize?: number;
  /** Bytes the verified tokens may take (token text and identity). */
  tokenCacheBytes?: number;
  /** The part of both bounds one tenant's tokens may hold; default TENANT_TOKEN_CACHE_SHARE (a quarter). */
  tokenCacheTenantShare?: number;
  /** Presented API keys whose HMAC is remembered (0: hash on every request). */
  apiKeyCacheSize?: number;
  /** Longest accepted lifetime (exp − iat) of a service token, in seconds. */
  maxServiceTokenSeconds?: number;
  /** Accept Clerk tokens of the local development key pair (claim DEV_TOKEN_CLAIM); only in dev mode. */
  allowDevTokens?: boolean;
  /** Remote key sets of this replica (Clerk's JWKS when only CLERK_SECRET_KEY is set). */
  remoteJwks?: RemoteJwksRegistry;
  /** Failed authentications per client IP; a client over its limit is refused before any verification. */
  failureLimiter?: AuthFailureLimiter;
}

/** Clerk's category of machine-to-machine tokens, which are not session tokens. */
const CLERK_M2M_CATEGORY = 'cl_B7d4PD333AAA';

/**
 * How long past its `exp` Clerk's verifyToken still accepts a token (its clockSkewInMs default, which
 * the gateway keeps): the token is accepted, and its WebSocket stays open, until then.
 */
const CLERK_CLOCK_SKEW_MS = 5_000;

/** The claim `make dev-token` puts in development tokens (services/dev/src/dev-keys.ts). */
const DEV_TOKEN_CLAIM = 'vantageedge_dev';

const API_KEY_CHALLENGE = 'ApiKey realm="vantageedge", header="X-API-Key"';
const BEARER_CHALLENGE = 'Bearer realm="vantageedge"';
const BEARER_OR_API_KEY_CHALLENGE = `${BEARER_CHALLENGE}, ${API_KEY_CHALLENGE}`;

function failure(status: 401 | 403, code: string, message: string, challenge: string): AuthFailure {
  return { ok: false, status, code, message, challenge };
}

/** What RFC 6750 §3 allows in an error_description: visible ASCII and space, but `"` and `\`. */
const NOT_IN_ERROR_DESCRIPTION = /[^\x20\x21\x23-\x5b\x5d-\x7e]/g;

/**
 * A 401 for a bearer token. A message may quote the token (a member name it repeats): its description
 * in the challenge keeps only what RFC 6750 allows, so a token cannot end the quoted string and add
 * parameters, nor leave the answer without a challenge.
 */
function bearerFailure(code: string, message: string): AuthFailure {
  const description = message.replace(NOT_IN_ERROR_DESCRIPTION, '?');
  return failure(
    401,
    code,
    message,
    `${BEARER_CHALLENGE}, error="invalid_token", error_description="${description}"`,
  );
}

/**
 * The answers to Clerk tokens refused for a fixed reason (no session, an app the route does not take),
 * one per reason: cached tokens share them, and refusing one again costs no new answer.
 */
const tokenRefusals = new Map<string, AuthFailure>();

function tokenRefusalFailure(reason: string): AuthFailure {
  let refusal = tokenRefusals.get(reason);
  if (refusal === undefined) {
    refusal = bearerFailure('invalid_token', reason);
    tokenRefusals.set(reason, refusal);
  }
  return refusal;
}

/** A Clerk session token's identity at the tenant (none without a subject: the token names no user). */
function clerkIdentity(payload: JWTPayload, tenant: CompiledTenant): Identity | null {
  if (typeof payload.sub !== 'string') return null;
  const { orgId, scopes } = clerkClaims(payload, tenant.clerkOrgId);
  return clerkUserIdentity(payload.sub, orgId, scopes);
}

/**
 * Per-route authentication. Public routes and API keys are answered synchronously; tokens are
 * verified once per tenant and then served from the TokenCache, so the common path never awaits.
 */
export class Authenticator {
  readonly #options: AuthenticatorOptions;
  readonly #tokens: TokenCache;
  readonly #apiKeyDigests: ApiKeyDigests;
  readonly #maxServiceTokenSeconds: number;
  readonly #clerkKeys: RemoteKeySet | null;
  /** CLERK_JWT_KEY, one object for the replica's life: jose imports it once. */
  readonly #clerkPemKey: JWK | undefined;
  /** Whether a compiled tenant OIDC setting names the platform's Clerk instance (see #isPlatformClerkToken). */
  readonly #oidcNamesClerk = new WeakMap<object, boolean>();
  /** CLERK_AUTHORIZED_PARTIES: the apps whose Clerk tokens a tenant without a list of its own takes (null: any). */
  readonly #platformAuthorizedParties: ReadonlySet<string> | null;

  constructor(options: AuthenticatorOptions) {
    this.#options = options;
    this.#tokens = new TokenCache(
      options.tokenCacheSize ?? 10_000,
      options.tokenCacheBytes,
      options.tokenCacheTenantShare,
    );
    this.#apiKeyDigests = new ApiKeyDigests(options.apiKeyPepper, options.apiKeyCacheSize ?? 10_000);
    this.#maxServiceTokenSeconds = options.maxServiceTokenSeconds ?? 300;
    const clerk = options.clerk;
    this.#platformAuthorizedParties = clerk?.authorizedParties?.length
      ? new Set(clerk.authorizedParties)
      : null;
    this.#clerkKeys =
      !clerk?.jwtKey && clerk?.secretKey
        ? (options.remoteJwks ?? new RemoteJwksRegistry()).clerk(
            clerk.apiUrl ?? 'https://api.clerk.com',
            clerk.secretKey,
          )
        : null;
    this.#clerkPemKey = clerk?.jwtKey ? clerkJwkFromPem(clerk.jwtKey) : undefined;
  }

  /**
   * The route's auth mode applied to the request. With a failure limiter, a client (IP) that failed too
   * often is answered 429 at once, and every rejected credential is counted against it (a credential
   * verified asynchronously from the start, so concurrent ones cannot all be verified).
   */
  authenticate(
    tenant: CompiledTenant,
    route: CompiledRoute,
    headers: IncomingHttpHeaders,
    clientIp = '',
  ): AuthResult | Promise<AuthResult> {
    const limiter = this.#options.failureLimiter;
    if (limiter === undefined || route.authMode === 'public') return this.#verify(tenant, route, headers);
    const retryAfterSeconds = limiter.refusedForSeconds(tenant.id, clientIp);
    if (retryAfterSeconds > 0) {
      return {
        ok: false,
        status: 429,
        code: 'too_many_auth_failures',
        message: 'too many failed authentications from this client; retry later',
        challenge: BEARER_CHALLENGE,
        retryAfterSeconds,
      };
    }
    const result = this.#verify(tenant, route, headers);
    if (!(result instanceof Promise)) {
      const code = countedFailure(result);
      if (code !== undefined) limiter.recordFailure(tenant.id, clientIp, code);
      return result;
    }
    const settle = limiter.reserve(tenant.id, clientIp);
    return result.then((settled) => {
      settle(countedFailure(settled));
      return settled;
    });
  }

  #verify(
    tenant: CompiledTenant,
    route: CompiledRoute,
    headers: IncomingHttpHeaders,
  ): AuthResult | Promise<AuthResult> {
    switch (route.authMode) {
      case 'public':
        return { ok: true, identity: ANONYMOUS };
      case 'apikey_required':
        return this.#withScopes(route, this.#apiKey(tenant, presentedApiKey(headers, true)));
      case 'jwt_required':
        return this.#jwt(tenant, route, headers);
      case 'jwt_or_apikey':
        return this.#jwtOrApiKey(tenant, route, headers);
      case 'service':
        return this.#service(tenant, route, headers);
    }
  }

  #withScopes(route: CompiledRoute, result: AuthResult): AuthResult {
    if (!result.ok || route.requiredScopes.length === 0) return result;
    const scope = missingScope(route.requiredScopes, result.identity.scopes);
    if (scope === undefined) return result;
    return failure(
      403,
      'insufficient_scope',
      `this route requires the scope "${scope}"`,
      `${BEARER_CHALLENGE}, error="insufficient_scope", scope="${route.requiredScopes.join(' ')}"`,
    );
  }

  /** The API key the request presented (none: missing_credentials) looked up among the tenant's. */
  #apiKey(tenant: CompiledTenant, key: string | undefined): AuthResult {
    if (key === undefined) {
      return failure(
        401,
        'missing_credentials',
        'an API key is required (X-API-Key header)',
        API_KEY_CHALLENGE,
      );
    }
    // Only keys of THIS tenant's snapshot are in the index: another tenant's key is simply unknown.
    const entry = this.#apiKeyDigests.find(tenant.id, key, tenant.apiKeys);
    if (entry === undefined)
      return failure(401, 'invalid_api_key', 'the API key is not valid', API_KEY_CHALLENGE);
    if (entry.expiresAtMs !== null && entry.expiresAtMs <= Date.now()) {
      return failure(401, 'api_key_expired', 'the API key has expired', API_KEY_CHALLENGE);
    }
    return { ok: true, identity: entry.identity, expiresAtMs: entry.expiresAtMs ?? undefined };
  }

  #jwt(
    tenant: CompiledTenant,
    route: CompiledRoute,
    headers: IncomingHttpHeaders,
  ): AuthResult | Promise<AuthResult> {
    const cached = this.#cachedUserToken(tenant, headers);
    if (cached !== undefined) return this.#cachedUserAnswer(tenant, route, cached);
    const token = bearerToken(headers);
    if (token === undefined) {
      return failure(401, 'missing_credentials', 'a bearer token is required', BEARER_CHALLENGE);
    }
    return this.#verifyAndAuthorizeUser(tenant, route, token);
  }

  /**
   * As readsBearerJwt reads the request: a bearer JWT without X-API-Key is a user token, anything else
   * an API key. A cached token was read by bearerToken as a JWT when it was verified, so the header's
   * text finding one is that reading, without running the pattern over a token of several KB again.
   */
  #jwtOrApiKey(
    tenant: CompiledTenant,
    route: CompiledRoute,
    headers: IncomingHttpHeaders,
  ): AuthResult | Promise<AuthResult> {
    const apiKey = singleHeader(headers['x-api-key']);
    if (apiKey !== undefined) return this.#withScopes(route, this.#apiKey(tenant, apiKey));
    const cached = this.#cachedUserToken(tenant, headers);
    if (cached !== undefined) return this.#cachedUserAnswer(tenant, route, cached);
    const bearer = bearerToken(headers);
    if (bearer !== undefined && looksLikeJwt(bearer))
      return this.#verifyAndAuthorizeUser(tenant, route, bearer);
    const result = this.#apiKey(tenant, bearer);
    if (!result.ok && result.code === 'missing_credentials') {
      return failure(401, result.code, result.message, BEARER_OR_API_KEY_CHALLENGE);
    }
    return this.#withScopes(route, result);
  }

  /**
   * The request's bearer token as verified under the tenant's current Clerk or OIDC settings, if cached
   * and its key set has withdrawn no key since (a provider rotating a leaked key out).
   */
  #cachedUserToken(tenant: CompiledTenant, headers: IncomingHttpHeaders): CachedToken | undefined {
    const cached = this.#cachedToken(tenant, headers);
    if (cached === undefined) return undefined;
    const { verifiedBy } = tenant.auth;
    if (cached.verifiedBy !== verifiedBy.clerk && cached.verifiedBy !== verifiedBy.oidc) return undefined;
    const keySet = 'refusal' in cached ? undefined : cached.keySet;
    return keySet === undefined || keySet.set.stillTrusts(keySet.withdrawals) ? cached : undefined;
  }

  #cachedUserAnswer(tenant: CompiledTenant, route: CompiledRoute, cached: CachedToken): AuthResult {
    return 'refusal' in cached ? cached.refusal : this.#authorizeUser(tenant, route, cached);
  }

  #verifyAndAuthorizeUser(tenant: CompiledTenant, route: CompiledRoute, token: string): Promise<AuthResult> {
    return this.#verifyUserToken(tenant, token).then((verified) =>
      verified.ok ? this.#authorizeUser(tenant, route, verified.entry) : verified.failure,
    );
  }

  /**
   * The tenant's cached entry for the request's bearer token. Only tokens bearerToken read are kept,
   * so the header's text is looked up as it is: checking a token of several KB costs more than the lookup.
   */
  #cachedToken(tenant: CompiledTenant, headers: IncomingHttpHeaders): CachedToken | undefined {
    const candidate = bearerCandidate(headers);
    return candidate === undefined ? undefined : this.#tokens.get(tenant.id, candidate);
  }

  /**
   * A user's bearer token, decoded once (readCompactJws): its form judged, then verified as its
   * issuer's, the tenant's OIDC issuer or else Clerk. jose checks the signature over the token's text;
   * the header and the claims it covers are judged on that one parse (token-claim-checks.ts).
   */
  async #verifyUserToken(
    tenant: CompiledTenant,
    token: string,
  ): Promise<{ ok: true; entry: AcceptedToken } | { ok: false; failure: AuthResult }> {
    const jws = readCompactJws(token);
    // A token JWT libraries cannot read claims from is no JWT, whatever else is wrong with its form.
    const claims = jws.claims ?? (jws.refusal === undefined ? undefined : decodedClaims(token));
    if (claims === undefined) {
      return { ok: false, failure: bearerFailure('invalid_token', 'the bearer token is not a JWT') };
    }
    if (jws.refusal !== undefined) {
      return { ok: false, failure: bearerFailure('invalid_token', jws.refusal) };
    }
    const oidc = tenant.auth.oidc;
    const clerk = this.#options.clerk;
    // A tenant's OIDC issuer that is the platform's Clerk instance (stored before the admin API refused
    // it) takes no token: platform users' tokens stay Clerk tokens, authorized and withheld as such.
    if (
      oidc !== null &&
      claims['iss'] === oidc.issuer &&
      !(await this.#isPlatformClerkToken(oidc, token, jws.header))
    )
      return this.#verifyOidcToken(tenant, oidc, token, jws.header, claims);
    if (!clerk?.jwtKey && !clerk?.secretKey) {
      return { ok: false, failure: bearerFailure('invalid_token', 'no issuer configured for this token') };
    }
    const header = jws.header;
    if (header === undefined || header['cat'] === CLERK_M2M_CATEGORY) {
      return { ok: false, failure: bearerFailure('invalid_token', 'the bearer token is not valid') };
    }
    const clerkKeys = this.#clerkKeys;
    const keySet = clerkKeys === null ? undefined : { set: clerkKeys, withdrawals: clerkKeys.withdrawals };
    // Clerk's verification: the key, the header, the signature, then the claims (azp is checked when
    // the token is authorized for a route, #authorizeUser: whose apps a route takes is the tenant's
    // setting, which may change while the token is cached).
    const verdict: ClaimsVerdict = (await this.#signedByClerk(token, header))
      ? clerkClaimsVerdict(claims, { issuer: clerk.issuer, clockSkewMs: CLERK_CLOCK_SKEW_MS })
      : 'invalid';
    if (verdict !== undefined) return { ok: false, failure: claimsFailure(verdict) };
    const payload = claims as JWTPayload & { exp: number; sub: string };
    if (!this.#options.allowDevTokens && payload[DEV_TOKEN_CLAIM] !== undefined) {
      return {
        ok: false,
        failure: bearerFailure('invalid_token', 'development tokens are only accepted in dev mode'),
      };
    }
    // Refused for what the token is, whichever route: kept, so it is not verified again.
    const sessionRefusal = clerkSessionRefusal(header['cat'], payload);
    if (sessionRefusal !== null) {
      const refused: CachedToken = {
        refusal: tokenRefusalFailure(sessionRefusal),
        verifiedBy: tenant.auth.verifiedBy.clerk,
      };
      this.#tokens.set(tenant.id, token, refused, payload.exp);
      return { ok: false, failure: refused.refusal };
    }
    const identity = clerkIdentity(payload, tenant);
    if (identity === null) {
      return { ok: false, failure: bearerFailure('invalid_token', 'the bearer token names no user (sub)') };
    }
    const refusal = subjectRefusal(payload.sub);
    if (refusal !== null) return { ok: false, failure: bearerFailure(refusal.code, refusal.message) };
    const entry: AcceptedToken = {
      identity,
      verifiedBy: tenant.auth.verifiedBy.clerk,
      expiresAtMs: payload.exp * 1000 + CLERK_CLOCK_SKEW_MS,
      keySet: keySet === undefined ? undefined : { ...keySet, key: keySet.set.listedKey(header['kid']) },
      authorizedParty: typeof payload.azp === 'string' ? payload.azp : undefined,
    };
    this.#tokens.set(tenant.id, token, entry, payload.exp);
    return { ok: true, entry };
  }

  /**
   * Whether a token naming the tenant's OIDC issuer is the platform Clerk instance's: the issuer is the
   * instance's host (judged once per compiled OIDC setting), or, where the instance's issuer is not known
   * (neither CLERK_ISSUER nor CLERK_PUBLISHABLE_KEY set), Clerk's key signed it. Clerk's key set is then
   * asked only for a kid it already lists (at most its own fetch policy's loads, never a fetch per
   * unknown kid, and no tenant's kids in its memory of unknown ones).
   */
  async #isPlatformClerkToken(
    oidc: { readonly issuer: string },
    token: string,
    header: JwtJsonObject | undefined,
  ): Promise<boolean> {
    const clerk = this.#options.clerk;
    if (clerk?.issuer !== undefined) {
      let names = this.#oidcNamesClerk.get(oidc);
      if (names === undefined) {
        names = namesClerkInstance(oidc.issuer, clerk.issuer);
        this.#oidcNamesClerk.set(oidc, names);
      }
      return names;
    }
    if (!clerk?.jwtKey && !clerk?.secretKey) return false;
    const clerkKeys = this.#clerkKeys;
    if (clerkKeys !== null) {
      await clerkKeys.load();
      if (clerkKeys.listedKey(header?.['kid']) === undefined) return false;
    }
    return this.#signedByClerk(token, header);
  }

  /** Whether the token's header is one Clerk signs with and Clerk's key verifies its signature. */
  async #signedByClerk(token: string, header: JwtJsonObject | undefined): Promise<boolean> {
    if (header === undefined || clerkHeaderVerdict(header) !== undefined) return false;
    const clerkKeys = this.#clerkKeys;
    try {
      const jwk = clerkKeys === null ? this.#clerkPemKey : await clerkKeys.jwk(header['kid'] as string);
      if (jwk === undefined) return false;
      await compactVerify(token, jwk, { algorithms: CLERK_TOKEN_ALGORITHMS as string[] });
      return true;
    } catch {
      return false;
    }
  }

  /** A token of the tenant's OIDC issuer: its signature by the tenant's key set, then its claims. */
  async #verifyOidcToken(
    tenant: CompiledTenant,
    oidc: NonNullable<CompiledTenant['auth']['oidc']>,
    token: string,
    header: JwtJsonObject | undefined,
    claims: JwtJsonObject,
  ): Promise<{ ok: true; entry: AcceptedToken } | { ok: false; failure: AuthResult }> {
    const keySet = { set: oidc.keys, withdrawals: oidc.keys.withdrawals };
    try {
      await compactVerify(token, oidc.keys.getKey as CompactVerifyGetKey);
    } catch (error) {
      return { ok: false, failure: joseFailure(error) };
    }
    const payload = claims as JWTPayload;
    const verdict = jwtClaimsVerdict(payload, {
      issuer: oidc.issuer,
      audience: oidc.audience,
      requiredClaims: ['exp', 'sub'],
      clockToleranceSeconds: JWT_CLOCK_TOLERANCE_SECONDS,
    });
    if (verdict !== undefined) return { ok: false, failure: claimsFailure(verdict) };
    const refusal = subjectRefusal(payload.sub);
    if (refusal !== null) return { ok: false, failure: bearerFailure(refusal.code, refusal.message) };
    const entry: AcceptedToken = {
      identity: oidcUserIdentity(oidc.issuer, payload.sub!, scopesOf(payload)),
      verifiedBy: tenant.auth.verifiedBy.oidc!,
      // Refused from `exp` plus the clock tolerance the verification allows.
      expiresAtMs: (payload.exp! + JWT_CLOCK_TOLERANCE_SECONDS) * 1000,
      keySet: { ...keySet, key: oidc.keys.listedKey(header?.['kid']) },
    };
    this.#tokens.set(tenant.id, token, entry, payload.exp!);
    return { ok: true, entry };
  }

  /**
   * Clerk is one issuer for every tenant, so a verified Clerk token only says who the user is, not
   * that they belong here. A route accepts the tenant's own users: the members of its Clerk org (when
   * it has one and the route requires it), or, for a tenant without an org, the users in its user
   * list. `allow_any_authenticated_user` opts a route out. Before that, the token must have been minted
   * for one of the tenant's apps (azp). OIDC tokens come from the tenant's own issuer and audience, so
   * they are the tenant's by construction.
   */
  #authorizeUser(tenant: CompiledTenant, route: CompiledRoute, entry: AcceptedToken): AuthResult {
    if (entry.identity.issuer === 'clerk') {
      const foreignApp = authorizedPartyRefusal(this.authorizedPartiesOf(tenant), entry.authorizedParty);
      if (foreignApp !== null) return tokenRefusalFailure(foreignApp.message);
      const refusal = clerkUserRefusal(
        { clerkOrgId: tenant.clerkOrgId, hasUser: (id) => tenant.userIds.has(id) },
        route.config,
        entry.identity,
      );
      if (refusal !== null) {
        return failure(403, refusal.code, refusal.message, `${BEARER_CHALLENGE}, error="insufficient_scope"`);
      }
    }
    return this.#withScopes(route, {
      ok: true,
      identity: entry.identity,
      expiresAtMs: entry.expiresAtMs,
      verifiedWith: entry.keySet,
      authorizedParty: entry.authorizedParty,
    });
  }

  /** The apps (`azp`) whose Clerk session tokens the tenant's routes take: its own list, else the gateways'; null takes any. */
  authorizedPartiesOf(tenant: CompiledTenant): ReadonlySet<string> | null {
    return tenant.auth.authorizedParties ?? this.#platformAuthorizedParties;
  }

  #service(
    tenant: CompiledTenant,
    route: CompiledRoute,
    headers: IncomingHttpHeaders,
  ): AuthResult | Promise<AuthResult> {
    const tag = tenant.auth.verifiedBy.service;
    const cached = this.#cachedToken(tenant, headers);
    if (cached !== undefined && cached.verifiedBy === tag && !('refusal' in cached)) {
      return this.#withScopes(route, {
        ok: true,
        identity: cached.identity,
        expiresAtMs: cached.expiresAtMs,
        serviceKey: cached.serviceKey,
      });
    }
    const token = bearerToken(headers);
    if (token === undefined) {
      return failure(401, 'missing_credentials', 'a service token is required', BEARER_CHALLENGE);
    }
    if (tenant.auth.serviceAccounts.size === 0) {
      return bearerFailure('invalid_token', 'this tenant accepts no service tokens');
    }
    const jws = readCompactJws(token);
    if (jws.refusal !== undefined) return bearerFailure('invalid_token', jws.refusal);
    if (jws.header === undefined) return bearerFailure('invalid_token', 'the bearer token is not a JWT');
    // The key names the service: a token is only ever checked against its own service's key.
    const kid = jws.header['kid'];
    const account = kid === undefined ? undefined : tenant.auth.serviceAccounts.get(kid as string);
    if (account === undefined) {
      return bearerFailure('invalid_token', 'the service token names no registered key (kid)');
    }
    return compactVerify(token, account.key as CompactVerifyGetKey).then(
      () => {
        if (jws.claims === undefined) return bearerFailure('invalid_token', 'the bearer token is not valid');
        const payload = jws.claims as JWTPayload;
        const verdict = jwtClaimsVerdict(payload, {
          audience: [...tenant.hostNames],
          requiredClaims: ['exp', 'iat', 'sub'],
          maxTokenAgeSeconds: this.#maxServiceTokenSeconds,
          clockToleranceSeconds: JWT_CLOCK_TOLERANCE_SECONDS,
        });
        if (verdict !== undefined) return claimsFailure(verdict);
        const refusal = serviceClaimsRefusal(payload, account.id, this.#maxServiceTokenSeconds);
        if (refusal !== null) return bearerFailure(refusal.code, refusal.message);
        // A token carries at most what its service was granted; anything else it claims is dropped.
        const scopes = scopesOf(payload).filter((scope) => account.scopes.has(scope));
        const entry: AcceptedToken = {
          identity: serviceIdentity(account.id, scopes),
          verifiedBy: tag,
          expiresAtMs: (payload.exp! + JWT_CLOCK_TOLERANCE_SECONDS) * 1000,
          serviceKey: account.keyDigest,
        };
        this.#tokens.set(tenant.id, token, entry, payload.exp!);
        return this.#withScopes(route, {
          ok: true,
          identity: entry.identity,
          expiresAtMs: entry.expiresAtMs,
          serviceKey: entry.serviceKey,
        });
      },
      (error: unknown) => joseFailure(error),
    );
  }
}

/** The code of a rejected credential, which counts against the client; undefined for anything else. */
function countedFailure(result: AuthResult): string | undefined {
  return !result.ok && result.status === 401 && result.code !== 'missing_credentials'
    ? result.code
    : undefined;
}

/** The claims of a token JWT libraries decode (jose's decodeJwt), undefined when they cannot. */
function decodedClaims(token: string): JWTPayload | undefined {
  try {
    return decodeJwt(token);
  } catch {
    return undefined;
  }
}

function claimsFailure(verdict: 'expired' | 'invalid'): AuthResult {
  return verdict === 'expired'
    ? bearerFailure('token_expired', 'the bearer token has expired')
    : bearerFailure('invalid_token', 'the bearer token is not valid');
}

function joseFailure(error: unknown): AuthResult {
  if (error instanceof joseErrors.JWTExpired)
    return bearerFailure('token_expired', 'the bearer token has expired');
  return bearerFailure('invalid_token', 'the bearer token is not valid');
}
