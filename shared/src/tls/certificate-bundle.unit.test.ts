import { beforeAll, describe, expect, it } from 'vitest';
import {
  CLIENT_AUTH_USAGE,
  createTestCa,
  issueTestCertificate,
  KeyUsageFlags,
  rsa8192TestKeyPair,
  rsaKeysWithHugeExponent,
  type TestCa,
} from '../testing/test-certificates.js';
import {
  caCertificatesIssue,
  certificateCovers,
  checkCertificateBundle,
  clientAuthenticationIssue,
  privateKeyIssue,
} from './certificate-bundle.js';

const DAY = 24 * 3600 * 1000;
let ca: TestCa;
let otherCa: TestCa;

beforeAll(async () => {
  [ca, otherCa] = await Promise.all([createTestCa('Test CA'), createTestCa('Other CA')]);
});

describe('checking an uploaded certificate chain and key', () => {
  it('accepts a leaf and its issuer with the matching key, and reports what the leaf says', async () => {
    const cert = await issueTestCertificate(ca, { dnsNames: ['api.example.com', '*.shop.example.com'] });
    const check = checkCertificateBundle({
      certificatePem: cert.chainPem,
      privateKeyPem: cert.privateKeyPem,
      now: new Date(),
    });
    if (!check.ok) throw new Error(JSON.stringify(check.issues));
    expect(check.facts).toMatchObject({
      dns_names: ['api.example.com', '*.shop.example.com'],
      chain_length: 2,
      fingerprint_sha256: cert.fingerprint256,
      key_type: 'EC prime256v1',
    });
    expect(check.privateKeyPem).toContain('BEGIN PRIVATE KEY');
    expect(certificateCovers(check.leaf, 'api.example.com')).toBe(true);
    expect(certificateCovers(check.leaf, 'eu.shop.example.com')).toBe(true);
    expect(certificateCovers(check.leaf, 'a.b.shop.example.com')).toBe(false);
    expect(certificateCovers(check.leaf, 'www.example.com')).toBe(false);
  });

  it('reports a subject alternative name extension node cannot read as no DNS name, never throws', async () => {
    // An empty SAN extension (as a client certificate may carry): node's subjectAltName throws on it.
    const cert = await issueTestCertificate(ca, { dnsNames: [], commonName: 'client' });
    const check = () =>
      checkCertificateBundle({
        certificatePem: cert.chainPem,
        privateKeyPem: cert.privateKeyPem,
        now: new Date(),
      });
    expect(check).not.toThrow();
    expect(check()).toEqual({
      ok: false,
      issues: [{ field: 'certificate', issue: 'has no DNS subject alternative name' }],
    });
  });

  it('accepts a certificate without DNS names when none are required (a client certificate)', async () => {
    const cert = await issueTestCertificate(ca, { dnsNames: [], commonName: 'client' });
    const check = checkCertificateBundle({
      certificatePem: cert.chainPem,
      privateKeyPem: cert.privateKeyPem,
      now: new Date(),
      servedForHosts: false,
    });
    expect(check).toMatchObject({ ok: true, facts: { dns_names: [], subject: 'CN=client' } });
  });

  it('refuses a key that is not the certificate’s', async () => {
    const cert = await issueTestCertificate(ca, { dnsNames: ['api.example.com'] });
    const other = await issueTestCertificate(ca, { dnsNames: ['api.example.com'] });
    const check = checkCertificateBundle({
      certificatePem: cert.chainPem,
      privateKeyPem: other.privateKeyPem,
      now: new Date(),
    });
    expect(check).toEqual({
      ok: false,
      issues: [{ field: 'private_key', issue: "does not match the certificate's public key" }],
    });
  });

  it('refuses an expired certificate and one not yet valid', async () => {
    const expired = await issueTestCertificate(ca, {
      dnsNames: ['api.example.com'],
      notBefore: new Date(Date.now() - 30 * DAY),
      notAfter: new Date(Date.now() - DAY),
    });
    const early = await issueTestCertificate(ca, {
      dnsNames: ['api.example.com'],
      notBefore: new Date(Date.now() + DAY),
      notAfter: new Date(Date.now() + 30 * DAY),
    });
    const expiredCheck = checkCertificateBundle({
      certificatePem: expired.chainPem,
      privateKeyPem: expired.privateKeyPem,
      now: new Date(),
    });
    expect(expiredCheck.ok).toBe(false);
    expect(JSON.stringify(expiredCheck)).toMatch(/the certificate expired on/);
    const earlyCheck = checkCertificateBundle({
      certificatePem: early.chainPem,
      privateKeyPem: early.privateKeyPem,
      now: new Date(),
    });
    expect(JSON.stringify(earlyCheck)).toMatch(/is not valid before/);
  });

  it('refuses a certificate whose notBefore or notAfter does not parse (month 13), never throws', async () => {
    const cert = await issueTestCertificate(ca, {
      dnsNames: ['api.example.com'],
      notBefore: new Date('2025-01-01T00:00:00Z'),
      notAfter: new Date('2049-01-01T00:00:00Z'),
    });
    for (const [written, malformed] of [
      ['250101000000Z', '251301000000Z'],
      ['490101000000Z', '491301000000Z'],
    ] as const) {
      const check = checkCertificateBundle({
        certificatePem: withDerText(cert.certificatePem, written, malformed),
        privateKeyPem: cert.privateKeyPem,
        now: new Date(),
      });
      expect(check).toEqual({
        ok: false,
        issues: [
          {
            field: 'certificate',
            issue: 'the certificate has a validity period (notBefore, notAfter) that does not parse',
          },
        ],
      });
    }
  });

  it('refuses a chain whose second certificate did not issue the first', async () => {
    const cert = await issueTestCertificate(ca, { dnsNames: ['api.example.com'] });
    const check = checkCertificateBundle({
      certificatePem: cert.certificatePem + otherCa.certificatePem,
      privateKeyPem: cert.privateKeyPem,
      now: new Date(),
    });
    expect(JSON.stringify(check)).toMatch(/not issued by the next certificate/);
  });

  it('refuses text that is no certificate or no key, naming each field', () => {
    const check = checkCertificateBundle({
      certificatePem: 'hello',
      privateKeyPem: 'world',
      now: new Date(),
    });
    expect(check).toEqual({
      ok: false,
      issues: [
        { field: 'certificate', issue: 'contains no PEM certificate block' },
        {
          field: 'private_key',
          issue: 'is not a PEM private key (an encrypted key must be decrypted before upload)',
        },
      ],
    });
    const garbled = checkCertificateBundle({
      certificatePem: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----',
      privateKeyPem: 'x',
      now: new Date(),
    });
    expect(JSON.stringify(garbled)).toMatch(/certificate 1 of the chain does not parse/);
  });

  // Regression: a chain of 10 certificates whose keys had 3072-bit public exponents was accepted, and
  // checking its signatures took ~75 ms of the control plane's one thread per upload (~1 ms for real
  // chains): a tenant admin's burst of uploads stalled every tenant's admin API for seconds.
  it('refuses a chain certificate whose key is costly to verify with, before verifying with it', async () => {
    const costly = await createTestCa('Costly CA', { keyPair: await rsaKeysWithHugeExponent() });
    const cert = await issueTestCertificate(costly, { dnsNames: ['api.example.com'] });
    const check = checkCertificateBundle({
      certificatePem: cert.chainPem,
      privateKeyPem: cert.privateKeyPem,
      now: new Date(),
    });
    expect(check.ok).toBe(false);
    expect(!check.ok && check.issues).toEqual([
      {
        field: 'certificate',
        issue: 'chain certificate 2 has an RSA public exponent over 32 bits (real keys use 65537)',
      },
    ]);
  });

  // What clients check of a server certificate (OpenSSL's purpose check, BoringSSL's key usage check):
  // an extended key usage without TLS Web Server Authentication fails every handshake, and a key usage
  // without digitalSignature cannot sign the handshakes the gateway makes (ECDHE and TLS 1.3 only).
  it('refuses a certificate served for host names that clients refuse as a server certificate', async () => {
    const checked = async (options: { extendedKeyUsages?: string[]; keyUsages?: number }) => {
      const cert = await issueTestCertificate(ca, { dnsNames: ['api.example.com'], ...options });
      return checkCertificateBundle({
        certificatePem: cert.chainPem,
        privateKeyPem: cert.privateKeyPem,
        now: new Date(),
      });
    };
    expect(await checked({ extendedKeyUsages: [CLIENT_AUTH_USAGE] })).toEqual({
      ok: false,
      issues: [
        {
          field: 'certificate',
          issue:
            'its extended key usage does not allow server authentication (TLS Web Server Authentication): clients refuse it',
        },
      ],
    });
    expect(await checked({ extendedKeyUsages: ['2.5.29.37.0'] })).toMatchObject({ ok: false });
    expect(await checked({ keyUsages: KeyUsageFlags.keyEncipherment })).toEqual({
      ok: false,
      issues: [
        {
          field: 'certificate',
          issue:
            'its key usage does not allow signing (digitalSignature), which the gateway does at every handshake',
        },
      ],
    });
    expect(await checked({ keyUsages: KeyUsageFlags.keyCertSign })).toMatchObject({ ok: false });
    expect(await checked({ extendedKeyUsages: [] })).toMatchObject({ ok: true });
    expect(await checked({ keyUsages: 0 })).toMatchObject({ ok: true });
    expect(
      await checked({
        extendedKeyUsages: [CLIENT_AUTH_USAGE, '1.3.6.1.5.5.7.3.1'],
        keyUsages: KeyUsageFlags.digitalSignature,
      }),
    ).toMatchObject({ ok: true });
  });

  // Regression: only the leaf's usages were checked. OpenSSL (node's TLS client, curl) and Chrome check
  // the extended key usage of every certificate of the chain but the root the client trusts: a leaf
  // issued by an intermediate limited to client authentication fails every handshake
  // ("unsuitable certificate purpose" at depth 1).
  it('refuses a chain whose intermediate limits what it issues to other usages than a TLS server', async () => {
    const checked = async (intermediateUsages: string[], servedForHosts = true) => {
      const intermediate = await createTestCa('Intermediate', {
        issuer: ca,
        extendedKeyUsages: intermediateUsages,
      });
      const cert = await issueTestCertificate(intermediate, { dnsNames: ['api.example.com'] });
      return checkCertificateBundle({
        certificatePem: `${cert.chainPem}${ca.certificatePem}`,
        privateKeyPem: cert.privateKeyPem,
        now: new Date(),
        servedForHosts,
      });
    };
    expect(await checked([CLIENT_AUTH_USAGE])).toEqual({
      ok: false,
      issues: [
        {
          field: 'certificate',
          issue:
            'chain certificate 2 has an extended key usage that does not allow server authentication (TLS Web Server Authentication): clients refuse the certificates it issues',
        },
      ],
    });
    expect(await checked(['2.5.29.37.0'])).toMatchObject({ ok: false });
    expect(await checked(['1.3.6.1.5.5.7.3.1', CLIENT_AUTH_USAGE])).toMatchObject({ ok: true });
    expect(await checked([])).toMatchObject({ ok: true });
    expect(await checked([CLIENT_AUTH_USAGE], false)).toMatchObject({ ok: true });
    // OpenSSL 3 checks a root's too (node's client: "unsuitable certificate purpose").
    const clientRoot = await createTestCa('Client root', { extendedKeyUsages: [CLIENT_AUTH_USAGE] });
    const underClientRoot = await issueTestCertificate(clientRoot, { dnsNames: ['api.example.com'] });
    expect(
      checkCertificateBundle({
        certificatePem: underClientRoot.chainPem,
        privateKeyPem: underClientRoot.privateKeyPem,
        now: new Date(),
      }),
    ).toMatchObject({ ok: false, issues: [{ issue: expect.stringMatching(/^chain certificate 2 /) }] });
  });

  it('accepts any usage of a certificate served for no host name (a client certificate)', async () => {
    const cert = await issueTestCertificate(ca, {
      dnsNames: [],
      commonName: 'client',
      extendedKeyUsages: [CLIENT_AUTH_USAGE],
      keyUsages: KeyUsageFlags.keyAgreement,
    });
    const check = checkCertificateBundle({
      certificatePem: cert.chainPem,
      privateKeyPem: cert.privateKeyPem,
      now: new Date(),
      servedForHosts: false,
    });
    expect(check).toMatchObject({ ok: true });
  });

  it('refuses a CA certificate as the leaf', async () => {
    const check = checkCertificateBundle({
      certificatePem: ca.certificatePem,
      privateKeyPem: ca.privateKeyPem,
      now: new Date(),
    });
    expect(JSON.stringify(check)).toMatch(/is a CA certificate/);
  });

  it('accepts an RSA-2048 key', async () => {
    const cert = await issueTestCertificate(ca, { dnsNames: ['rsa.example.com'], keyType: 'rsa' });
    const check = checkCertificateBundle({
      certificatePem: cert.chainPem,
      privateKeyPem: cert.privateKeyPem,
      now: new Date(),
    });
    expect(check.ok && check.facts.key_type).toBe('RSA 2048');
  });

  // Regression: RSA-16384 was accepted (201), and each TLS handshake with it cost a replica ~400 ms of
  // CPU on the thread every tenant's traffic shares.
  it('refuses an RSA key over 4096 bits, at upload and when a gateway loads a stored one', async () => {
    // From a fixture: generating a key this large takes seconds, and on a busy machine tens of seconds.
    const cert = await issueTestCertificate(ca, {
      dnsNames: ['big.example.com'],
      keyPair: await rsa8192TestKeyPair(),
    });
    const { privateKeyPem } = cert;
    const check = checkCertificateBundle({ certificatePem: cert.chainPem, privateKeyPem, now: new Date() });
    expect(check.ok).toBe(false);
    expect(!check.ok && check.issues).toEqual([
      { field: 'private_key', issue: 'RSA keys may have at most 4096 bits' },
    ]);
    expect(privateKeyIssue(privateKeyPem)).toBe('RSA keys may have at most 4096 bits');
  });
});

