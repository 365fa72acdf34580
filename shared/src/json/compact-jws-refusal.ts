import { repeatedJwtMember } from './jwt-repeated-members.js';

const BASE64URL_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const BASE64URL_CHARACTERS = /^[A-Za-z0-9_-]*$/;
const PART_NAMES = ['header', 'payload', 'signature'] as const;

/**
 * Whether `part` is the one base64url text of its bytes, as RFC 7515 §2 has a JWS's parts: the URL-safe
 * alphabet only (no `+`, `/` or whitespace), no `=` padding, and the unused bits of its last character
 * zero (RFC 4648 §3.5). Decoders differ on each, so a token read one way by the gateway could be read
 * another by an origin or a log.
 */
export function isCanonicalBase64url(part: string): boolean {
  if (!BASE64URL_CHARACTERS.test(part)) return false;
  const tail = part.length % 4;
  if (tail === 0) return true;
  if (tail === 1) return false;
  const last = BASE64URL_ALPHABET.indexOf(part[part.length - 1]!);
  return (last & (tail === 2 ? 0b1111 : 0b11)) === 0;
}

/**
 * Why a compact JWS (a JWT) is refused before its signature is checked, as a sentence about "the bearer
 * token"; undefined when its form is strict (whether it is valid is the verifier's to say):
 * - three parts, each canonical base64url (isCanonicalBase64url);
 * - no `crit` header parameter: RFC 7515 §4.1.11 has a recipient refuse a JWS marking as critical an
 *   extension it does not understand, and we understand none (an empty or non-array `crit` is invalid);
 * - no header parameter or claim named twice (jwt-repeated-members.ts).
 */
export function compactJwsRefusal(token: string): string | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return 'the bearer token is not a JWT (three base64url parts)';
  for (const [index, part] of parts.entries()) {
    if (!isCanonicalBase64url(part)) return `the bearer token's ${PART_NAMES[index]} is not base64url`;
  }
  if (hasCriticalExtensions(parts[0]!)) {
    return "the bearer token's header marks extensions critical (crit), which are not understood here";
  }
  const repeated = repeatedJwtMember(token);
  return repeated === undefined ? undefined : `the bearer token names ${repeated} more than once`;
}

function hasCriticalExtensions(header: string): boolean {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(header, 'base64url').toString('utf8'));
  } catch {
    return false; // No JSON: the verifier refuses it.
  }
  return typeof parsed === 'object' && parsed !== null && Object.hasOwn(parsed, 'crit');
}
