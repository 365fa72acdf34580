import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type JwksFetchOutcome, RemoteKeySet } from './jwks.js';

const publicJwk = () =>
  generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' });
const listed = publicJwk();
const other = publicJwk();

/** A key set served as this text, and the outcome of each of its fetches. */
function served(text: string) {
  const outcomes: JwksFetchOutcome[] = [];
  const set = new RemoteKeySet('https://idp.repeated.test/jwks', {
    fetch: async () => new Response(text, { headers: { 'content-type': 'application/json' } }),
    onFetch: (outcome) => outcomes.push(outcome),
  });
  return { set, outcomes };
}

/** A key's JSON with `extra` members spliced in after its own, e.g. `,"n":"…"`. */
const keyText = (kid: string, extra = '') =>
  JSON.stringify({ kty: 'RSA', kid, alg: 'RS256', use: 'sig', n: listed.n, e: listed.e }).replace(
    /}$/,
    `${extra}}`,
  );

/**
 * A key naming a member twice (two `n`, two `kid`) was read as JSON.parse reads it: the last value
 * silently, while a reviewer or another verifier may use the first. Such a key is left out of the set,
 * as a key the set did not list (RFC 7517 §5: keys that cannot be used are ignored), and the set's
 * other keys stay in use; a set naming one of its own members twice (two `keys`) is a failed fetch.
 */
describe('remote key sets naming a member twice', () => {
  it('regression: leaves out a key with two moduli (n), keeps the others', async () => {
    const { set, outcomes } = served(
      `{"keys":[${keyText('twice', `,"n":"${other.n}"`)},${keyText('once')}]}`,
    );
    expect(await set.jwk('twice')).toBeUndefined();
    expect(await set.jwk('once')).toMatchObject({ kid: 'once', n: listed.n });
    expect(outcomes).toEqual(['ok']);
  });

  it('regression: leaves out a key naming its kid twice, under either kid', async () => {
    const { set } = served(`{"keys":[${keyText('first', ',"kid":"second"')},${keyText('once')}]}`);
    expect(await set.jwk('second')).toBeUndefined();
    expect(await set.jwk('first')).toBeUndefined();
    expect(await set.jwk('once')).toMatchObject({ kid: 'once' });
  });

  it('regression: leaves out a key naming kty twice, also when one is escaped', async () => {
    const { set } = served(`{"keys":[${keyText('escaped', ',"\\u006bty":"oct"')},${keyText('once')}]}`);
    expect(await set.jwk('escaped')).toBeUndefined();
    expect(await set.jwk('once')).toMatchObject({ kid: 'once' });
  });

  it('regression: a set listing its keys twice is a failed fetch', async () => {
    const { set, outcomes } = served(`{"keys":[${keyText('first')}],"keys":[${keyText('second')}]}`);
    expect(await set.jwk('second')).toBeUndefined();
    expect(outcomes).toEqual(['failed']);
  });
});
