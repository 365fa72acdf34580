import { isMachineTokenByPrefix } from '@clerk/backend/internal';
import { clerkMiddleware, getAuth } from '@clerk/express';
import { compactJwsRefusal } from '@vantageedge/shared/json/compact-jws-refusal';
import type { Request, RequestHandler, Response } from 'express';
import { ApiError } from '../http/errors.js';
import type { Caller } from './caller.js';
import { sessionRefusal } from './session-refusal.js';
import { clerkSigningKeyIds, createSigningKeyGate } from './signing-key-gate.js';

const UNUSED_SECRET_KEY = 'sk_live_unused_networkless_verification';
const CLERK_AUTH_MESSAGE_HEADER = 'x-clerk-auth-message';

/**
 * A well-formed publishable key for networkless verification (CLERK_JWT_KEY set, no Clerk frontend):
 * Clerk refuses to run without one. A pk_live_ key also keeps Clerk's dev-instance behaviour off.
 */
export const NETWORKLESS_PUBLISHABLE_KEY = `pk_live_${Buffer.from('offline.clerk.accounts.dev$').toString('base64')}`;

export interface ClerkAuthOptions {
  /** PEM (SPKI) public key of the Clerk instance: verifies session tokens with no network call. */
  jwtKey?: string | undefined;
  /** Clerk secret key: used to fetch the instance's JWKS when no jwtKey is set. */
  secretKey?: string | undefined;
  publishableKey: string;
  /** The instance's `iss` (CLERK_ISSUER): a token naming another issuer is refused. */
  issuer: string;
  /** Allowed `azp` values (CONTROL_PLANE_AUTHORIZED_PARTIES); when empty any azp is accepted (Clerk's behaviour). */
  authorizedParties: readonly string[];
  platformAdminUserIds: ReadonlySet<string>;
  /** Accept tokens of the local development key pair (claim DEV_TOKEN_CLAIM); only in dev mode. */
  allowDevTokens?: boolean;
}

/** The claim `make dev-token` puts in development tokens (services/dev/src/dev-keys.ts). */
const DEV_TOKEN_CLAIM = 'vantageedge_dev';

/**
 * Clerk verification, then our own 401: @clerk/express marks bad or missing tokens as "signed out"
 * and lets the request through (and its deprecated requireAuth redirects), so the admin API answers
 * 401 itself and puts the verified Caller on res.locals.caller.
 */
export function createCallerMiddleware(options: ClerkAuthOptions): RequestHandler[] {
  const clerk = clerkMiddleware({
    publishableKey: options.publishableKey,
    ...(options.jwtKey ? { jwtKey: options.jwtKey } : {}),
    // Clerk insists on a secret key even when it verifies networklessly with jwtKey and never uses it.
    secretKey: options.secretKey ?? UNUSED_SECRET_KEY,
    issuer: options.issuer,
    ...(options.authorizedParties.length > 0 ? { authorizedParties: [...options.authorizedParties] } : {}),
  });
  const requireCaller: RequestHandler = (req, res, next) => {
    // Clerk's debug header quotes the refused token's claims next to the values expected (the issuer,
    // every authorized party); the reason code it also sets goes into the 401's details instead.
    res.removeHeader(CLERK_AUTH_MESSAGE_HEADER);
    // Pending sessions are refused below with the reason, rather than looking signed out.
    const auth = getAuth(req, { treatPendingAsSignedOut: false });
    if (!auth.isAuthenticated || !auth.userId) {
      const reason = res.getHeader('x-clerk-auth-reason');
      next(sessionTokenMissing(res, typeof reason === 'string' ? reason : undefined));
      return;
    }
    const refusal = sessionRefusal(auth);
    if (refusal !== null) {
      next(sessionTokenMissing(res, refusal));
      return;
    }
    if (!options.allowDevTokens && auth.sessionClaims?.[DEV_TOKEN_CLAIM] !== undefined) {
      next(new ApiError(401, 'unauthenticated', 'development tokens are only accepted in dev mode'));
      return;
    }
    const caller: Caller = {
      userId: auth.userId,
      isPlatformAdmin: options.platformAdminUserIds.has(auth.userId),
      orgId: auth.orgId ?? null,
      orgRole: auth.orgRole ?? null,
    };
    res.locals['caller'] = caller;
    next();
  };
  if (options.jwtKey) return [bearerOnly, sessionTokenRequired, strictJws, clerk, requireCaller];
  // Verified through Clerk's JWKS: a token naming a key the instance does not have never reaches Clerk.
  const knownSigningKey = createSigningKeyGate(clerkSigningKeyIds(options.secretKey ?? UNUSED_SECRET_KEY));
  const signingKeyKnown: RequestHandler = async (req, res, next) => {
    if (await knownSigningKey(presentedToken(req))) next();
    else next(sessionTokenMissing(res, 'not signed by a key of this Clerk instance'));
  };
  return [bearerOnly, sessionTokenRequired, strictJws, signingKeyKnown, clerk, requireCaller];
}

