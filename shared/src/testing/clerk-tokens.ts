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
}

const withPrefix = (role: string) => (role.startsWith('org:') ? role : `org:${role}`);
const withoutPrefix = (role: string) => (role.startsWith('org:') ? role.slice(4) : role);

/** Signs a Clerk session token (RS256) with the claims Clerk puts in v1 or v2 tokens. */
export async function signClerkToken(keys: ClerkTestKeys, claims: ClerkTokenClaims): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const payload: Record<string, unknown> = {
    sid: claims.sessionId ?? `sess_${randomUUID().replaceAll('-', '').slice(0, 24)}`,
    iss: claims.issuer ?? 'https://offline.clerk.accounts.dev',
    ...(claims.azp ? { azp: claims.azp } : {}),
    ...(claims.actorUserId ? { act: { sub: claims.actorUserId } } : {}),
  };
  const version = claims.version ?? 2;
  if (version === 2) {
    payload['v'] = 2;
    if (claims.orgId) {
      payload['o'] = {
        id: claims.orgId,
        rol: withoutPrefix(claims.orgRole ?? 'member'),
        slg: claims.orgSlug ?? claims.orgId,
        per: '',
        fpm: '',
      };
    }
  } else if (claims.orgId) {
    payload['org_id'] = claims.orgId;
    payload['org_role'] = withPrefix(claims.orgRole ?? 'member');
    payload['org_slug'] = claims.orgSlug ?? claims.orgId;
    payload['org_permissions'] = [];
  }
  return new SignJWT(payload)
    .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: keys.kid })
    .setSubject(claims.userId)
    .setIssuedAt(now)
    .setNotBefore(now + (claims.notBeforeInSeconds ?? 0))
    .setExpirationTime(now + (claims.expiresInSeconds ?? 300))
    .sign(keys.privateKey);
}

/** A syntactically valid publishable key for an offline instance (Clerk requires one to be set). */
export const OFFLINE_CLERK_PUBLISHABLE_KEY = `pk_live_${Buffer.from('offline.clerk.accounts.dev$').toString('base64')}`;
