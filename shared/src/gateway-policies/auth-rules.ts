import { singleHeader } from '../http/header-values.js';

/**
 * The gateway's authentication rules that need no key material: which credential a route reads from
 * which header, what a token's claims grant, which of a tenant's users a Clerk token may be, which
 * scope is missing. The gateway's Authenticator applies them per request; the control plane's
 * request explanation applies the same functions, so both read a request the same way.
 */

type Headers = Readonly<Record<string, string | readonly string[] | undefined>>;
type Claims = Readonly<Record<string, unknown>>;

const BEARER = /^Bearer +(\S+)$/i;

/**
 * Seconds a token's issuer or service may be ahead of (or behind) a replica's clock, for exp, nbf and
 * iat of OIDC and service tokens: Clerk's SDK allows its session tokens the same. A service mints a
 * token and sends it at once: with none, a clock a fraction of a second ahead would see tokens refused.
 */
export const JWT_CLOCK_TOLERANCE_SECONDS = 5;

/** The token of `Authorization: Bearer <token>`, if any. */
export function bearerToken(headers: Headers): string | undefined {
  const authorization = singleHeader(headers['authorization']);
  if (authorization === undefined) return undefined;
  return BEARER.exec(authorization)?.[1];
}

/**
 * The text after `Authorization: Bearer ` (and its spaces), not checked to be one token: cheap to
 * take from a header of several KB. Equal to a token bearerToken read before, it is that token.
 */
export function bearerCandidate(headers: Headers): string | undefined {
  const authorization = singleHeader(headers['authorization']);
  if (authorization === undefined || authorization.length < 8) return undefined;
  if (authorization.charCodeAt(6) !== 32 || authorization.slice(0, 6).toLowerCase() !== 'bearer')
    return undefined;
  let start = 7;
  while (authorization.charCodeAt(start) === 32) start++;
  return authorization.slice(start);
}

/** Three base64url parts: a JWT, not an opaque API key. */
export function looksLikeJwt(value: string): boolean {
  const first = value.indexOf('.');
  const second = first > 0 ? value.indexOf('.', first + 1) : -1;
  return second > first + 1 && value.indexOf('.', second + 1) === -1;
}

/** The API key a request presents: X-API-Key, else (where the route allows it) the bearer token. */
export function presentedApiKey(headers: Headers, allowBearer: boolean): string | undefined {
  const key = singleHeader(headers['x-api-key']);
  return key === undefined && allowBearer ? bearerToken(headers) : key;
}

/** jwt_or_apikey: a bearer JWT and no X-API-Key is checked as a token; anything else as an API key. */
export function readsBearerJwt(headers: Headers): boolean {
  const bearer = bearerToken(headers);
  return bearer !== undefined && looksLikeJwt(bearer) && singleHeader(headers['x-api-key']) === undefined;
}

/**
 * An OAuth scope-token (RFC 6749 §3.3): visible ASCII but `"` and `\`. Scopes reach the origin
 * space-separated in one header, so anything else (a space, CR/LF, non-ASCII) could read as other
 * scopes there or make the header invalid.
 */
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

function isScopeToken(value: unknown): value is string {
  return typeof value === 'string' && SCOPE_TOKEN.test(value);
}

/** OAuth scopes of a token: `scope` (space-separated) or `scp` (a list); what is no scope-token is dropped. */
export function scopesOf(payload: Claims): string[] {
  const scope = payload['scope'];
  if (typeof scope === 'string') return scope.split(' ').filter(isScopeToken);
  const scp = payload['scp'];
  if (Array.isArray(scp)) return scp.filter(isScopeToken);
  return [];
}

/** OIDC Core §2: a `sub` is at most 255 ASCII characters; printable here, no edge spaces, as it goes in a header. */
const FORWARDABLE_SUBJECT = /^(?=[\x21-\x7e])[\x20-\x7e]{1,255}(?<=[\x21-\x7e])$/;

/**
 * A user token's `sub` the origin can be told (X-VantageEdge-User-Id): null when it can; else a 401,
 * since a subject the origin request cannot carry would fail there and count against the origin.
 */
