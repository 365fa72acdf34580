import { randomBytes } from 'node:crypto';
import {
  CLIENT_AUTH_USAGE,
  createTestCa,
  issueTestCertificate,
  KeyUsageFlags,
  type TestCa,
  type TestCertificate,
} from '@vantageedge/shared/testing/test-certificates';
import {
  certificateKeyContext,
  keyRing,
  openPrivateKey,
  type SealedPrivateKey,
} from '@vantageedge/shared/tls/private-key-envelope';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * The certificate endpoints against the real control plane and PostgreSQL: an upload is checked (chain,
 * key, validity, SANs, the tenant's own custom domains), its private key is stored only sealed and is
 * never returned nor written to a read model or the audit log; bad uploads are a 400 that changes nothing.
 */
const KEK = randomBytes(32).toString('base64');
let cp: ControlPlaneHarness;
let ca: TestCa;
let acmeCert: TestCertificate;
let acmeId: string;
let globexId: string;

async function createTenant(
  harness: ControlPlaneHarness,
  subdomain: string,
  domains: string[],
  pending: string[] = [],
): Promise<string> {
  const response = await harness.request('POST', '/api/v1/tenants', {
    body: { name: `${subdomain}-corp`, subdomain },
  });
  expect(response.status, JSON.stringify(response.body)).toBe(201);
  const id = json(response)['id'] as string;
  // A platform admin assigns verified domains; a claim without proof stays pending.
  for (const [domain, verified] of [
    ...domains.map((d) => [d, true] as const),
    ...pending.map((d) => [d, false] as const),
  ]) {
    const claimed = await harness.request('POST', `/api/v1/tenants/${id}/domains`, {
      body: { domain, verified },
    });
    expect(claimed.status, JSON.stringify(claimed.body)).toBe(201);
  }
  return id;
}

async function eventCount(): Promise<number> {
  return (await cp.allEvents()).length;
}

beforeAll(async () => {
  cp = await startControlPlane({ withReadSide: true, certificateKeyRing: keyRing(KEK) });
  ca = await createTestCa();
  acmeCert = await issueTestCertificate(ca, { dnsNames: ['api.acme.test', 'www.acme.test'] });
  acmeId = await createTenant(
    cp,
    'acme',
    ['api.acme.test', 'www.acme.test', 'other.acme.test'],
    ['new.acme.test'],
  );
  globexId = await createTenant(cp, 'globex', ['shop.globex.test']);
});
afterAll(async () => {
  await cp?.close();
});

describe('POST /api/v1/certificates', () => {
  it('stores a checked certificate; the key is sealed in the event and never returned, read or audited', async () => {
    const uploaded = await cp.request('POST', '/api/v1/certificates', {
      body: {
        tenant_id: acmeId,
        domains: ['API.acme.test', 'www.acme.test'],
        certificate_pem: acmeCert.chainPem,
        private_key_pem: acmeCert.privateKeyPem,
      },
    });
    expect(uploaded.status, JSON.stringify(uploaded.body)).toBe(201);
    const resource = json(uploaded);
    expect(resource).toMatchObject({
      tenant_id: acmeId,
      domains: ['api.acme.test', 'www.acme.test'],
      fingerprint_sha256: acmeCert.fingerprint256,
      dns_names: ['api.acme.test', 'www.acme.test'],
      key_type: 'EC prime256v1',
    });
    const id = resource['id'] as string;
    expect(uploaded.headers.get('location')).toBe(`/api/v1/certificates/${id}`);
    expect(JSON.stringify(resource)).not.toMatch(/PRIVATE KEY|private_key/);

    const events = await cp.allEvents();
    const event = events.find((e) => e.type === 'CertificateUploaded');
    expect(JSON.stringify(event?.data)).not.toContain('PRIVATE KEY');
    const sealed = (event?.data as { private_key: SealedPrivateKey } | undefined)
      ?.private_key as SealedPrivateKey;
    expect(openPrivateKey(keyRing(KEK), sealed, certificateKeyContext(acmeId, id))).toContain(
      'BEGIN PRIVATE KEY',
    );

    const position = uploaded.headers.get('x-event-position') ?? '0';
    const got = await cp.request('GET', `/api/v1/certificates/${id}`, {
      headers: { 'X-Min-Position': position },
    });
    expect(got.status).toBe(200);
    expect(json(got)).toMatchObject({ id, fingerprint_sha256: acmeCert.fingerprint256 });
    expect(JSON.stringify(got.body)).not.toMatch(/PRIVATE KEY|private_key/);
    const listed = await cp.request('GET', `/api/v1/certificates?tenant_id=${acmeId}`, {
      headers: { 'X-Min-Position': position },
    });
    expect((json(listed)['data'] as Array<{ id: string }>).map((c) => c.id)).toEqual([id]);
    const audit = await cp.request('GET', `/api/v1/audit-log?tenant_id=${acmeId}`, {
      headers: { 'X-Min-Position': position },
    });
    expect(JSON.stringify(audit.body)).toContain('CertificateUploaded');
    expect(JSON.stringify(audit.body)).not.toMatch(/private_key|wrapped_key|ciphertext/);
    const row = await cp.db.pool.query('select * from read_models.certificates where id = $1', [id]);
    expect(JSON.stringify(row.rows)).not.toMatch(/PRIVATE KEY|wrapped_key/);
  });

  it.each([
    [
      'a key that is not the certificate’s',
      async () => ({
        private_key_pem: (await issueTestCertificate(ca, { dnsNames: ['api.acme.test'] })).privateKeyPem,
      }),
      'private_key_pem',
      /does not match/,
    ],
    [
      'an expired certificate',
      async () => {
        const expired = await issueTestCertificate(ca, {
          dnsNames: ['api.acme.test'],
          notBefore: new Date(Date.now() - 10 * 86_400_000),
          notAfter: new Date(Date.now() - 86_400_000),
        });
        return { certificate_pem: expired.chainPem, private_key_pem: expired.privateKeyPem };
      },
      'certificate_pem',
      /expired/,
    ],
    [
      'a domain of another tenant',
      async () => ({ domains: ['shop.globex.test'] }),
      'domains',
      /not a verified custom domain of this tenant/,
    ],
    [
      'a domain the tenant claimed but has not verified',
      async () => ({
        domains: ['new.acme.test'],
        ...(await (async () => {
          const cert = await issueTestCertificate(ca, { dnsNames: ['new.acme.test'] });
          return { certificate_pem: cert.chainPem, private_key_pem: cert.privateKeyPem };
        })()),
      }),
      'domains',
      /not a verified custom domain/,
    ],
    [
      'a domain the certificate does not cover',
      async () => ({ domains: ['other.acme.test'] }),
      'domains',
      /does not cover other\.acme\.test/,
    ],
    [
      // Clients refuse it at every handshake (OpenSSL: "unsuitable certificate purpose").
      'a certificate for a domain whose extended key usage is client authentication only',
      async () => {
        const client = await issueTestCertificate(ca, {
          dnsNames: ['api.acme.test'],
          extendedKeyUsages: [CLIENT_AUTH_USAGE],
        });
        return { certificate_pem: client.chainPem, private_key_pem: client.privateKeyPem };
      },
      'certificate_pem',
      /does not allow server authentication/,
    ],
    [
      // OpenSSL and Chrome check the intermediates' extended key usage too.
      'a certificate for a domain issued by an intermediate limited to client authentication',
      async () => {
        const clientCa = await createTestCa('Client CA', {
          issuer: ca,
          extendedKeyUsages: [CLIENT_AUTH_USAGE],
        });
        const issued = await issueTestCertificate(clientCa, { dnsNames: ['api.acme.test'] });
        return { certificate_pem: issued.chainPem, private_key_pem: issued.privateKeyPem };
      },
      'certificate_pem',
      /chain certificate 2 has an extended key usage that does not allow server authentication/,
    ],
    [
      'a certificate for a domain whose key usage does not allow signing',
      async () => {
        const unsigning = await issueTestCertificate(ca, {
          dnsNames: ['api.acme.test'],
          keyUsages: KeyUsageFlags.keyEncipherment,
        });
        return { certificate_pem: unsigning.chainPem, private_key_pem: unsigning.privateKeyPem };
      },
      'certificate_pem',
      /does not allow signing \(digitalSignature\)/,
    ],
    [
      'text that is no PEM',
      async () => ({ certificate_pem: 'not a certificate' }),
      'certificate_pem',
      /no PEM/,
    ],
    [
      // Read as one regex, every BEGIN line was searched to the end for its END line: 32 KiB of them
      // held the control plane's one thread for over 100 ms per upload.
      'a chain of BEGIN lines that never ends',
      async () => ({ certificate_pem: '-----BEGIN CERTIFICATE-----\n'.repeat(1170) }),
      'certificate_pem',
      /certificate 1 of the chain has no END CERTIFICATE line/,
    ],
    ['an unknown field', async () => ({ passphrase: 'x' }), 'passphrase', /./],
  ])('refuses %s with a 400 naming the field, and records nothing', async (_what, change, field, issue) => {
    const before = await eventCount();
    const response = await cp.request('POST', '/api/v1/certificates', {
      body: {
        tenant_id: acmeId,
        domains: ['api.acme.test'],
        certificate_pem: acmeCert.chainPem,
        private_key_pem: acmeCert.privateKeyPem,
        ...(await change()),
      },
    });
    expect(response.status, JSON.stringify(response.body)).toBe(400);
    const error = json(response)['error'] as {
      code: string;
      message: string;
      details: Array<{ field: string; issue: string }>;
    };
    expect(error.code).toBe('validation_failed');
    expect(error.details.map((detail) => detail.field)).toContain(field);
    expect(`${error.message} ${JSON.stringify(error.details)}`).toMatch(issue);
    expect(JSON.stringify(response.body)).not.toContain('BEGIN');
    expect(await eventCount()).toBe(before);
  });

  it('stores a certificate for no domain (never served: a client certificate for origins)', async () => {
    const client = await issueTestCertificate(ca, { dnsNames: [], commonName: 'acme-gateway-client' });
    const response = await cp.request('POST', '/api/v1/certificates', {
      body: { tenant_id: acmeId, certificate_pem: client.chainPem, private_key_pem: client.privateKeyPem },
    });
    expect(response.status, JSON.stringify(response.body)).toBe(201);
    expect(json(response)).toMatchObject({ domains: [], dns_names: [], subject: 'CN=acme-gateway-client' });
  });

  it('answers a caller without access to the tenant as for an unknown tenant (404)', async () => {
    const stranger = await cp.token({ userId: 'user_stranger' });
    const body = {
      tenant_id: globexId,
      domains: ['shop.globex.test'],
      certificate_pem: acmeCert.chainPem,
      private_key_pem: acmeCert.privateKeyPem,
    };
    const hidden = await cp.request('POST', '/api/v1/certificates', { token: stranger, body });
    expect(hidden.status).toBe(404);
    const unknown = await cp.request('POST', '/api/v1/certificates', {
      body: { ...body, tenant_id: '00000000-0000-4000-8000-000000000000' },
    });
    expect(unknown.status).toBe(404);
    expect(json(hidden)).toEqual(json(unknown));
  });
});

describe('DELETE and reseal', () => {
  it('reseals a key under a rotated key-encryption key, then deletes the certificate', async () => {
    const cert = await issueTestCertificate(ca, { dnsNames: ['www.acme.test'] });
    const uploaded = await cp.request('POST', '/api/v1/certificates', {
      body: {
        tenant_id: acmeId,
        domains: ['www.acme.test'],
        certificate_pem: cert.chainPem,
        private_key_pem: cert.privateKeyPem,
      },
    });
    const id = json(uploaded)['id'] as string;

    // Same ring: nothing to do.
    const unchanged = await cp.request('POST', `/api/v1/certificates/${id}/reseal`);
    expect(unchanged.status).toBe(200);
    expect((await cp.allEvents()).filter((e) => e.type === 'CertificateKeyResealed')).toHaveLength(0);

    const deleted = await cp.request('DELETE', `/api/v1/certificates/${id}`);
    expect(deleted.status).toBe(204);
    const again = await cp.request('DELETE', `/api/v1/certificates/${id}`);
    expect(again.status).toBe(404);
    const got = await cp.request('GET', `/api/v1/certificates/${id}`, {
      headers: { 'X-Min-Position': deleted.headers.get('x-event-position') ?? '0' },
    });
    expect(got.status).toBe(404);
  });

  it('a control plane with a new key (the old one as previous) seals the stored key again', async () => {
    const newKek = randomBytes(32).toString('base64');
    const rotated = await startControlPlane({ certificateKeyRing: keyRing(KEK) });
    try {
      const tenantId = await createTenant(rotated, 'rot', ['api.acme.test']);
      const uploaded = await rotated.request('POST', '/api/v1/certificates', {
        body: {
          tenant_id: tenantId,
          domains: ['api.acme.test'],
          certificate_pem: acmeCert.chainPem,
          private_key_pem: acmeCert.privateKeyPem,
        },
      });
      expect(uploaded.status).toBe(201);
      const id = json(uploaded)['id'] as string;
      // The same event store seen by a control plane whose current key is the new one.
      const next = await startControlPlane({ certificateKeyRing: keyRing(newKek, [KEK]) });
      try {
        for (const event of await rotated.allEvents()) {
          await next.store.appendToStream(
            event.stream,
            [{ type: event.type, data: event.data, metadata: event.metadata }],
            {
              expectedRevision: 'any',
            },
          );
        }
        const resealed = await next.request('POST', `/api/v1/certificates/${id}/reseal`);
        expect(resealed.status, JSON.stringify(resealed.body)).toBe(200);
        const event = (await next.allEvents()).find((e) => e.type === 'CertificateKeyResealed');
        const sealed = (event?.data as { private_key: SealedPrivateKey } | undefined)
          ?.private_key as SealedPrivateKey;
        expect(openPrivateKey(keyRing(newKek), sealed, certificateKeyContext(tenantId, id))).toContain(
          'PRIVATE KEY',
        );
      } finally {
        await next.close();
      }
    } finally {
      await rotated.close();
    }
  });

  it('answers 503 when the control plane has no CERTIFICATE_ENCRYPTION_KEY', async () => {
    const without = await startControlPlane();
    try {
      const response = await without.request('POST', '/api/v1/certificates', {
        body: {
          tenant_id: acmeId,
          domains: ['api.acme.test'],
          certificate_pem: acmeCert.chainPem,
          private_key_pem: acmeCert.privateKeyPem,
        },
      });
      expect(response.status).toBe(503);
      expect(json(response)['error']).toMatchObject({ code: 'certificates_unavailable' });
    } finally {
      await without.close();
    }
  });
});
