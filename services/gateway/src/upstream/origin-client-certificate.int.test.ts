import { randomBytes } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { originTls, type SnapshotCertificate } from '@vantageedge/shared/domain/gateway-config';
import {
  CLIENT_AUTH_USAGE,
  createTestCa,
  issueTestCertificate,
  type TestCa,
} from '@vantageedge/shared/testing/test-certificates';
import { certificateKeyContext, keyRing, sealPrivateKey } from '@vantageedge/shared/tls/private-key-envelope';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifyProxyError } from '../proxy/proxy-request.js';
import { getThroughGuardedConnector } from '../testing/guarded-origin-requests.js';
import { openOriginClientCertificate } from './origin-client-certificate.js';
import { compileOriginTls, type OriginTlsSettings } from './origin-tls.js';

/**
 * A real https origin that requires a client certificate of its own CA: the gateway's connections
 * present the one an origin names (opened from its tenant's snapshot), and without it the origin's
 * refusal (a TLS 1.3 alert after the handshake) is a TLS failure, answered 502 origin_tls_error.
 */

const TENANT = '0b6f4d0e-7a51-4c2e-9c3f-1d2e3f4a5b6c';
const OTHER_TENANT = '7c1e2d3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f';
const ring = keyRing(randomBytes(32).toString('base64'));
let serverCa: TestCa;
let server: https.Server;
let url = '';
const clientSubjects: string[] = [];
let certificate: SnapshotCertificate;

beforeAll(async () => {
  serverCa = await createTestCa('Origin Server CA');
  const clientCa = await createTestCa('Origin Client CA');
  const serving = await issueTestCertificate(serverCa, { dnsNames: [], ipAddresses: ['127.0.0.1'] });
  const client = await issueTestCertificate(clientCa, {
    dnsNames: [],
    commonName: 'gateway-client',
    extendedKeyUsages: [CLIENT_AUTH_USAGE],
  });
  const id = '3d2c1b0a-9f8e-4d7c-8b6a-5f4e3d2c1b0a';
  certificate = {
    id,
    domains: [],
    certificate_pem: client.chainPem,
    private_key: sealPrivateKey(ring, client.privateKeyPem, certificateKeyContext(TENANT, id)),
    fingerprint_sha256: client.fingerprint256,
    not_after: new Date(Date.now() + 86_400_000).toISOString(),
  };
  server = https.createServer(
    {
      cert: serving.chainPem,
      key: serving.privateKeyPem,
      ca: clientCa.certificatePem,
      requestCert: true,
      rejectUnauthorized: true,
    },
    (req, res) => {
      const subject = (req.socket as TLSSocket).getPeerCertificate().subject?.CN;
      clientSubjects.push(String(subject));
      res.end('served');
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});

afterAll(async () => {
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
});

const get = (tls: OriginTlsSettings) => getThroughGuardedConnector(url, tls);

const trustingTheServer = () => originTls.parse({ ca_certificates: serverCa.certificatePem });

describe('a client certificate presented to an origin that requires one', () => {
  it('without one, the origin’s refusal is a TLS failure: 502 origin_tls_error, a connect error', async () => {
    const failure = await get(compileOriginTls(trustingTheServer())).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(classifyProxyError(failure)).toMatchObject({
      status: 502,
      code: 'origin_tls_error',
      outcome: { kind: 'connect_error' },
    });
  });

  it('with the certificate the origin names, opened from its tenant’s snapshot, the origin serves', async () => {
    const opened = openOriginClientCertificate(ring, TENANT, certificate);
    const tls = compileOriginTls({ ...trustingTheServer(), client_certificate_id: certificate.id }, opened);
    expect(await get(tls)).toEqual({ status: 200, body: 'served' });
    expect(clientSubjects).toEqual(['gateway-client']);
    expect(tls.key).not.toBe(compileOriginTls(trustingTheServer()).key);
  });

  it('never opens under another tenant’s id, nor without the key-encryption key', () => {
    expect(() => openOriginClientCertificate(ring, OTHER_TENANT, certificate)).toThrow(/does not open/);
    expect(() => openOriginClientCertificate(undefined, TENANT, certificate)).toThrow(
      /CERTIFICATE_ENCRYPTION_KEY/,
    );
  });
});
