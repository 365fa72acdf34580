import { createSign, KeyObject } from 'node:crypto';
import type { CryptoKey } from 'jose';

/** Signs a JWS signing input (`<header>.<payload>`) with RS256. */
export const rs256Signer =
  (key: CryptoKey) =>
  (input: string): Buffer =>
    createSign('sha256').update(input).sign(KeyObject.from(key));

const encode = (text: string) => Buffer.from(text).toString('base64url');
const decode = (part: string) => Buffer.from(part, 'base64url').toString('utf8');
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** JSON text whose base64url leaves unused bits (its length is no multiple of 3): trailing spaces are JSON. */
function needingPadding(json: string): string {
  let text = json;
  while (Buffer.byteLength(text) % 3 === 0) text += ' ';
  return text;
}

function padded(part: string): string {
  if (part.length % 4 === 0) throw new Error(`${part} needs no padding`);
  return part.padEnd(part.length + 4 - (part.length % 4), '=');
}

/** The same bytes with an unused bit of the last character set: decoders that ignore those bits read no change. */
function withUnusedBitSet(part: string): string {
  if (part.length % 4 === 0) throw new Error(`${part} has no unused bits`);
  const last = ALPHABET.indexOf(part.at(-1)!);
  return `${part.slice(0, -1)}${ALPHABET[last | 1]}`;
}

/**
 * Tokens made from a valid compact JWS that a strict verifier refuses although each is signed with the
 * right key over exactly its own signing input: only a check of the JWS's form can refuse them. Keyed by
 * what is wrong with each.
 */
export function hostileJwsVariants(token: string, sign: (input: string) => Buffer): Record<string, string> {
  const [headerPart, payloadPart] = token.split('.') as [string, string, string];
  const headerText = decode(headerPart);
  const payloadText = decode(payloadPart);
  const header = JSON.parse(headerText) as Record<string, unknown>;
  const payload = JSON.parse(payloadText) as Record<string, unknown>;
  const signed = (header: string, payload: string, signature = (encoded: string) => encoded) => {
    const input = `${header}.${payload}`;
    return `${input}.${signature(sign(input).toString('base64url'))}`;
  };
  const withHeader = (extra: Record<string, unknown>) => encode(JSON.stringify({ ...header, ...extra }));
  // A payload whose signature has a `-` or `_`, so its base64 (not base64url) text differs.
  let spaced = payloadText;
  while (!/[-_]/.test(signed(headerPart, encode(spaced)).split('.')[2]!)) spaced += ' ';
  return {
    'crit naming an extension': signed(
      withHeader({ crit: ['urn:example:ext'], 'urn:example:ext': true }),
      payloadPart,
    ),
    'crit empty': signed(withHeader({ crit: [] }), payloadPart),
    'crit not an array': signed(withHeader({ crit: 'exp' }), payloadPart),
    'a header parameter named twice': signed(
      encode(headerText.replace(/^\{/, `{"alg":${JSON.stringify(header['alg'])},`)),
      payloadPart,
    ),
    'a claim named twice': signed(
      headerPart,
      encode(payloadText.replace(/^\{/, `{"sub":${JSON.stringify(payload['sub'])},`)),
    ),
    'a padded header': signed(padded(encode(needingPadding(headerText))), payloadPart),
    'a padded payload': signed(headerPart, padded(encode(needingPadding(payloadText)))),
    'a padded signature': signed(headerPart, payloadPart, padded),
    'a signature in base64 (+ and /)': signed(headerPart, encode(spaced), (signature) =>
      signature.replaceAll('-', '+').replaceAll('_', '/'),
    ),
    'a header with an unused bit set': signed(
      withUnusedBitSet(encode(needingPadding(headerText))),
      payloadPart,
    ),
    'a signature with an unused bit set': signed(headerPart, payloadPart, withUnusedBitSet),
  };
}
