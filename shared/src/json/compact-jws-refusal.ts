import { repeatedJwtPartMember } from './jwt-repeated-members.js';

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

/** A JSON object, as JWT verifiers take a header or a claims set. */
export type JwtJsonObject = Readonly<Record<string, unknown>>;

/**
 * A compact JWS (a JWT) decoded once, for its form to be judged and its claims read from the same parse.
 * `header` and `claims` are what verifiers (jose, Clerk's SDK) read from its canonical parts: strict
 * UTF-8 (a leading byte order mark dropped) parsed to a JSON object; undefined where that fails, and
 * for a token refused before its parts are decoded (not three parts, or one not base64url).
 */
export interface CompactJws {
  /** Why its form is refused (compactJwsRefusal); undefined when it is strict. */
  readonly refusal: string | undefined;
  readonly header: JwtJsonObject | undefined;
  readonly claims: JwtJsonObject | undefined;
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
  return readCompactJws(token).refusal;
}

/** The token decoded once: its refusal as compactJwsRefusal gives it, its header and its claims. */
export function readCompactJws(token: string): CompactJws {
  const parts = token.split('.');
  if (parts.length !== 3) return undecoded('the bearer token is not a JWT (three base64url parts)');
  for (const [index, part] of parts.entries()) {
    if (!isCanonicalBase64url(part))
      return undecoded(`the bearer token's ${PART_NAMES[index]} is not base64url`);
  }
  const header = decodedPart(parts[0]!);
  const payload = decodedPart(parts[1]!);
  // `crit` is looked for in what the header's bytes read as, even when they are not strict UTF-8.
  const headerObject = jsonObject(header.text);
  const claims = payload.utf8 ? jsonObject(payload.text) : undefined;
  return {
    refusal: strictFormRefusal(headerObject, header.text, payload.text),
    header: header.utf8 ? headerObject : undefined,
    claims,
  };
}

function strictFormRefusal(
  header: JwtJsonObject | undefined,
  headerText: string,
  payloadText: string,
): string | undefined {
  if (header !== undefined && Object.hasOwn(header, 'crit')) {
    return "the bearer token's header marks extensions critical (crit), which are not understood here";
  }
  const repeated = repeatedJwtPartMember([headerText, payloadText]);
  return repeated === undefined ? undefined : `the bearer token names ${repeated} more than once`;
}

function undecoded(refusal: string): CompactJws {
  return { refusal, header: undefined, claims: undefined };
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
const lenientUtf8 = new TextDecoder('utf-8');

/** A canonical part's bytes as text: strict UTF-8 when they are, else with replacement characters. */
function decodedPart(part: string): { text: string; utf8: boolean } {
  const bytes = Buffer.from(part, 'base64url');
  try {
    return { text: strictUtf8.decode(bytes), utf8: true };
  } catch {
    return { text: lenientUtf8.decode(bytes), utf8: false };
  }
}

function jsonObject(text: string): JwtJsonObject | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
    ? (parsed as JwtJsonObject)
    : undefined;
}