describe('CA certificates an origin trusts (tls.ca_certificates)', () => {
  it('accepts one or more CA certificates, roots and intermediates', async () => {
    const intermediate = await createTestCa('Intermediate', { issuer: ca });
    expect(caCertificatesIssue(ca.certificatePem, new Date())).toBeUndefined();
    const bundle = `${otherCa.certificatePem}\n${intermediate.certificatePem}\n${ca.certificatePem}`;
    expect(caCertificatesIssue(bundle, new Date())).toBeUndefined();
  });

  it('refuses a leaf, a private key, text around the blocks, no block, too many, and an expired CA', async () => {
    const leaf = await issueTestCertificate(ca, { dnsNames: ['api.example.com'] });
    const now = new Date();
    expect(caCertificatesIssue(`${ca.certificatePem}${leaf.certificatePem}`, now)).toMatch(
      /^certificate 2 \(CN=api\.example\.com\) is not a CA certificate$/,
    );
    expect(caCertificatesIssue(`${ca.certificatePem}${ca.privateKeyPem}`, now)).toMatch(/private key/);
    expect(caCertificatesIssue(`trust me\n${ca.certificatePem}`, now)).toMatch(/nothing between them/);
    expect(caCertificatesIssue('not a certificate', now)).toBe('contains no PEM certificate block');
    expect(caCertificatesIssue(ca.certificatePem.repeat(11), now)).toBe('has more than 10 certificates');
    expect(caCertificatesIssue(ca.certificatePem, new Date(Date.now() + 3651 * DAY))).toMatch(
      /^certificate 1 expired on /,
    );
  });

  it('refuses a CA certificate whose notAfter does not parse (it was taken as valid)', async () => {
    const notAfter = new Date('2049-06-01T00:00:00Z');
    const malformedCa = await createTestCa('Malformed CA', { notAfter });
    expect(caCertificatesIssue(malformedCa.certificatePem, new Date())).toBeUndefined();
    expect(
      caCertificatesIssue(
        withDerText(malformedCa.certificatePem, '490601000000Z', '491301000000Z'),
        new Date(),
      ),
    ).toBe('certificate 1 has a validity period (notBefore, notAfter) that does not parse');
  });
});

