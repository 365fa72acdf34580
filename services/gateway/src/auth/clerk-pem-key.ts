import type { JWK } from 'jose';

const PEM_HEADER = '-----BEGIN PUBLIC KEY-----';
const PEM_TRAILER = '-----END PUBLIC KEY-----';
/** The SPKI text before an RSA-2048 key's modulus, and after it when the exponent is 65537. */
const RSA_2048_PREFIX = 'MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA';
const RSA_65537_SUFFIX = 'IDAQAB';

/**
 * CLERK_JWT_KEY as Clerk's SDK reads it for networkless verification (its loadClerkJwkFromPem): the
 * PEM's text stripped to the modulus of an RSA-2048 key with exponent 65537, for RS256. Clerk issues
 * such keys; any other key reads as one that verifies no token, as it does for Clerk's verifyToken.
 */
export function clerkJwkFromPem(pem: string): JWK {
  const modulus = pem
    .replace(/\r\n|\n|\r/g, '')
    .replace(PEM_HEADER, '')
    .replace(PEM_TRAILER, '')
    .replace(RSA_2048_PREFIX, '')
    .replace(RSA_65537_SUFFIX, '')
    .replace(/\+/g, '-')
    .replace(/\//g, '_');
  return { kty: 'RSA', alg: 'RS256', n: modulus, e: 'AQAB' };
}
