import { generateKeyPairSync } from 'node:crypto';
import { compactVerify, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { compileServiceAccounts, RemoteKeySet } from './jwks.js';

/** An RSA key pair: the private key signs, the public JWK is listed under `kid`. */
function keyPair(kid: string) {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    privateKey,
    jwk: { ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' as const },
  };
}

/** `verify` after `count` other distinct operation names: all strings, none twice. */
const longKeyOps = (count: number) => [...Array.from({ length: count }, (_, i) => `op${i}`), 'verify'];

const sign = (privateKey: Parameters<SignJWT['sign']>[0], kid: string) =>
  new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid }).setExpirationTime('5m').sign(privateKey);

/**
 * Regression test: jose judges each key's `key_ops` on every token, before it looks at the kid, with a
 * scan that grows with the square of the list's length (each entry is checked against those before it).
 * A key set listing one key with 9,900 operations (80 KB, within every bound of a set) cost a replica
 * ~120 ms of its event loop per token presented against the set, whatever key the token named, on the
 * thread every tenant's requests wait for. A key listing more operations than RFC 7517 §4.3 registers
 * (8, each at most once) is left out, as a key the set did not list; the set's other keys stay in use.
 */
describe('keys listing more key operations than there are', () => {
  const listed = keyPair('listed');
  const costly = keyPair('costly');

  it('regression: leaves such a key out of a fetched set, and keeps verifying with the others', async () => {
    const keys = [listed.jwk, { ...costly.jwk, key_ops: longKeyOps(9_900) }];
    const set = new RemoteKeySet('https://idp.key-ops.test/jwks', {
      fetch: async () => new Response(JSON.stringify({ keys })),
    });
    expect(await set.jwk('costly')).toBeUndefined();
    expect(await set.jwk('listed')).toMatchObject({ kid: 'listed' });
    await expect(compactVerify(await sign(listed.privateKey, 'listed'), set.getKey)).resolves.toBeDefined();
  });

  it('keeps a key listing the operations an identity provider lists', async () => {
    const keys = [
      { ...listed.jwk, key_ops: ['verify'] },
      { ...costly.jwk, key_ops: longKeyOps(7) },
    ];
    const set = new RemoteKeySet('https://idp.key-ops.test/jwks', {
      fetch: async () => new Response(JSON.stringify({ keys })),
    });
    expect(await set.jwk('listed')).toMatchObject({ kid: 'listed' });
    expect(await set.jwk('costly')).toMatchObject({ kid: 'costly' });
  });

  it("regression: leaves such a key out of a tenant's service accounts (stored before the control plane refused it)", () => {
    const warnings: string[] = [];
    const accounts = compileServiceAccounts(
      [
        {
          id: 'svc',
          keys: [
            { ...listed.jwk, kty: 'RSA' },
            { ...costly.jwk, kty: 'RSA', key_ops: longKeyOps(5_000) },
          ],
          scopes: [],
        },
      ],
      (message) => warnings.push(message),
    );
    expect([...accounts.keys()]).toEqual(['listed']);
    expect(warnings).toEqual([
      expect.stringMatching(/costly of svc ignored: its key_ops must list at most 8/),
    ]);
  });
});

/**
 * Regression test: a key set's keys of a type other than RSA, EC and OKP were handed to jose as listed.
 * jose verifies with ML-DSA keys (kty AKP) on a Node that has them, where they are still experimental:
 * a tenant listing an ML-DSA-87 key made each of its tokens cost a replica ~0.24 ms of CPU, as much as
 * an RSA-8192 key, which is left out for that cost. Keys of any type but RSA, EC and OKP are left out.
 */
describe('keys of a type tokens are not verified with', () => {
  it('regression: leaves an ML-DSA key (kty AKP) out of a fetched set, and keeps the others', async () => {
    const listed = keyPair('listed');
    const mlDsa = await generateKeyPair('ML-DSA-87', { extractable: true });
    const keys = [listed.jwk, { ...(await exportJWK(mlDsa.publicKey)), kid: 'ml-dsa', alg: 'ML-DSA-87' }];
    const set = new RemoteKeySet('https://idp.key-types.test/jwks', {
      fetch: async () => new Response(JSON.stringify({ keys })),
    });
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'ML-DSA-87', kid: 'ml-dsa' })
      .setExpirationTime('5m')
      .sign(mlDsa.privateKey);
    await expect(compactVerify(token, set.getKey)).rejects.toThrow();
    expect(await set.jwk('ml-dsa')).toBeUndefined();
    await expect(compactVerify(await sign(listed.privateKey, 'listed'), set.getKey)).resolves.toBeDefined();
  });
});