describe('a certificate the gateways present to origins (tls.client_certificate_id)', () => {
  it('accepts client authentication, any usage, or no extended key usage; refuses server-only', async () => {
    const issued = async (extendedKeyUsages: string[]) =>
      (await issueTestCertificate(ca, { dnsNames: [], commonName: 'client', extendedKeyUsages })).chainPem;
    expect(clientAuthenticationIssue(await issued([CLIENT_AUTH_USAGE]))).toBeUndefined();
    expect(clientAuthenticationIssue(await issued(['2.5.29.37.0']))).toBeUndefined();
    expect(clientAuthenticationIssue(await issued([]))).toBeUndefined();
    expect(clientAuthenticationIssue(await issued(['1.3.6.1.5.5.7.3.1']))).toMatch(
      /does not allow client authentication/,
    );
  });

  // What the origin's TLS library (OpenSSL, BoringSSL) checks of a client certificate: a key usage
  // extension without digitalSignature or keyAgreement fails every handshake.
  it('refuses a key usage the handshake cannot sign with; accepts digitalSignature, keyAgreement, or none', async () => {
    const issued = async (keyUsages: number, keyType: 'ec' | 'rsa' = 'ec') =>
      (
        await issueTestCertificate(ca, {
          dnsNames: [],
          commonName: 'client',
          extendedKeyUsages: [CLIENT_AUTH_USAGE],
          keyUsages,
          keyType,
        })
      ).chainPem;
    const refused = /key usage does not allow signing \(digitalSignature\)/;
    expect(clientAuthenticationIssue(await issued(KeyUsageFlags.keyCertSign))).toMatch(refused);
    expect(clientAuthenticationIssue(await issued(KeyUsageFlags.keyEncipherment, 'rsa'))).toMatch(refused);
    expect(
      clientAuthenticationIssue(await issued(KeyUsageFlags.nonRepudiation | KeyUsageFlags.cRLSign)),
    ).toMatch(refused);
    expect(clientAuthenticationIssue(await issued(KeyUsageFlags.digitalSignature))).toBeUndefined();
    expect(clientAuthenticationIssue(await issued(KeyUsageFlags.keyAgreement))).toBeUndefined();
    expect(
      clientAuthenticationIssue(
        await issued(KeyUsageFlags.keyCertSign | KeyUsageFlags.decipherOnly | KeyUsageFlags.digitalSignature),
      ),
    ).toBeUndefined();
    expect(clientAuthenticationIssue(await issued(0))).toBeUndefined();
  });
});

/** The certificate with `written` (ASCII in its DER: a UTCTime) replaced by `malformed`; its signature no longer holds. */
function withDerText(pem: string, written: string, malformed: string): string {
  const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  const at = der.indexOf(written, 0, 'latin1');
  expect(at).toBeGreaterThanOrEqual(0);
  der.write(malformed, at, 'latin1');
  const base64 = der.toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN CERTIFICATE-----\n${base64}\n-----END CERTIFICATE-----\n`;
}
