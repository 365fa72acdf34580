import { randomUUID } from 'node:crypto';
import { type CryptoKey, exportSPKI, generateKeyPair, SignJWT } from 'jose';

/**
 * Clerk-shaped session tokens for tests and local development, signed with a key pair generated here.
 * Give `publicKeyPem` to the verifier as CLERK_JWT_KEY (networkless verification).
 * Clerk's PEM loader only understands RSA-2048 with e=65537, so that is what we generate.
 */
export interface ClerkTestKeys {
  privateKey: CryptoKey;
  publicKeyPem: string;
  kid: string;
}

export async function createClerkTestKeys(): Promise<ClerkTestKeys> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', {
    modulusLength: 2048,
    extractable: true,
  });
  return {
    privateKey,
    publicKeyPem: await exportSPKI(publicKey),
    kid: `ins_test_${randomUUID().slice(0, 8)}`,
  };
}

export interface ClerkTokenClaims {
  /** Clerk user id (`sub`). */
  userId: string;
  /** Active organisation id; omit for a token without an active org. */
  orgId?: string;
  /** Org role: "admin" / "member" or the full "org:admin" form. */
  orgRole?: string;
  orgSlug?: string;
  /** 1: org_id/org_role/org_slug/org_permissions claims. 2 (default): the `o` claim object. */
  version?: 1 | 2;
  /** Authorized party (`azp`), e.g. the admin UI's origin. */
  azp?: string;
  issuer?: string;
  sessionId?: string;
  /** Seconds from now; negative for an already expired token. Default 300. */
  expiresInSeconds?: number;
  /** Seconds from now until the token becomes valid (nbf); default 0. */
  notBeforeInSeconds?: number;
  /** An impersonation session's impersonator (Clerk's `act` claim, `{ sub }`). */
  actorUserId?: string;
  /** Session status (v2 `sts`): `pending` while the user has sign-in tasks left (e.g. choosing an org). */
  sessionStatus?: 'active' | 'pending';
  /** Custom session claims (Clerk's "Customize session token"); Clerk's own claims win over them. */
  customClaims?: Record<string, unknown>;
  /** v2: the active org's permission names (`o.per`) and each feature's decimal bit map of them (`o.fpm`). */
  orgPermissions?: { per: string; fpm: string };
}

/** The `cat` header Clerk tags its tokens with: a session token, or a JWT template's token. */
export const CLERK_SESSION_TOKEN_CATEGORY = 'cl_B7d4PD111AAA';
export const CLERK_JWT_TEMPLATE_CATEGORY = 'cl_B7d4PD222AAA';

const withPrefix = (role: string) => (role.startsWith('org:') ? role : `org:${role}`);
const withoutPrefix = (role: string) => (role.startsWith('org:') ? role.slice(4) : role);

/** The `iss` of tokens signed here unless told otherwise: give it to the verifier as CLERK_ISSUER. */
export const OFFLINE_CLERK_ISSUER = 'https://offline.clerk.accounts.dev';

/**
 * Signs a Clerk session token (RS256) as Clerk mints them: the session-token `cat` header, `sid`,
 * `fva`, and the v1 org claims or the v2 `v`, `sts` and `o` claims.
 */
export async function signClerkToken(keys: ClerkTestKeys, claims: ClerkTokenClaims): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const payload: Record<string, unknown> = {
    ...claims.customClaims,
    sid: claims.sessionId ?? `sess_${randomUUID().replaceAll('-', '').slice(0, 24)}`,
    iss: claims.issuer ?? OFFLINE_CLERK_ISSUER,
    // Minutes since the first factor was verified; -1: no second factor.
    fva: [0, -1],
    ...(claims.azp ? { azp: claims.azp } : {}),
    ...(claims.actorUserId ? { act: { sub: claims.actorUserId } } : {}),
  };
  const version = claims.version ?? 2;
  if (version === 2) {
    payload['v'] = 2;
    payload['sts'] = claims.sessionStatus ?? 'active';
    if (claims.orgId) {
      payload['o'] = {
        id: claims.orgId,
        rol: withoutPrefix(claims.orgRole ?? 'member'),
        slg: claims.orgSlug ?? claims.orgId,
        per: claims.orgPermissions?.per ?? '',
        fpm: claims.orgPermissions?.fpm ?? '',
      };
    }
  } else if (claims.orgId) {
    payload['org_id'] = claims.orgId;
    payload['org_role'] = withPrefix(claims.orgRole ?? 'member');
    payload['org_slug'] = claims.orgSlug ?? claims.orgId;
    payload['org_permissions'] = [];
  }
  return new SignJWT(payload)
    .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: keys.kid, cat: CLERK_SESSION_TOKEN_CATEGORY })
    .setSubject(claims.userId)
    .setIssuedAt(now)
    .setNotBefore(now + (claims.notBeforeInSeconds ?? 0))
    .setExpirationTime(now + (claims.expiresInSeconds ?? 300))
    .sign(keys.privateKey);
}

export interface ClerkTemplateTokenClaims {
  userId: string;
  azp?: string;
  /** The template's own claims (e.g. Hasura's `https://hasura.io/jwt/claims`, or `org_id`/`o` copies). */
  claims?: Record<string, unknown>;
  /**
   * Whether the header carries the JWT-template `cat` (default true). Tokens minted before Clerk tagged
   * its tokens, or by instances that omit the tag, have none.
   */
  tagged?: boolean;
  /** Seconds from now; default 3600 (templates set lifetimes of their own). */
  expiresInSeconds?: number;
}

/**
 * Signs a token as a Clerk JWT template mints it (`session.getToken({ template })`) with the instance's
 * own key: the template's default claims (azp, exp, iat, iss, jti, nbf, sub) and its custom claims;
 * no `sid`, `sts` or `v`.
 */
export async function signClerkTemplateToken(
  keys: ClerkTestKeys,
  claims: ClerkTemplateTokenClaims,
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const header = {
    alg: 'RS256',
    typ: 'JWT',
    kid: keys.kid,
    ...((claims.tagged ?? true) ? { cat: CLERK_JWT_TEMPLATE_CATEGORY } : {}),
  };
  return new SignJWT({
    ...claims.claims,
    iss: OFFLINE_CLERK_ISSUER,
    ...(claims.azp ? { azp: claims.azp } : {}),
  })
    .setProtectedHeader(header)
    .setJti(randomUUID().replaceAll('-', '').slice(0, 20))
    .setSubject(claims.userId)
    .setIssuedAt(now)
    .setNotBefore(now)
    .setExpirationTime(now + (claims.expiresInSeconds ?? 3600))
    .sign(keys.privateKey);
}

/** A syntactically valid publishable key for an offline instance (Clerk requires one to be set). */
export const OFFLINE_CLERK_PUBLISHABLE_KEY = `pk_live_${Buffer.from('offline.clerk.accounts.dev$').toString('base64')}`;
