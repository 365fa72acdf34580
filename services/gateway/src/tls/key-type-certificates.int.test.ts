import { randomBytes, randomUUID } from 'node:crypto';
import {
  createTestCa,
  issueTestCertificate,
  type TestCa,
  type TestCertificate,
} from '@vantageedge/shared/testing/test-certificates';
import {
  http2Connect,
  http2Request,
  https1Request,
  tlsHandshake,
} from '@vantageedge/shared/testing/tls-clients';
import { keyRing } from '@vantageedge/shared/tls/private-key-envelope';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type DefaultCertificateFiles,
  writeDefaultCertificateFiles,
} from '../testing/default-certificate-files.js';
import {
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { listenerResumesSessions } from '../testing/listener-session-resumption.js';
import { buildSnapshot, snapshotCertificateOf } from '../testing/snapshots.js';

/**
 * A tenant with an RSA and an ECDSA certificate for one custom domain (nginx's two `ssl_certificate`,
 * Kong's `cert_alt`): a client that accepts only one of the two key types gets the certificate of that
 * type; a client that accepts both gets the one valid longest, as with one certificate per name.
 */
const KEK = randomBytes(32).toString('base64');
const ring = keyRing(KEK);

const ECDSA_ONLY = 'ecdsa_secp256r1_sha256:ecdsa_secp384r1_sha384';
const RSA_ONLY = 'rsa_pss_rsae_sha256:rsa_pkcs1_sha256';

let certificateFiles: DefaultCertificateFiles;
let ca: TestCa;
let origin: TestOrigin;
let gateway: TestGateway;
let tlsPort: number;

beforeAll(async () => {
  ca = await createTestCa();
  certificateFiles = await writeDefaultCertificateFiles('key-types');
  origin = await startTestOrigin('key-types');
  gateway = await startTestGateway({
    ...certificateFiles.tlsListenerEnv,
    CERTIFICATE_ENCRYPTION_KEY: KEK,
  });
  tlsPort = gateway.gateway.tlsPort as number;
});

afterAll(async () => {
  await gateway?.close();
  await origin?.close();
  await certificateFiles?.remove();
});

/** A tenant whose custom domain has an RSA and an ECDSA certificate; `longest` is valid the longest. */
async function tenantWithBothKeyTypes(longest: 'rsa' | 'ec') {
  const tenantId = randomUUID();
  const domain = `shop-${tenantId.slice(0, 8)}.key-types.test`;
  const issue = (keyType: 'rsa' | 'ec'): Promise<TestCertificate> =>
    issueTestCertificate(ca, { dnsNames: [domain], keyType, validDays: keyType === longest ? 90 : 60 });
  const [rsa, ec] = await Promise.all([issue('rsa'), issue('ec')]);
  gateway.store.apply(
    buildSnapshot({
      tenantId,
      version: 1,
      subdomain: `keys-${tenantId.slice(0, 8)}`,
      customDomains: [{ domain, verified_position: 1 }],
      origins: [{ id: tenantId, targets: [origin.url] }],
      routes: [{ origin_id: tenantId, path_pattern: '/*' }],
      certificates: [
        snapshotCertificateOf(ring, tenantId, rsa, [domain]),
        snapshotCertificateOf(ring, tenantId, ec, [domain]),
      ],
    }),
  );
  return { domain, rsa, ec };
}

/**
 * A tenant with two custom domains, shop and api, whose RSA certificate names both and whose ECDSA
 * certificate names shop only; `longest` is valid the longest.
 */
async function tenantWhoseRsaCertificateAlsoNamesApi(longest: 'rsa' | 'ec') {
  const tenantId = randomUUID();
  const shop = `shop-${tenantId.slice(0, 8)}.key-types.test`;
  const api = `api-${tenantId.slice(0, 8)}.key-types.test`;
  const validDays = (keyType: 'rsa' | 'ec') => (keyType === longest ? 90 : 60);
  const rsa = await issueTestCertificate(ca, {
    dnsNames: [shop, api],
    keyType: 'rsa',
    validDays: validDays('rsa'),
  });
  const ec = await issueTestCertificate(ca, { dnsNames: [shop], keyType: 'ec', validDays: validDays('ec') });
  gateway.store.apply(
    buildSnapshot({
      tenantId,
      version: 1,
      subdomain: `keys-${tenantId.slice(0, 8)}`,
      customDomains: [
        { domain: shop, verified_position: 1 },
        { domain: api, verified_position: 2 },
      ],
      origins: [{ id: tenantId, targets: [origin.url] }],
      routes: [{ origin_id: tenantId, path_pattern: '/*' }],
      certificates: [
        snapshotCertificateOf(ring, tenantId, rsa, [shop, api]),
        snapshotCertificateOf(ring, tenantId, ec, [shop]),
      ],
    }),
  );
  return { shop, api, rsa, ec };
}

describe('a custom domain with an RSA and an ECDSA certificate', () => {
  for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
    for (const longest of ['rsa', 'ec'] as const) {
      it(`serves each client a certificate of a key type it accepts (${maxVersion}, ${longest} valid longest)`, async () => {
        const { domain, rsa, ec } = await tenantWithBothKeyTypes(longest);
        const handshake = (sigalgs?: string) =>
          tlsHandshake({
            port: tlsPort,
            servername: domain,
            ca: ca.certificatePem,
            maxVersion,
            ...(sigalgs ? { sigalgs } : {}),
          });

        const ecdsaOnly = await handshake(ECDSA_ONLY);
        expect(ecdsaOnly.fingerprint256).toBe(ec.fingerprint256);
        expect(ecdsaOnly.authorized).toBe(true);
        const rsaOnly = await handshake(RSA_ONLY);
        expect(rsaOnly.fingerprint256).toBe(rsa.fingerprint256);
        expect(rsaOnly.authorized).toBe(true);
        // A client that accepts both gets the one valid longest, as before.
        const both = await handshake();
        expect(both.fingerprint256).toBe((longest === 'rsa' ? rsa : ec).fingerprint256);
      });
    }
  }

  it('answers requests on the certificate each client got, never 421', async () => {
    const { domain, rsa, ec } = await tenantWithBothKeyTypes('ec');
    for (const [sigalgs, served] of [
      [RSA_ONLY, rsa],
      [ECDSA_ONLY, ec],
    ] as const) {
      const pathname = `/key-types/${randomUUID()}`;
      const answer = await https1Request(tlsPort, domain, pathname, { ca: ca.certificatePem, sigalgs });
      expect(answer.fingerprint256).toBe(served.fingerprint256);
      expect(answer.status).toBe(200);
      expect(origin.seen.filter((request) => request.url === pathname)).toHaveLength(1);
    }
  });

  it('answers a request for another of the tenant’s hosts by what the certificate the client got covers (421 otherwise)', async () => {
    // The RSA certificate also names the tenant's other domain; the ECDSA one, valid longer, does not.
    const { shop, api } = await tenantWhoseRsaCertificateAlsoNamesApi('ec');
    for (const [sigalgs, status] of [
      [RSA_ONLY, 200],
      [ECDSA_ONLY, 421],
    ] as const) {
      const session = http2Connect(`https://127.0.0.1:${tlsPort}`, { servername: shop, sigalgs });
      try {
        expect((await http2Request(session, { path: '/key-types/shop', authority: shop })).status).toBe(200);
        const other = await http2Request(session, { path: '/key-types/api', authority: api });
        expect(other.status).toBe(status);
      } finally {
        session.destroy();
      }
    }
  });

  // Regression: a resumed session presents no certificate and names no signature algorithms, and the
  // listener judged its requests by the host's certificate valid longest, whichever one the session was
  // made with: a client that got the ECDSA certificate for one host had a request for a host only the
  // RSA certificate names served on it. A resumed connection answers only what every certificate it
  // may have been made with covers.
  for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
    it(`regression: answers a resumed session's request for a host only another of the host's certificates covers 421 (${maxVersion})`, async (context) => {
      if (!(await listenerResumesSessions())) context.skip();
      // The RSA certificate, valid longest, also names the tenant's other domain; the ECDSA one does not.
      const { shop, api, ec } = await tenantWhoseRsaCertificateAlsoNamesApi('rsa');
      const options = { ca: ca.certificatePem, sigalgs: ECDSA_ONLY, maxVersion };
      const first = await https1Request(tlsPort, shop, `/key-types/${randomUUID()}`, options);
      expect(first.fingerprint256).toBe(ec.fingerprint256);
      expect(first.status).toBe(200);

      const own = await https1Request(tlsPort, shop, `/key-types/${randomUUID()}`, {
        ...options,
        session: first.session,
      });
      expect(own.sessionReused).toBe(true);
      expect(own.status).toBe(200);
      const pathname = `/key-types/${randomUUID()}`;
      const other = await https1Request(tlsPort, shop, pathname, {
        ...options,
        session: own.session ?? first.session,
        headers: { host: api },
      });
      expect(other.sessionReused).toBe(true);
      expect(other.status).toBe(421);
      expect(origin.seen.filter((request) => request.url === pathname)).toEqual([]);
    });
  }
});
