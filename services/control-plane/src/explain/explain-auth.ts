import { verifyToken } from '@clerk/backend';
import { hashApiKey, sameApiKeyHash } from '@vantageedge/shared/domain/api-key-hash';
import { urlWithoutCredentials } from '@vantageedge/shared/domain/credential-headers';
import {
  type RouteConfig,
  type ServicePublicJwk,
  type TenantSnapshot,
  verificationKeyRefusal,
} from '@vantageedge/shared/domain/gateway-config';
import type {
  AuthExplanation,
  AuthOutcome,
  CredentialReport,
} from '@vantageedge/shared/domain/request-explanation';
import {
  authorizedPartyRefusal,
  bearerToken,
  clerkClaims,
  clerkUserRefusal,
  JWT_CLOCK_TOLERANCE_SECONDS,
  missingScope,
  presentedApiKey,
  readsBearerJwt,
  scopesOf,
  serviceClaimsRefusal,
  subjectRefusal,
} from '@vantageedge/shared/gateway-policies/auth-rules';
import {
  apiKeyPrincipal,
  clerkUserPrincipal,
  oidcUserPrincipal,
  servicePrincipal,
} from '@vantageedge/shared/gateway-policies/caller-principal';
import { clerkSessionRefusal } from '@vantageedge/shared/gateway-policies/clerk-session-refusal';
import { compactJwsRefusal } from '@vantageedge/shared/json/compact-jws-refusal';
import { namesClerkInstance } from '@vantageedge/shared/settings/clerk-issuer';
import {
  decodeJwt,
  decodeProtectedHeader,
  importJWK,
  type JWTPayload,
  errors as joseErrors,
  jwtVerify,
} from 'jose';
import type { FormerKeyLookup } from './former-keys.js';

/**
 * What a route's auth mode makes of the credentials of an explained request, decided the way the
 * gateway's Authenticator decides, with its rules (shared/src/gateway-policies/auth-rules.ts): the
 * same headers (X-API-Key, `Authorization: Bearer`), the same order of checks and the same error codes. API keys are compared by their keyed hash, as the
 * gateway does; service tokens are verified against the tenant's registered public keys (no network
 * needed). Clerk and OIDC tokens need their issuer's key set, which is fetched over the network: their
 * claims are read and checked, but their signatures are not (said so in the answer). Secrets
 * (keys, tokens) are never part of the answer. Beside the answer comes the caller's principal, made
 * where the gateway makes its identity's (shared/src/gateway-policies/caller-principal.ts): what a
 * `scope: user` limit and a per-caller cache key on.
 */

export interface AuthContext {
  snapshot: TenantSnapshot;
  /** A key hash not in the snapshot: the tenant's key of that hash issued by the explained position, if any. */
  formerKeys: FormerKeyLookup;
  apiKeyPepper: string;
  /** The tenant's host names (a service token's audience). */
  hostNames: readonly string[];
  /**
   * Clerk's PEM public key (CLERK_JWT_KEY, the same instance the gateways verify against): when set,
   * Clerk session tokens are verified here too, networklessly, with Clerk's own checks.
   */
  clerk?:
    | { jwtKey: string; authorizedParties: readonly string[]; issuer: string; allowDevTokens: boolean }
    | undefined;
  /** GATEWAY_MAX_SERVICE_TOKEN_SECONDS as the gateways run it. */
  maxServiceTokenSeconds: number;
  now: Date;
}

type Headers = Record<string, string | string[] | undefined>;

const fail = (status: 401 | 403, code: string, message: string): AuthOutcome => ({
  ok: false,
  status,
  code,
  message,
});
const pass = (message: string): AuthOutcome => ({ ok: true, status: null, code: null, message });

interface Partial {
  credential: CredentialReport;
  identity: AuthExplanation['identity'];
  /** The caller as the gateway keys it (caller-principal); none for an anonymous caller. */
  principal?: string | undefined;
  scopes: string[];
  outcome: AuthOutcome;
  notes: string[];
}

/** The auth step's answer, and the caller's principal (not part of the answer). */
export interface ExplainedAuth {
  explanation: AuthExplanation;
  /**
   * The principal the gateway's identity of this caller has (`clerk:…`, `oidc:…`, `svc:…`, `key:…`):
   * what it keys `scope: user` limits and per-caller cache entries on. None for an anonymous caller.
   */
  principal: string | undefined;
}

export async function explainAuth(
  route: RouteConfig,
  headers: Headers,
  context: AuthContext,
): Promise<ExplainedAuth> {
  const partial = await explainCredential(route, headers, context);
  let outcome = partial.outcome;
  if (outcome.ok && route.auth_mode !== 'public') {
    const missing = missingScope(route.required_scopes, partial.scopes);
    if (missing !== undefined)
      outcome = fail(403, 'insufficient_scope', `this route requires the scope "${missing}"`);
  }
  return {
    explanation: {
      mode: route.auth_mode,
      required_scopes: route.required_scopes,
      credential: partial.credential,
      identity: partial.identity,
      outcome,
      notes: partial.notes,
    },
    principal: partial.principal,
  };
}

