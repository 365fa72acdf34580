import { repeatedMemberName } from './repeated-member-names.js';

const PART_NAMES = ['header', 'payload'] as const;

/**
 * The first header parameter or claim a compact JWT names twice, as `header.alg` or `payload.sub`;
 * undefined when each is named once (or a part is no JSON: that is the verifier's to refuse). RFC 7515
 * §4 and RFC 7519 §4 let a parser keep the last of a repeated name, as jose does, but an origin or a log
 * reading the forwarded token may keep the first: such a token is refused before it is verified.
 */
export function repeatedJwtMember(token: string): string | undefined {
  const parts = token.split('.', 2);
  return repeatedJwtPartMember(parts.map((part) => Buffer.from(part, 'base64url').toString('utf8')));
}

/** repeatedJwtMember of a JWT's header and payload already decoded to text. */
export function repeatedJwtPartMember(texts: readonly string[]): string | undefined {
  for (const [index, part] of PART_NAMES.entries()) {
    const text = texts[index];
    if (text === undefined) return undefined;
    const path = repeatedMemberName(text);
    if (path !== undefined) return [part, ...path].join('.');
  }
  return undefined;
}
