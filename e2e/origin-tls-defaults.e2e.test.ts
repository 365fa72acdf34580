import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildSnapshot, type TestOrigin as SnapshotOrigin } from '@vantageedge/gateway/testing/snapshots';
import {
  createTestCa,
  issueTestCertificate,
  selfSignedTestCertificate,
  type TestCa,
  type TestCertificate,
} from '@vantageedge/shared/testing/test-certificates';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { eventually, startOrigin, stopAllServices, type TestOrigin } from './harness.js';
import { type LoneGateway, startLoneGateway } from './lone-gateway.js';

/**
 * How a replica treats an https origin's certificate with no TLS settings of the origin's own: the
 * network to the origin is hostile, so the certificate is verified for the host the origin URL names
 * (an IP literal against the certificate's IP addresses), never for the host the client asked for.
 * The replica trusts the test's CA through NODE_EXTRA_CA_CERTS, as an operator's private CA would be.
 * A refused certificate answers 502 origin_tls_error, is logged with its reason, and never reaches the
 * origin; proxied requests, active health checks and WebSocket upgrades are judged alike.
 */
const SUBDOMAIN = 'origintls';
const DAY_MS = 24 * 3600 * 1000;

let dir: string;
let trustedCa: TestCa;
let gateway: LoneGateway;
const origins: Record<string, TestOrigin> = {};

/** Origin servers by name: each presents one certificate; `urlHost` is the host its origin URL names. */
async function startTlsOrigin(
  name: string,
  certificate: TestCertificate,
  urlHost: 'localhost' | '127.0.0.1',
): Promise<void> {
  origins[name] = await startOrigin(name, undefined, {
    tls: { certificatePem: certificate.chainPem, privateKeyPem: certificate.privateKeyPem },
    urlHost,
    webSocketEcho: true,
  });
}

beforeAll(async () => {
  trustedCa = await createTestCa('Origin TLS Trusted CA');
  const unknownCa = await createTestCa('Origin TLS Unknown CA');
  dir = await mkdtemp(path.join(tmpdir(), 've-origin-tls-'));
  const caFile = path.join(dir, 'trusted-ca.pem');
  await writeFile(caFile, trustedCa.certificatePem);

  const localhost = { dnsNames: ['localhost'] };
  await Promise.all([
    issueTestCertificate(trustedCa, localhost).then((c) => startTlsOrigin('valid', c, 'localhost')),
    issueTestCertificate(trustedCa, { dnsNames: [], ipAddresses: ['127.0.0.1'], commonName: 'ip' }).then(
      (c) => startTlsOrigin('valid-ip', c, '127.0.0.1'),
    ),
    issueTestCertificate(trustedCa, {
      ...localhost,
      notBefore: new Date(Date.now() - 30 * DAY_MS),
      notAfter: new Date(Date.now() - DAY_MS),
    }).then((c) => startTlsOrigin('expired', c, 'localhost')),
    issueTestCertificate(trustedCa, { dnsNames: ['other.example'] }).then((c) =>
      startTlsOrigin('other-host', c, 'localhost'),
    ),
    issueTestCertificate(trustedCa, localhost).then((c) => startTlsOrigin('name-at-ip', c, '127.0.0.1')),
    selfSignedTestCertificate(localhost).then((c) => startTlsOrigin('self-signed', c, 'localhost')),
    issueTestCertificate(unknownCa, localhost).then((c) => startTlsOrigin('unknown-ca', c, 'localhost')),
    issueTestCertificate(trustedCa, {
      ...localhost,
      notAfter: new Date(Date.now() - DAY_MS),
      notBefore: new Date(Date.now() - 30 * DAY_MS),
    }).then((c) => startTlsOrigin('probed-expired', c, 'localhost')),
    issueTestCertificate(trustedCa, localhost).then((c) => startTlsOrigin('probed-valid', c, 'localhost')),
  ]);

  // A probe that times out ejects the target too: its timeout leaves time for a TLS handshake on a busy
  // machine (a refused certificate fails at once, whatever it is).
  const activeChecks = {
    active: {
      enabled: true,
      interval_seconds: 1,
      timeout_seconds: 10,
      healthy_threshold: 1,
      unhealthy_threshold: 1,
    },
  };
  const configured: Array<SnapshotOrigin & { id: string; name: string }> = Object.entries(origins).map(
    ([name, origin]) => ({
      id: randomUUID(),
      name,
      targets: [origin.url],
      ...(name.startsWith('probed-') ? { health_check: activeChecks } : {}),
    }),
  );
  gateway = await startLoneGateway({
    snapshots: [
      buildSnapshot({
        subdomain: SUBDOMAIN,
        origins: configured,
        routes: configured.flatMap((origin) => [
          { origin_id: origin.id, path_pattern: `/${origin.name}/*`, strip_prefix: `/${origin.name}` },
        ]),
      }),
    ],
    env: { NODE_EXTRA_CA_CERTS: caFile },
  });
}, 180_000);

