import { repeatedMemberName } from './repeated-member-names.js';

/**
 * The first header parameter or claim a compact JWT names twice, as `header.alg` or `payload.sub`;
 * undefined when each is named once (or a part is no JSON: that is the verifier's to refuse). RFC 7515
 * §4 and RFC 7519 §4 let a parser keep the last of a repeated name, as jose does, but an origin or a log
 * reading the forwarded token may keep the first: such a token is refused before it is verified.
 */
export function repeatedJwtMember(token: string): string | undefined {
  const parts = token.split('.', 2);
  for (const [index, part] of ['header', 'payload'].entries()) {
    const encoded = parts[index];
    if (encoded === undefined) return undefined;
    const path = repeatedMemberName(Buffer.from(encoded, 'base64url').toString('utf8'));
    if (path !== undefined) return [part, ...path].join('.');
  }
  return undefined;
}