const ANONYMOUS = { kind: 'anonymous' } as const;

async function explainCredential(
  route: RouteConfig,
  headers: Headers,
  context: AuthContext,
): Promise<Partial> {
  switch (route.auth_mode) {
    case 'public':
      return {
        credential: { kind: 'none' },
        identity: ANONYMOUS,
        scopes: [],
        outcome: pass('public route: no credentials are read'),
        notes: [],
      };
    case 'apikey_required':
      return apiKey(headers, context, 'an API key is required (X-API-Key header)');
    case 'jwt_required':
      return userToken(route, headers, context);
    case 'jwt_or_apikey':
      return readsBearerJwt(headers)
        ? userToken(route, headers, context)
        : apiKey(headers, context, 'an API key is required (X-API-Key header)');
    case 'service':
      return serviceToken(headers, context);
  }
}

async function apiKey(headers: Headers, context: AuthContext, missingMessage: string): Promise<Partial> {
  const key = presentedApiKey(headers, true);
  const notes: string[] = [];
  if (key === undefined) {
    return {
      credential: { kind: 'none' },
      identity: ANONYMOUS,
      scopes: [],
      outcome: fail(401, 'missing_credentials', missingMessage),
      notes,
    };
  }
  const digest = hashApiKey(context.apiKeyPepper, key);
  const active = context.snapshot.api_keys.find((entry) => sameApiKeyHash(entry.key_hash, digest));
  if (active !== undefined) {
    const expired = active.expires_at !== null && Date.parse(active.expires_at) <= context.now.getTime();
    return {
      credential: {
        kind: 'api_key',
        status: expired ? 'expired' : 'valid',
        api_key_id: active.id,
        name: active.name,
        scopes: active.scopes,
        expires_at: active.expires_at,
      },
      identity: { kind: 'api_key', api_key_id: active.id },
      principal: apiKeyPrincipal(active.id),
      scopes: active.scopes,
      outcome: expired
        ? fail(401, 'api_key_expired', 'the API key has expired')
        : pass(`API key "${active.name}" is active`),
      notes,
    };
  }
  const { key: issued, readModelsAt } = await context.formerKeys(digest);
  if (readModelsAt !== undefined) {
    notes.push(
      `the read models are at position ${readModelsAt}, not yet at the explained one: a key issued and revoked since shows as unknown (send X-Min-Position to wait for them)`,
    );
  }
  return {
    credential:
      issued === undefined
        ? { kind: 'api_key', status: 'unknown' }
        : { kind: 'api_key', status: 'revoked', api_key_id: issued.api_key_id, name: issued.name },
    identity: ANONYMOUS,
    scopes: [],
    outcome: fail(401, 'invalid_api_key', 'the API key is not valid'),
    notes,
  };
}

function claimsOf(payload: JWTPayload, orgId?: string) {
  return {
    ...(payload.iss !== undefined ? { iss: payload.iss } : {}),
    ...(payload.sub !== undefined ? { sub: payload.sub } : {}),
    ...(payload.exp !== undefined ? { exp: payload.exp } : {}),
    ...(orgId !== undefined ? { org_id: orgId } : {}),
  };
}

/** As the gateways: a token whose form is not strict (compact-jws-refusal.ts) is refused unverified. */
function strictJwsRefusal(token: string): AuthOutcome | undefined {
  const refusal = compactJwsRefusal(token);
  return refusal === undefined ? undefined : fail(401, 'invalid_token', refusal);
}

/** The claim `make dev-token` puts in development tokens: accepted only in dev mode. */
const DEV_TOKEN_CLAIM = 'vantageedge_dev';

/**
 * Clerk's verification of a session token (signature, exp/nbf/iat, iss) with the PEM key: the gateway's.
 * Its azp is checked as the gateway checks it, against the route's apps (authorizedParties).
 */
async function verifyClerkToken(
  token: string,
  clerk: NonNullable<AuthContext['clerk']>,
): Promise<{ ok: true } | { ok: false; outcome: AuthOutcome }> {
  try {
    const payload = await verifyToken(token, {
      jwtKey: clerk.jwtKey,
      issuer: clerk.issuer,
    });
    if (!clerk.allowDevTokens && payload[DEV_TOKEN_CLAIM] !== undefined) {
      return {
        ok: false,
        outcome: fail(401, 'invalid_token', 'development tokens are only accepted in dev mode'),
      };
    }
    return { ok: true };
  } catch (error) {
    return (error as { reason?: unknown }).reason === 'token-expired'
      ? { ok: false, outcome: fail(401, 'token_expired', 'the bearer token has expired') }
      : { ok: false, outcome: fail(401, 'invalid_token', 'the bearer token is not valid') };
  }
}

