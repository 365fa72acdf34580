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
 * A host moving from tenant A to tenant B, on a replica that applies B's snapshot (its claim) before A's
 * release: the two tenants' snapshots are separate keys of the snapshot topic, so nothing orders them
 * on a replica. The replica used to keep the host with A (the earlier claim) until A's release
 * arrived: B's callers, their Authorization headers included, reached A's origin over A's certificate.
 * A claim newer than A's snapshot proves A let go of the host (the control plane gives a host to one
 * tenant at a time), so the host is B's from the moment B's claim is applied, in either order.
 */
const KEK = randomBytes(32).toString('base64');
const ring = keyRing(KEK);

let certificateFiles: DefaultCertificateFiles;
let ca: TestCa;
let alphaOrigin: TestOrigin;
let bravoOrigin: TestOrigin;
let gateway: TestGateway;
let tlsPort: number;

beforeAll(async () => {
  ca = await createTestCa();
  certificateFiles = await writeDefaultCertificateFiles('moved-hosts');
  [alphaOrigin, bravoOrigin] = await Promise.all([startTestOrigin('alpha'), startTestOrigin('bravo')]);
  gateway = await startTestGateway({
    ...certificateFiles.tlsListenerEnv,
    CERTIFICATE_ENCRYPTION_KEY: KEK,
  });
  tlsPort = gateway.gateway.tlsPort as number;
});

afterAll(async () => {
  await gateway?.close();
  await Promise.all([alphaOrigin?.close(), bravoOrigin?.close()]);
  await certificateFiles?.remove();
});

interface Holder {
  id: string;
  origin: TestOrigin;
  certificate: TestCertificate;
}

async function holder(origin: TestOrigin, domain: string): Promise<Holder> {
  return { id: randomUUID(), origin, certificate: await issueTestCertificate(ca, { dnsNames: [domain] }) };
}

/** A tenant's snapshot at `version` whose one route sends everything to its own origin. */
function snapshotOf(
  tenant: Holder,
  version: number,
  hosts: { subdomain: string; subdomainPosition?: number; domain?: { name: string; verifiedAt: number } },
) {
  const domain = hosts.domain;
  return buildSnapshot({
    tenantId: tenant.id,
    version,
    subdomain: hosts.subdomain,
    ...(hosts.subdomainPosition === undefined ? {} : { subdomainPosition: hosts.subdomainPosition }),
    customDomains: domain ? [{ domain: domain.name, verified_position: domain.verifiedAt }] : [],
    origins: [{ id: tenant.id, targets: [tenant.origin.url] }],
    routes: [{ origin_id: tenant.id, path_pattern: '/*' }],
    certificates: domain ? [snapshotCertificateOf(ring, tenant.id, tenant.certificate, [domain.name])] : [],
  });
}

/**
 * A custom domain moved from Alpha to Bravo: Alpha's snapshot (at 10) holds it, verified at 5; Alpha
 * released it at 50 (a snapshot still on its way); Bravo's snapshot claims it, verified at 60.
 */
async function movedDomain() {
  const domain = `shop-${randomUUID().slice(0, 8)}.moved.test`;
  const alpha = await holder(alphaOrigin, domain);
  const bravo = await holder(bravoOrigin, domain);
  const alphaHolds = snapshotOf(alpha, 10, {
    subdomain: `alpha-${alpha.id.slice(0, 8)}`,
    domain: { name: domain, verifiedAt: 5 },
  });
  const bravoClaims = snapshotOf(bravo, 60, {
    subdomain: `bravo-${bravo.id.slice(0, 8)}`,
    domain: { name: domain, verifiedAt: 60 },
  });
  return { domain, alpha, bravo, alphaHolds, bravoClaims };
}

const reachedBy = (origin: TestOrigin, pathname: string) =>
  origin.seen.filter((request) => request.url === pathname);

