import { describe, expect, it } from 'vitest';
import { repeatedJwtMember } from './jwt-repeated-members.js';

const part = (text: string) => Buffer.from(text).toString('base64url');

describe('repeatedJwtMember', () => {
  it('names a header parameter named twice', () => {
    expect(repeatedJwtMember(`${part('{"alg":"none","alg":"RS256"}')}.${part('{"sub":"a"}')}.sig`)).toBe(
      'header.alg',
    );
  });

  it('names a claim named twice, also through an escape or inside a claim object', () => {
    expect(repeatedJwtMember(`${part('{"alg":"RS256"}')}.${part('{"sub":"a","\\u0073ub":"b"}')}.sig`)).toBe(
      'payload.sub',
    );
    expect(repeatedJwtMember(`${part('{"alg":"RS256"}')}.${part('{"o":{"id":"a","id":"b"}}')}.sig`)).toBe(
      'payload.o.id',
    );
  });

  it('finds nothing in a token naming each once, nor in one that is no JWT', () => {
    expect(repeatedJwtMember(`${part('{"alg":"RS256","kid":"k"}')}.${part('{"sub":"a","aud":"b"}')}.s`)).toBe(
      undefined,
    );
    for (const token of ['', 'abc', '..', `${part('{"alg":')}.x.y`, '%%%.%%%.%%%']) {
      expect(repeatedJwtMember(token)).toBeUndefined();
    }
  });
});