/**
 * The apps whose Clerk tokens the tenant's routes take, as the gateways compile them: its own list, else
 * their CLERK_AUTHORIZED_PARTIES (known here with CLERK_JWT_KEY); null: any.
 */
function authorizedParties(context: AuthContext): ReadonlySet<string> | null {
  const own = context.snapshot.tenant.settings.authorized_parties;
  if (own !== null) return new Set(own);
  const platform = context.clerk?.authorizedParties ?? [];
  return platform.length > 0 ? new Set(platform) : null;
}

async function userToken(route: RouteConfig, headers: Headers, context: AuthContext): Promise<Partial> {
  const token = bearerToken(headers);
  const none = { credential: { kind: 'none' } as const, identity: ANONYMOUS, scopes: [] };
  if (token === undefined) {
    return { ...none, outcome: fail(401, 'missing_credentials', 'a bearer token is required'), notes: [] };
  }
  let payload: JWTPayload;
  try {
    payload = decodeJwt(token);
  } catch {
    return { ...none, outcome: fail(401, 'invalid_token', 'the bearer token is not a JWT'), notes: [] };
  }
  const malformed = strictJwsRefusal(token);
  if (malformed !== undefined) return { ...none, outcome: malformed, notes: [] };
  const expired = payload.exp !== undefined && payload.exp * 1000 <= context.now.getTime();
  const oidc = context.snapshot.tenant.settings.oidc;
  const platformIssuer = context.clerk?.issuer;
  // The gateways take no token as the tenant's OIDC provider's when that provider is the platform's Clerk.
  if (
    oidc !== null &&
    payload.iss === oidc.issuer &&
    (platformIssuer === undefined || !namesClerkInstance(oidc.issuer, platformIssuer))
  ) {
    const oidcExpired =
      payload.exp !== undefined &&
      (payload.exp + JWT_CLOCK_TOLERANCE_SECONDS) * 1000 <= context.now.getTime();
    const notes = [
      `verified by the gateways with the keys at ${urlWithoutCredentials(oidc.jwks_url)} (fetched over the network): the signature is not checked here`,
    ];
    const wrongAudience =
      payload.aud === undefined ||
      !(Array.isArray(payload.aud) ? payload.aud : [payload.aud]).includes(oidc.audience);
    const subject = payload.sub === undefined ? null : subjectRefusal(payload.sub);
    const outcome = oidcExpired
      ? fail(401, 'token_expired', 'the bearer token has expired')
      : wrongAudience || payload.sub === undefined || payload.exp === undefined
        ? fail(401, 'invalid_token', 'the bearer token is not valid')
        : subject !== null
          ? fail(401, subject.code, subject.message)
          : pass("an OIDC token of the tenant's issuer (if its signature is valid)");
    const scopes = scopesOf(payload);
    return {
      credential: {
        kind: 'jwt',
        verifier: 'oidc',
        signature_checked: false,
        claims: claimsOf(payload),
        scopes,
      },
      identity: payload.sub === undefined ? ANONYMOUS : { kind: 'user', user_id: payload.sub },
      principal: payload.sub === undefined ? undefined : oidcUserPrincipal(oidc.issuer, payload.sub),
      scopes,
      outcome,
      notes,
    };
  }
  // Any other token is a Clerk session token (Clerk is one issuer for every tenant).
  const { orgId, scopes } = clerkClaims(payload, context.snapshot.tenant.clerk_org_id);
  const clerk = context.clerk;
  const credential: Extract<CredentialReport, { kind: 'jwt' }> = {
    kind: 'jwt',
    verifier: 'clerk',
    signature_checked: clerk !== undefined,
    claims: claimsOf(payload, orgId),
    scopes,
  };
  const notes =
    clerk === undefined
      ? ["verified by the gateways with Clerk's keys (no CLERK_JWT_KEY here): the signature is not checked"]
      : [];
  const identity = payload.sub === undefined ? ANONYMOUS : ({ kind: 'user', user_id: payload.sub } as const);
  const principal = payload.sub === undefined ? undefined : clerkUserPrincipal(payload.sub);
  if (expired) {
    return {
      credential,
      identity,
      principal,
      scopes,
      outcome: fail(401, 'token_expired', 'the bearer token has expired'),
      notes,
    };
  }
  if (clerk !== undefined) {
    const verified = await verifyClerkToken(token, clerk);
    if (!verified.ok && verified.outcome.code === 'token_expired') {
      // Expired by now but not at at_time: Clerk's checks run on the real clock.
      credential.signature_checked = false;
      notes.push('the token has expired by now: its signature was not checked (judged at at_time)');
    } else if (!verified.ok) {
      return { credential, identity: ANONYMOUS, scopes: [], outcome: verified.outcome, notes };
    }
  }
  const sessionRefusal = clerkSessionRefusal(decodeProtectedHeader(token).cat, payload);
  if (sessionRefusal !== null) {
    return {
      credential,
      identity: ANONYMOUS,
      scopes: [],
      outcome: fail(401, 'invalid_token', sessionRefusal),
      notes,
    };
  }
  const { snapshot } = context;
  const foreignApp = authorizedPartyRefusal(authorizedParties(context), payload.azp);
  if (foreignApp !== null) {
    return {
      credential,
      identity: ANONYMOUS,
      scopes: [],
      outcome: fail(401, foreignApp.code, foreignApp.message),
      notes,
    };
  }
  const refusal = clerkUserRefusal(
    {
      clerkOrgId: snapshot.tenant.clerk_org_id,
      hasUser: (id) => snapshot.users.some((user) => user.clerk_user_id === id),
    },
    route,
    { userId: payload.sub, orgId },
  );
  if (refusal !== null) {
    return {
      credential,
      identity,
      principal,
      scopes,
      outcome: fail(403, refusal.code, refusal.message),
      notes,
    };
  }
  return {
    credential,
    identity,
    principal,
    scopes,
    outcome: pass(
      credential.signature_checked
        ? 'a valid Clerk session token of a user this route admits'
        : 'a Clerk session token of a user this route admits (if its signature is valid)',
    ),
    notes,
  };
}

