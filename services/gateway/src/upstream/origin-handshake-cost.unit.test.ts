import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import {
  createTestCa,
  issueTestCertificate,
  rsaKeysWithHugeExponent,
} from '@vantageedge/shared/testing/test-certificates';
import { describe, expect, it } from 'vitest';
import { signatureCheckMs } from './origin-handshake-cost.js';

describe('signatureCheckMs', () => {
  it('estimates an ordinary key at a fraction of a millisecond and one with a modulus-long exponent at ~100 times more', async () => {
    const ca = await createTestCa('Cost CA');
    const ec = await issueTestCertificate(ca, { dnsNames: ['ec.internal'] });
    const rsa = await issueTestCertificate(ca, { dnsNames: ['rsa.internal'], keyType: 'rsa' });
    const huge = await issueTestCertificate(ca, {
      dnsNames: ['huge.internal'],
      keyPair: await rsaKeysWithHugeExponent(3072),
    });
    const cost = (pem: string) => signatureCheckMs(new X509Certificate(pem).publicKey);
    expect(cost(ec.certificatePem)).toBeLessThan(0.5);
    expect(cost(rsa.certificatePem)).toBeLessThan(0.5);
    expect(cost(huge.certificatePem)).toBeGreaterThan(10);
    expect(cost(huge.certificatePem)).toBeGreaterThan(100 * cost(rsa.certificatePem));
  });

  it('estimates a key on a binary curve (sect571r1) at least twice secp521r1, as checking with it costs (≈ 2.3 times)', () => {
    const curve = (namedCurve: string) =>
      signatureCheckMs(generateKeyPairSync('ec', { namedCurve }).publicKey);
    expect(curve('sect571r1')).toBeGreaterThanOrEqual(2 * curve('secp521r1'));
  });
});