export function subjectRefusal(sub: unknown): Refusal | null {
  if (typeof sub === 'string' && FORWARDABLE_SUBJECT.test(sub)) return null;
  return {
    code: 'invalid_token',
    message: "the bearer token's sub must be 1 to 255 printable ASCII characters",
  };
}

/**
 * Clerk session tokens: the active org and its permissions, read as Clerk's SDK reads them
 * (`__experimental_JWTPayloadToAuthObjectProperties` of @clerk/shared, as the admin API does): a v2
 * token (`v: 2`) from its `o` claim and the org features of `fea`, any other from `org_id` and
 * `org_permissions` — never from the other format's claims beside them, which only custom session
 * claims (perhaps built from what a user may edit) can put there. Permissions are the user's in the
 * token's active org, which anyone can create and hold every permission in: they are scopes only when
 * that org is the tenant's (`tenantOrgId`), so a user of another org (on a route that admits one) or at
 * a tenant without an org has none.
 */
export function clerkClaims(
  payload: Claims,
  tenantOrgId: string | null,
): { orgId: string | undefined; scopes: string[] } {
  const { orgId, permissions } = payload['v'] === 2 ? v2Organisation(payload) : v1Organisation(payload);
  const orgScopes = tenantOrgId !== null && orgId === tenantOrgId ? permissions.filter(isScopeToken) : [];
  return { orgId, scopes: [...scopesOf(payload), ...orgScopes] };
}

interface ClerkOrganisation {
  orgId: string | undefined;
  permissions: readonly unknown[];
}

function v1Organisation(payload: Claims): ClerkOrganisation {
  return {
    orgId: typeof payload['org_id'] === 'string' ? payload['org_id'] : undefined,
    permissions: Array.isArray(payload['org_permissions']) ? payload['org_permissions'] : [],
  };
}

function v2Organisation(payload: Claims): ClerkOrganisation {
  const o = payload['o'];
  if (typeof o !== 'object' || o === null) return { orgId: undefined, permissions: [] };
  const { id, per, fpm } = o as Record<string, unknown>;
  return {
    orgId: typeof id === 'string' ? id : undefined,
    permissions: featurePermissions(per, fpm, payload['fea']),
  };
}

/**
 * A v2 token's org permissions: `org:<feature>:<permission>` for each org feature of `fea`
 * (`o:invoices`, `ou:reports`) and each permission of `o.per` its bit is set for in that feature's
 * decimal bit map of `o.fpm` (lowest bit: the first permission). A claim written wrong grants nothing.
 */
function featurePermissions(per: unknown, fpm: unknown, fea: unknown): string[] {
  if (typeof per !== 'string' || typeof fpm !== 'string' || typeof fea !== 'string') return [];
  if (per === '' || fpm === '') return [];
  const permissions = per.split(',').map((permission) => permission.trim());
  const bitMaps = fpm.split(',').map((bits) => bits.trim());
  const granted: string[] = [];
  for (const [index, feature] of orgFeatures(fea).entries()) {
    const bitMap = bitMaps[index];
    if (bitMap === undefined || !/^\d+$/.test(bitMap)) continue;
    const bits = BigInt(bitMap);
    for (const [bit, permission] of permissions.entries())
      if ((bits >> BigInt(bit)) & 1n) granted.push(`org:${feature}:${permission}`);
  }
  return granted;
}

/** The org-scoped features of a `fea` claim (`o:` and `ou:`/`uo:` entries); none when one has no scope. */
function orgFeatures(fea: string): string[] {
  const features: string[] = [];
  for (const entry of fea.split(',')) {
    const part = entry.trim();
    const colon = part.indexOf(':');
    if (colon === -1) return [];
    const scope = part.slice(0, colon);
    if (scope === 'o' || scope === 'ou' || scope === 'uo') features.push(part.slice(colon + 1));
  }
  return features;
}

export type Refusal = { code: string; message: string };

