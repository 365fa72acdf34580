import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { originTls } from '@vantageedge/shared/domain/gateway-config';
import {
  createTestCa,
  issueTestCertificate,
  type TestCa,
} from '@vantageedge/shared/testing/test-certificates';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifyProxyError } from '../proxy/proxy-request.js';
import { failureOf, getThroughGuardedConnector } from '../testing/guarded-origin-requests.js';
import { compileOriginTls, originTlsErrorCode } from './origin-tls.js';

/**
 * An origin's tls.verify_depth (nginx's proxy_ssl_verify_depth, Kong's tls_verify_depth): the most
 * intermediate CA certificates between the origin's certificate and the CA trusted for it. Real https
 * origins on 127.0.0.1: one whose certificate an intermediate CA issued (it sends its chain, leaf first),
 * one whose certificate the root issued itself.
 */
let root: TestCa;
const servers: https.Server[] = [];
let throughIntermediate = '';
let directlyIssued = '';
let withExpiredCrossCertificate = '';

async function origin(chainPem: string, privateKeyPem: string): Promise<string> {
  const server = https.createServer({ cert: chainPem, key: privateKeyPem }, (_req, res) => res.end('served'));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return `https://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

beforeAll(async () => {
  root = await createTestCa('Origin Root CA');
  const intermediate = await createTestCa('Origin Intermediate CA', { issuer: root });
  const viaIntermediate = await issueTestCertificate(intermediate, {
    dnsNames: [],
    ipAddresses: ['127.0.0.1'],
  });
  const direct = await issueTestCertificate(root, {
    dnsNames: ['origin.internal'],
    ipAddresses: ['127.0.0.1'],
  });
  throughIntermediate = await origin(viaIntermediate.chainPem, viaIntermediate.privateKeyPem);
  directlyIssued = await origin(direct.certificatePem, direct.privateKeyPem);
  // The intermediate's key certified once more, by a CA no one trusts, and expired. OpenSSL passes over
  // an expired candidate issuer for a valid one, so the chain it verifies is leaf, intermediate, root.
  const untrusted = await createTestCa('Untrusted CA');
  const expiredCross = await createTestCa('Origin Intermediate CA', {
    issuer: untrusted,
    keyPair: intermediate,
    notBefore: new Date(Date.now() - 20 * 24 * 3600_000),
    notAfter: new Date(Date.now() - 10 * 24 * 3600_000),
  });
  withExpiredCrossCertificate = await origin(
    `${viaIntermediate.certificatePem}\n${expiredCross.certificatePem}\n${intermediate.certificatePem}\n`,
    viaIntermediate.privateKeyPem,
  );
});

afterAll(async () => {
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

async function get(url: string, tls: Record<string, unknown>): Promise<{ status: number; body: string }> {
  return getThroughGuardedConnector(
    url,
    compileOriginTls(originTls.parse({ ca_certificates: root.certificatePem, ...tls })),
  );
}

describe('tls.verify_depth of an origin', () => {
  it('serves a chain with as many intermediate CAs as it allows, or with no limit set', async () => {
    const served = { status: 200, body: 'served' };
    expect(await get(throughIntermediate, {})).toEqual(served);
    expect(await get(throughIntermediate, { verify_depth: 1 })).toEqual(served);
    expect(await get(directlyIssued, { verify_depth: 0 })).toEqual(served);
    expect(await get(directlyIssued, { verify_depth: 0, server_name: 'origin.internal' })).toEqual(served);
  });

  it('refuses a chain with more intermediate CAs: 502 origin_tls_error, a connect error (CERT_CHAIN_TOO_LONG)', async () => {
    const failure = await failureOf(get(throughIntermediate, { verify_depth: 0 }));
    expect(originTlsErrorCode(failure)).toBe('CERT_CHAIN_TOO_LONG');
    expect(classifyProxyError(failure)).toMatchObject({
      status: 502,
      code: 'origin_tls_error',
      outcome: { kind: 'connect_error' },
    });
  });

  // An origin (or whoever answers in its place) lists an expired certificate of its intermediate's key
  // ahead of the real one: node describes the chain through the first certificate that names the issuer,
  // valid or not, so the chain it reports stops there, shorter than the one OpenSSL verified.
  it('refuses a chain with more intermediate CAs however the origin orders and pads it', async () => {
    expect(await get(withExpiredCrossCertificate, {})).toEqual({ status: 200, body: 'served' });
    const failure = await failureOf(get(withExpiredCrossCertificate, { verify_depth: 0 }));
    expect(originTlsErrorCode(failure)).toBe('CERT_CHAIN_TOO_LONG');
  });

  it('still verifies the name alongside the depth', async () => {
    const failure = await failureOf(get(directlyIssued, { verify_depth: 0, server_name: 'other.internal' }));
    expect(originTlsErrorCode(failure)).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
  });

  it('is not checked when verification is off', async () => {
    expect(await get(throughIntermediate, { verify: false, verify_depth: 0 })).toEqual({
      status: 200,
      body: 'served',
    });
  });
});