describe('regression: a host moved to another tenant, its claim applied before the former holder’s release', () => {
  for (const order of ['new owner first', 'former holder first'] as const) {
    it(`serves the custom domain with the new owner’s certificate and origin (${order})`, async () => {
      const { domain, bravo, alphaHolds, bravoClaims } = await movedDomain();
      const applied = order === 'new owner first' ? [bravoClaims, alphaHolds] : [alphaHolds, bravoClaims];
      for (const snapshot of applied) gateway.store.apply(snapshot);

      const handshake = await tlsHandshake({ port: tlsPort, servername: domain });
      expect(handshake.fingerprint256).toBe(bravo.certificate.fingerprint256);
      const pathname = `/moved/${randomUUID()}`;
      const answer = await https1Request(tlsPort, domain, pathname, {
        headers: { authorization: 'Bearer bravo-caller' },
      });
      expect(answer.status).toBe(200);
      expect(answer.fingerprint256).toBe(bravo.certificate.fingerprint256);
      expect(reachedBy(alphaOrigin, pathname)).toEqual([]);
      expect(reachedBy(bravoOrigin, pathname)).toHaveLength(1);
    });
  }

  it('regression: an HTTP/2 session opened on the former holder’s certificate is answered 421 for the moved host, never served by the new owner', async () => {
    const { domain, bravo, alphaHolds, bravoClaims } = await movedDomain();
    gateway.store.apply(alphaHolds);
    const session = http2Connect(`https://127.0.0.1:${tlsPort}`, { servername: domain });
    try {
      const before = await http2Request(session, { path: `/moved/${randomUUID()}`, authority: domain });
      expect(before.status).toBe(200);
      // Alpha released the domain at 50 (not applied here); Bravo verified it at 60.
      gateway.store.apply(bravoClaims);
      const pathname = `/moved/${randomUUID()}`;
      const after = await http2Request(session, { path: pathname, authority: domain });
      expect(after.status).toBe(421);
      expect(JSON.parse(after.body).error.code).toBe('misdirected_request');
      expect(reachedBy(bravoOrigin, pathname)).toEqual([]);
      expect(reachedBy(alphaOrigin, pathname)).toEqual([]);
    } finally {
      session.destroy();
    }
    const fresh = await https1Request(tlsPort, domain, `/moved/${randomUUID()}`);
    expect(fresh.status).toBe(200);
    expect(fresh.fingerprint256).toBe(bravo.certificate.fingerprint256);
  });

  // Regression: a resumed session presents no certificate, and node picks none for it (SNICallback is
  // not asked) and reports the default one: the gateway took the connection for one on the default
  // certificate's, which covers no custom domain, and answered every request on it 421. Every client
  // that offers its last session (browsers, curl) was refused by every custom domain with a tenant
  // certificate. A resumed connection is judged by the certificate its host is served with now.
  for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
    it(`regression: a client resuming the TLS session of its last connection is served, by the host’s holder of the moment (${maxVersion})`, async (context) => {
      if (!(await listenerResumesSessions())) context.skip();
      const { domain, alpha, alphaHolds, bravoClaims } = await movedDomain();
      gateway.store.apply(alphaHolds);
      const first = await https1Request(tlsPort, domain, `/moved/${randomUUID()}`, {
        ca: ca.certificatePem,
        maxVersion,
      });
      expect(first.status).toBe(200);
      expect(first.fingerprint256).toBe(alpha.certificate.fingerprint256);
      expect(first.session).toBeDefined();
      const again = await https1Request(tlsPort, domain, `/moved/${randomUUID()}`, {
        ca: ca.certificatePem,
        maxVersion,
        session: first.session,
      });
      expect(again.sessionReused).toBe(true);
      expect(again.status).toBe(200);

      // Alpha released the domain at 50 (not applied here); Bravo verified it at 60.
      gateway.store.apply(bravoClaims);
      const pathname = `/moved/${randomUUID()}`;
      const moved = await https1Request(tlsPort, domain, pathname, {
        ca: ca.certificatePem,
        maxVersion,
        session: again.session ?? first.session,
      });
      expect(moved.sessionReused).toBe(true);
      expect(moved.status).toBe(200);
      expect(reachedBy(bravoOrigin, pathname)).toHaveLength(1);
      expect(reachedBy(alphaOrigin, pathname)).toEqual([]);
    });
  }

  it('serves a renamed-away subdomain from the tenant that took it, and back to its first holder (A → B → A)', async () => {
    const name = `moved-${randomUUID().slice(0, 8)}`;
    const alpha = await holder(alphaOrigin, `${name}.unused.test`);
    const bravo = await holder(bravoOrigin, `${name}.unused.test`);
    const host = `${name}.localhost`;
    const reached = async (): Promise<'alpha' | 'bravo' | 'neither'> => {
      const pathname = `/moved/${randomUUID()}`;
      const answer = await https1Request(tlsPort, host, pathname);
      expect(answer.status).toBe(200);
      if (reachedBy(alphaOrigin, pathname).length > 0) return 'alpha';
      return reachedBy(bravoOrigin, pathname).length > 0 ? 'bravo' : 'neither';
    };

    gateway.store.apply(snapshotOf(alpha, 10, { subdomain: name }));
    // Alpha renamed away at 20 (not applied here); Bravo took the name at 30.
    gateway.store.apply(snapshotOf(bravo, 30, { subdomain: name, subdomainPosition: 30 }));
    expect(await reached()).toBe('bravo');
    // Bravo renamed away at 40 (not applied here); Alpha took the name back at 50.
    gateway.store.apply(snapshotOf(alpha, 50, { subdomain: name, subdomainPosition: 50 }));
    expect(await reached()).toBe('alpha');
  });
});
