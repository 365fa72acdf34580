import { randomUUID } from 'node:crypto';
import { createClerkTestKeys, signClerkToken } from '@vantageedge/shared/testing/clerk-tokens';
import { type CryptoKey, exportJWK, generateKeyPair, importSPKI, type JWK, SignJWT } from 'jose';

/** A key pair an identity provider may publish in its JWKS, and how to sign a token with it. */
export interface SigningKey {
  kid: string;
  jwk: JWK;
  /** A token for `subject` valid for an hour. */
  sign(subject: string): Promise<string>;
}

/** A fresh key of a tenant's OIDC provider (`issuer`, tokens for `audience`). */
export async function oidcSigningKey(issuer: string, audience: string): Promise<SigningKey> {
  const kid = `k-${randomUUID()}`;
  const pair = await generateKeyPair('RS256', { extractable: true });
  const privateKey: CryptoKey = pair.privateKey;
  return {
    kid,
    jwk: { ...(await exportJWK(pair.publicKey)), kid, alg: 'RS256', use: 'sig' },
    sign: (subject) =>
      new SignJWT({})
        .setProtectedHeader({ alg: 'RS256', kid })
        .setIssuer(issuer)
        .setAudience(audience)
        .setSubject(subject)
        .setExpirationTime('1h')
        .sign(privateKey),
  };
}

/** A fresh key of Clerk's, signing session tokens of members of `orgId`. */
export async function clerkSigningKey(orgId: string): Promise<SigningKey> {
  const keys = await createClerkTestKeys();
  const publicKey = await importSPKI(keys.publicKeyPem, 'RS256', { extractable: true });
  return {
    kid: keys.kid,
    jwk: { ...(await exportJWK(publicKey)), kid: keys.kid, alg: 'RS256', use: 'sig' },
    sign: (subject) => signClerkToken(keys, { userId: subject, orgId, expiresInSeconds: 3600 }),
  };
}