afterAll(async () => {
  await gateway?.close();
  await Promise.all(Object.values(origins).map((origin) => origin.close()));
  await stopAllServices();
  if (dir) await rm(dir, { recursive: true, force: true });
}, 60_000);

function errorCode(body: string): unknown {
  try {
    return (JSON.parse(body) as { error?: { code?: unknown } }).error?.code;
  } catch {
    return undefined;
  }
}

describe('https origins: certificates are verified by default', () => {
  it('a certificate of a trusted CA for the origin URL’s host is accepted; SNI is that host, not the client’s', async () => {
    const response = await gateway.request(SUBDOMAIN, '/valid/items');
    expect(response.status, gateway.service.tail()).toBe(200);
    expect(JSON.parse(response.body)).toMatchObject({ origin: 'valid', path: '/items' });
    // The client asked for origintls.localhost, which the certificate does not cover.
    expect(origins['valid']!.serverNames).toContain('localhost');
    expect(origins['valid']!.serverNames).not.toContain(`${SUBDOMAIN}.localhost`);
  });

  it('an IP-literal origin URL is verified against the certificate’s IP addresses, without SNI', async () => {
    const response = await gateway.request(SUBDOMAIN, '/valid-ip/items');
    expect(response.status, gateway.service.tail()).toBe(200);
    expect(origins['valid-ip']!.serverNames).toEqual(['']);
  });

  it.each([
    ['expired', 'CERT_HAS_EXPIRED'],
    ['other-host', 'ERR_TLS_CERT_ALTNAME_INVALID'],
    ['name-at-ip', 'ERR_TLS_CERT_ALTNAME_INVALID'],
    ['self-signed', 'DEPTH_ZERO_SELF_SIGNED_CERT'],
    ['unknown-ca', 'SELF_SIGNED_CERT_IN_CHAIN'],
  ])(
    '%s certificate: 502 origin_tls_error, the reason logged, nothing reaches the origin',
    async (name, reason) => {
      const response = await gateway.request(SUBDOMAIN, `/${name}/items`);
      expect(response.status, gateway.service.tail()).toBe(502);
      expect(errorCode(response.body), response.body).toBe('origin_tls_error');
      expect(origins[name]!.total()).toBe(0);
      const line = await gateway.service.waitForLine(`"reason":"${reason}"`, 10_000);
      expect(line).toContain('origin TLS handshake failed');
      expect(gateway.service.exited()).toBe(false);
    },
  );

  it('active health checks verify alike: the valid origin is probed, the expired one ejected unprobed', async () => {
    await eventually(
      'the valid origin is probed over TLS',
      async () => (origins['probed-valid']!.hits.get('/health') ?? 0) > 0,
    );
    await eventually(
      'the expired origin is ejected',
      async () => (await gateway.request(SUBDOMAIN, '/probed-expired/items')).status === 503,
      { timeoutMs: 20_000 },
    );
    expect(origins['probed-expired']!.total()).toBe(0);
    expect(origins['probed-expired']!.failedHandshakes()).toBeGreaterThan(0);
    expect((await gateway.request(SUBDOMAIN, '/probed-valid/items')).status).toBe(200);
  });

  it('a WebSocket upgrade to a valid wss origin is relayed; to an expired one it is 502 origin_tls_error', async () => {
    const echo = await new Promise<string>((resolve, reject) => {
      const socket = new WebSocket(`ws://127.0.0.1:${gateway.port}/valid/ws`, {
        headers: { host: `${SUBDOMAIN}.localhost` },
      });
      socket.once('open', () => socket.send('hello over wss'));
      socket.once('message', (data) => {
        resolve(String(data));
        socket.close();
      });
      socket.once('unexpected-response', (_request, response) =>
        reject(new Error(`upgrade answered ${response.statusCode}`)),
      );
      socket.once('error', reject);
    });
    expect(echo).toBe('hello over wss');

    const refused = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const socket = new WebSocket(`ws://127.0.0.1:${gateway.port}/expired/ws`, {
        headers: { host: `${SUBDOMAIN}.localhost` },
      });
      socket.once('open', () => reject(new Error('the upgrade went through')));
      socket.once('unexpected-response', (_request, response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => {
          body += chunk.toString();
        });
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      });
      socket.once('error', () => {});
    });
    expect(refused.status).toBe(502);
    expect(errorCode(refused.body), refused.body).toBe('origin_tls_error');
    expect(origins['expired']!.total()).toBe(0);
  });
});