/**
 * Clerk is one issuer for every tenant, so a verified Clerk token only says who the user is, not that
 * they belong here. A route accepts the tenant's own users: the members of its Clerk org (when it has
 * one and the route requires it), or, for a tenant without an org, the users in its user list.
 * `allow_any_authenticated_user` opts a route out. Null when admitted; a refusal is a 403.
 */
export function clerkUserRefusal(
  tenant: { clerkOrgId: string | null; hasUser: (clerkUserId: string) => boolean },
  route: { allow_any_authenticated_user: boolean; require_tenant_org: boolean },
  user: { userId?: string | undefined; orgId?: string | undefined },
): Refusal | null {
  if (route.allow_any_authenticated_user) return null;
  if (tenant.clerkOrgId !== null) {
    if (route.require_tenant_org && user.orgId !== tenant.clerkOrgId) {
      return {
        code: 'wrong_organization',
        message: "the token does not belong to this tenant's organization",
      };
    }
    return null;
  }
  if (user.userId === undefined || !tenant.hasUser(user.userId)) {
    return { code: 'not_a_tenant_user', message: "the token's user is not a user of this tenant" };
  }
  return null;
}

const NO_AUTHORIZED_PARTY: Refusal = {
  code: 'invalid_token',
  message:
    'the bearer token names no authorized party (azp): this route takes only tokens minted for its apps',
};
const FOREIGN_AUTHORIZED_PARTY: Refusal = {
  code: 'invalid_token',
  message: 'the bearer token was minted for an app (azp) whose tokens this route does not take',
};

/**
 * A Clerk session token's `azp` (the origin of the page it was minted for) against the apps whose
 * tokens the route takes: the tenant's settings.authorized_parties, else the gateways'
 * CLERK_AUTHORIZED_PARTIES; null takes any. Every tenant's app signs in with the same Clerk instance,
 * so a page of one tenant can obtain a token for its visitor: only the azp says for which app it was
 * minted. With a list, a token without azp is refused too. Null when taken; a refusal is a 401.
 */
export function authorizedPartyRefusal(parties: ReadonlySet<string> | null, azp: unknown): Refusal | null {
  if (parties === null) return null;
  if (typeof azp !== 'string') return NO_AUTHORIZED_PARTY;
  return parties.has(azp) ? null : FOREIGN_AUTHORIZED_PARTY;
}

/** A verified service token's claims against its service: null when they hold; a refusal is a 401. */
export function serviceClaimsRefusal(payload: Claims, serviceId: string, maxSeconds: number): Refusal | null {
  const invalid = (message: string) => ({ code: 'invalid_token', message });
  if (payload['sub'] !== serviceId)
    return invalid("the service token's sub is not the service its key belongs to");
  if (payload['iss'] !== undefined && payload['iss'] !== payload['sub']) {
    return invalid('a service token must have iss equal to sub');
  }
  if ((payload['exp'] as number) - (payload['iat'] as number) > maxSeconds) {
    return invalid('the service token lives too long');
  }
  return null;
}

/** The first scope of `required` that `granted` lacks, if any (a 403 insufficient_scope). */
export function missingScope(required: readonly string[], granted: readonly string[]): string | undefined {
  if (required.length === 1 || granted.length <= SCANNED_SCOPES) {
    for (const scope of required) if (!granted.includes(scope)) return scope;
    return undefined;
  }
  const indexed = indexedScopes(granted);
  for (const scope of required) if (!indexed.has(scope)) return scope;
  return undefined;
}

/**
 * A granted list longer than this is looked up in a Set. A route may require 50 scopes and a token of
 * the tenant's own OIDC issuer carry thousands: 50 scans of such a list cost ≈260 µs per request. The
 * Set is made once per list: a verified token's identity is reused while the token is cached.
 */
const SCANNED_SCOPES = 16;
const scopeSets = new WeakMap<readonly string[], ReadonlySet<string>>();

function indexedScopes(granted: readonly string[]): ReadonlySet<string> {
  let indexed = scopeSets.get(granted);
  if (indexed === undefined) {
    indexed = new Set(granted);
    scopeSets.set(granted, indexed);
  }
  return indexed;
}
