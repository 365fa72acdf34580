import { describe, expect, it, vi } from 'vitest';

// Regression test: the console's build failed once the origin schema checked tls.ca_certificates with
// node:crypto's X509Certificate, which the browser stand-in for node:crypto did not have. The request
// schemas are loaded here on the stand-in, as the console's bundle loads them.

describe("the console's node:crypto stand-in", () => {
  it('lets the origin form check a CA bundle’s shape and leaves what the certificates say to the server', async () => {
    // PEM blocks by their shape only: what is inside them is for the control plane to parse.
    const certificatePem = '-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n';
    const privateKeyPem = '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49\n-----END PRIVATE KEY-----\n';
    vi.doMock('node:crypto', () => import('./crypto.js'));
    const { createOriginBody } = await import('@vantageedge/control-plane/schemas/requests');
    const { validate } = await import('../validation.js');
    const origin = (ca_certificates: string) => ({
      tenant_id: '0b6f4d0e-7a51-4c2e-9c3f-1d2e3f4a5b6c',
      name: 'billing',
      url: 'https://10.0.4.20:8443',
      tls: { ca_certificates },
    });
    expect(validate(createOriginBody, origin(certificatePem))).toMatchObject({ ok: true });
    expect(validate(createOriginBody, origin(`${certificatePem}${privateKeyPem}`))).toMatchObject({
      ok: false,
      issues: { 'tls.ca_certificates': expect.stringMatching(/private key/) },
    });
    expect(validate(createOriginBody, origin('not a certificate'))).toMatchObject({
      ok: false,
      issues: { 'tls.ca_certificates': 'contains no PEM certificate block' },
    });
  });
});