async function serviceToken(headers: Headers, context: AuthContext): Promise<Partial> {
  const token = bearerToken(headers);
  const none = { credential: { kind: 'none' } as const, identity: ANONYMOUS, scopes: [], notes: [] };
  if (token === undefined)
    return { ...none, outcome: fail(401, 'missing_credentials', 'a service token is required') };
  const accounts = context.snapshot.tenant.settings.service_accounts;
  if (accounts.length === 0)
    return { ...none, outcome: fail(401, 'invalid_token', 'this tenant accepts no service tokens') };
  const malformed = strictJwsRefusal(token);
  if (malformed !== undefined) return { ...none, outcome: malformed };
  let kid: string | undefined;
  try {
    kid = decodeProtectedHeader(token).kid;
  } catch {
    return { ...none, outcome: fail(401, 'invalid_token', 'the bearer token is not a JWT') };
  }
  // As the gateway compiles them: a key it would not verify with (stored before the bound) is left out.
  const usable = (key: ServicePublicJwk) => key.kid === kid && verificationKeyRefusal(key) === undefined;
  const account = accounts.find((candidate) => candidate.keys.some(usable));
  const jwk = account?.keys.find(usable);
  if (account === undefined || jwk === undefined) {
    return {
      ...none,
      outcome: fail(401, 'invalid_token', 'the service token names no registered key (kid)'),
    };
  }
  const credential = (payload?: JWTPayload, scopes?: string[]): CredentialReport => ({
    kind: 'jwt',
    verifier: 'service',
    signature_checked: true,
    ...(payload ? { claims: claimsOf(payload) } : {}),
    ...(scopes ? { scopes } : {}),
  });
  let payload: JWTPayload;
  try {
    const key = await importJWK(jwk as Parameters<typeof importJWK>[0], jwk.alg);
    ({ payload } = await jwtVerify(token, key, {
      audience: [...context.hostNames],
      requiredClaims: ['exp', 'iat', 'sub'],
      maxTokenAge: context.maxServiceTokenSeconds,
      clockTolerance: JWT_CLOCK_TOLERANCE_SECONDS,
      currentDate: context.now,
    }));
  } catch (error) {
    const expired = error instanceof joseErrors.JWTExpired;
    return {
      credential: credential(),
      identity: ANONYMOUS,
      scopes: [],
      outcome: expired
        ? fail(401, 'token_expired', 'the bearer token has expired')
        : fail(401, 'invalid_token', 'the bearer token is not valid'),
      notes: [],
    };
  }
  const bad = (message: string): Partial => ({
    credential: credential(payload),
    identity: ANONYMOUS,
    scopes: [],
    outcome: fail(401, 'invalid_token', message),
    notes: [],
  });
  const refusal = serviceClaimsRefusal(payload, account.id, context.maxServiceTokenSeconds);
  if (refusal !== null) return bad(refusal.message);
  const scopes = scopesOf(payload).filter((scope) => account.scopes.includes(scope));
  return {
    credential: credential(payload, scopes),
    identity: { kind: 'service', service_id: account.id },
    principal: servicePrincipal(account.id),
    scopes,
    outcome: pass(`a valid token of service "${account.id}"`),
    notes: [],
  };
}
