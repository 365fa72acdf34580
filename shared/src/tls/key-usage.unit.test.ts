import 'reflect-metadata';
import { X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTestCa, type TestCa } from '../testing/test-certificates.js';
import { KEY_USAGES, type KeyUsage, keyUsagesOf } from './key-usage.js';

const KEY_USAGE_OID = '2.5.29.15';

let ca: TestCa;
beforeAll(async () => {
  ca = await createTestCa('Key usage reader CA');
});

/** A certificate whose key usage extension's value is `value` (DER), signed by the test CA. */
async function certificateWithKeyUsageValue(value: Buffer, critical = true): Promise<Buffer> {
  const certificate = await x509.X509CertificateGenerator.create({
    subject: 'CN=client',
    issuer: ca.subject,
    publicKey: ca.keys.publicKey,
    signingKey: ca.keys.privateKey,
    notBefore: new Date(Date.now() - 3600_000),
    notAfter: new Date(Date.now() + 3600_000),
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.Extension(KEY_USAGE_OID, critical, value),
      new x509.ExtendedKeyUsageExtension(['1.3.6.1.5.5.7.3.2']),
    ],
  });
  return Buffer.from(certificate.rawData);
}

/** The independent reading: @peculiar/x509's, or undefined when the certificate has no key usage. */
function oracleUsages(der: Buffer): KeyUsage[] | undefined {
  const extension = new x509.X509Certificate(der).extensions.find((e) => e.type === KEY_USAGE_OID);
  if (extension === undefined) return undefined;
  const flags = new x509.KeyUsagesExtension(extension.rawData).usages;
  return KEY_USAGES.filter((_, bit) => (flags & (1 << bit)) !== 0);
}

const readUsages = (der: Buffer) => {
  const usages = keyUsagesOf(new X509Certificate(der));
  return usages === undefined ? undefined : KEY_USAGES.filter((usage) => usages.has(usage));
};

describe('the key usage read from a certificate', () => {
  // A BIT STRING's last byte may carry unused (padding) bits; OpenSSL clears them when it decodes the
  // extension, so a set padding bit grants nothing at the origin's handshake.
  it('agrees with an independent DER reader for every bit string, padding bits included', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 7 }),
        fc.uint8Array({ minLength: 1, maxLength: 2 }),
        fc.boolean(),
        async (unusedBits, bytes, critical) => {
          const value = Buffer.from([0x03, bytes.length + 1, unusedBits, ...bytes]);
          const der = await certificateWithKeyUsageValue(value, critical);
          expect(readUsages(der)).toEqual(oracleUsages(der));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('does not read padding bits as usages (07 7F: no usage at all)', async () => {
    const der = await certificateWithKeyUsageValue(Buffer.from([0x03, 0x02, 0x07, 0x7f]));
    expect(readUsages(der)).toEqual([]);
  });

  it('allows nothing when the bit string is malformed (OpenSSL refuses such a certificate)', async () => {
    for (const value of [
      [0x03, 0x02, 0x08, 0x80], // more than 7 unused bits
      [0x03, 0x00], // no unused-bits byte
      [0x04, 0x02, 0x07, 0x80], // not a BIT STRING
    ]) {
      expect(readUsages(await certificateWithKeyUsageValue(Buffer.from(value)))).toEqual([]);
    }
  });

  it('never throws on a mutated certificate, and agrees with the independent reader where both parse', async () => {
    const base = await certificateWithKeyUsageValue(Buffer.from([0x03, 0x02, 0x01, 0x86]));
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 3,
        }),
        (mutations) => {
          const der = Buffer.from(base);
          for (const [at, byte] of mutations) der[at] = byte;
          try {
            new X509Certificate(der);
          } catch {
            return; // node refuses it at upload already
          }
          const usages = readUsages(der);
          let expected: KeyUsage[] | undefined;
          try {
            expected = oracleUsages(der);
          } catch {
            return;
          }
          expect(usages).toEqual(expected);
        },
      ),
      { numRuns: 3000 },
    );
  });
});
