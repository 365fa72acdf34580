import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type JwksFetchOutcome, RemoteKeySet } from './jwks.js';

const rsa4096 = generateKeyPairSync('rsa', { modulusLength: 4096 }).publicKey.export({ format: 'jwk' });
const jwk = { ...rsa4096, kid: 'k1', alg: 'RS256', use: 'sig' };

/** A key set served as this text, and the outcome of each of its fetches. */
function served(text: string) {
  const outcomes: JwksFetchOutcome[] = [];
  const set = new RemoteKeySet('https://idp.structure.test/jwks', {
    fetch: async () => new Response(text, { headers: { 'content-type': 'application/json' } }),
    onFetch: (outcome) => outcomes.push(outcome),
  });
  return { set, outcomes };
}

/**
 * Regression tests: a key set's text was handed to JSON.parse whatever its shape, on the thread every
 * request of the replica waits for. Within the 1 MiB bound, nested arrays or a long list of small
 * objects with distinct member names take it 0.5 s (1 MiB of long strings: ~5 ms), and a tenant's
 * clients can have every replica fetch the tenant's set once per cooldown. A set nesting deeper than 16
 * or holding more than 20,000 JSON tokens is now a failed fetch, refused before it is parsed.
 */
describe('remote key sets are bounded in structure before they are parsed', () => {
  it('regression: refuses a key set nested far deeper than a key set is', async () => {
    const nested = `${'['.repeat(1_000)}${']'.repeat(1_000)}`;
    const { set, outcomes } = served(`{"keys":[${JSON.stringify(jwk)}],"note":${nested}}`);
    expect(await set.jwk('k1')).toBeUndefined();
    expect(outcomes).toEqual(['failed']);
  });

  it('regression: refuses a key set holding more members and elements than 100 keys have', async () => {
    const objects = Array.from({ length: 20_000 }, (_, i) => `{"m${i}":0}`).join(',');
    const { set, outcomes } = served(`{"keys":[${JSON.stringify(jwk)}],"note":[${objects}]}`);
    expect(await set.jwk('k1')).toBeUndefined();
    expect(outcomes).toEqual(['failed']);
  });

  it('accepts the largest set an identity provider publishes: 100 keys with certificate chains', async () => {
    // Microsoft Entra's shape (x5c, x5t, issuer, cloud_instance_name), at the bound of 100 keys.
    const certificate = () => randomBytes(1_400).toString('base64');
    const keys = Array.from({ length: 100 }, (_, i) => ({
      ...jwk,
      kid: `entra-${i}`,
      key_ops: ['verify'],
      x5t: randomBytes(20).toString('base64url'),
      'x5t#S256': randomBytes(32).toString('base64url'),
      x5c: [certificate(), certificate(), certificate()],
      issuer: 'https://login.microsoftonline.com/{tenantid}/v2.0',
      cloud_instance_name: 'microsoftonline.com',
    }));
    const text = JSON.stringify({ keys }, null, 2);
    expect(text.length).toBeLessThan(1024 * 1024);
    const { set, outcomes } = served(text);
    expect(await set.jwk('entra-99')).toMatchObject({ kid: 'entra-99' });
    expect(outcomes).toEqual(['ok']);
  });

  it('reads on past a string that ends in an escaped backslash', async () => {
    const nested = `${'['.repeat(20)}${']'.repeat(20)}`;
    const { set, outcomes } = served(`{"keys":[${JSON.stringify(jwk)}],"a":"x\\\\","note":${nested}}`);
    expect(await set.jwk('k1')).toBeUndefined();
    expect(outcomes).toEqual(['failed']);
  });

  it('reads brackets, commas and colons inside strings as text', async () => {
    const note = `${'[{,:'.repeat(20_000)}\\"[`;
    const { set, outcomes } = served(JSON.stringify({ keys: [{ ...jwk, note }] }));
    expect(await set.jwk('k1')).toMatchObject({ kid: 'k1' });
    expect(outcomes).toEqual(['ok']);
  });
});