/**
 * The admin API takes its session token from `Authorization: Bearer` only, never from Clerk's
 * `__session` cookie (which @clerk/express reads too). A browser attaches cookies to requests other
 * sites make it send: a form or `fetch(…, {mode: 'no-cors', credentials: 'include'})` from a page under
 * the same site (a tenant's own pages at <tenant>.<base domain>) could revoke a signed-in admin's keys.
 * A header is only ever set by the page's own code (the console sends it).
 */
const bearerOnly: RequestHandler = (req, _res, next) => {
  delete req.headers.cookie;
  // Clerk reads the scheme `Bearer` exactly; RFC 9110 §11.1 has it in any case.
  const token = bearerCredentials(req.headers.authorization);
  if (token !== undefined) req.headers.authorization = `Bearer ${token}`;
  next();
};

/** `<scheme> <token>`, the scheme `Bearer` in any case, nothing after the token (RFC 6750 §2.1). */
const BEARER_CREDENTIALS = /^bearer +(\S+) *$/i;

function bearerCredentials(authorization: string | undefined): string | undefined {
  return authorization === undefined ? undefined : BEARER_CREDENTIALS.exec(authorization)?.[1];
}

/**
 * Clerk is asked only about a session token in Authorization. @clerk/express also accepts Clerk's
 * machine tokens and, with no token in the header, runs its browser handshake: an opaque machine token
 * (`ak_…`, `mt_…`, `oat_…`) or a `?__clerk_handshake_nonce=` made it call Clerk's Backend API (with
 * CLERK_SECRET_KEY when the environment has it), once per request of any client, before any rate limit.
 * The token is read from Authorization as Clerk reads it (`Bearer <token>`, or the bare value).
 */
const sessionTokenRequired: RequestHandler = (req, res, next) => {
  const presented = presentedToken(req);
  const issue =
    presented === ''
      ? req.headers.authorization
        ? 'not one bearer token (Authorization: Bearer <token>)'
        : 'no bearer token'
      : isMachineTokenByPrefix(presented)
        ? 'a Clerk machine token: the admin API accepts session tokens only'
        : null;
  if (issue === null) {
    next();
    return;
  }
  next(sessionTokenMissing(res, issue));
};

/**
 * Clerk's verifier reads a token's parts leniently (`=` padding) and ignores `crit`, which RFC 7515
 * §4.1.11 has a recipient refuse when it does not understand the extensions listed (we understand
 * none); it keeps the last of a member named twice. Such a token is refused before any key is looked
 * up or signature checked (compact-jws-refusal.ts), as the gateways refuse it.
 */
const strictJws: RequestHandler = (req, res, next) => {
  const refusal = compactJwsRefusal(presentedToken(req));
  next(refusal === undefined ? undefined : sessionTokenMissing(res, refusal));
};

/**
 * The token in Authorization: `Bearer <token>` or, as Clerk reads it, the bare value; '' when none, and
 * for anything else (another scheme, words after the token: never read as the token before them).
 */
function presentedToken(req: Request): string {
  const authorization = req.headers.authorization ?? '';
  return authorization.includes(' ') ? (bearerCredentials(authorization) ?? '') : authorization;
}

/** 401 for a request without a valid session token, with why when known. */
function sessionTokenMissing(res: Response, issue: string | undefined): ApiError {
  res.setHeader('WWW-Authenticate', 'Bearer');
  return new ApiError(
    401,
    'unauthenticated',
    'a valid Clerk session token is required (Authorization: Bearer <token>)',
    issue === undefined ? [] : [{ field: 'authorization', issue }],
  );
}

/** The verified caller of a request that passed the caller middleware. */
export function callerOf(res: Response): Caller {
  const caller = res.locals['caller'] as Caller | undefined;
  if (!caller) throw new ApiError(401, 'unauthenticated', 'no authenticated caller');
  return caller;
}
