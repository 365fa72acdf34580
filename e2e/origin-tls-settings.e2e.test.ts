import { randomBytes, randomUUID } from 'node:crypto';
import {
  CLIENT_AUTH_USAGE,
  createTestCa,
  issueTestCertificate,
  KeyUsageFlags,
  selfSignedTestCertificate,
  type TestCa,
  type TestCertificate,
} from '@vantageedge/shared/testing/test-certificates';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  eventually,
  type GatewayReplica,
  startOrigin,
  stopAllServices,
  type TestOrigin,
  TestSystem,
} from './harness.js';
import { eventPosition, whenServedEverywhere } from './served-version.js';

/**
 * An origin's TLS settings through real processes: admin API → event store → snapshot projector →
 * Kafka → a gateway replica → https origins on 127.0.0.1 whose certificates come from a private CA the
 * replica does not trust. Tenant A trusts that CA for its origins (ca_certificates), names the host its
 * certificate is for (server_name) or turns verification off; tenant B's origin at the very same
 * address, without A's CA, is refused: one tenant's trust never reaches another's connections.
 * The control plane refuses what is not a CA certificate or a host name with a 400 naming the field.
 *
 * Client certificates (mTLS to the origin): an origin that asks for a certificate of its own client CA
 * is refused without one (502 origin_tls_error); with tls.client_certificate_id naming one of tenant A's
 * uploaded certificates, requests, probes and wss upgrades present it. Tenant B naming A's certificate
 * is answered as for a certificate that does not exist; A cannot delete a certificate an origin uses.
 */
const TENANT_A = 'tlsowner';
const TENANT_B = 'tlsneighbour';
const KEK = randomBytes(32).toString('base64');
const CLIENT_SUBJECT = 'gateway-of-tlsowner';

let system: TestSystem;
let gateway: GatewayReplica;
let privateCa: TestCa;
let leafOfPrivateCa: TestCertificate;
let pinned: TestOrigin;
let named: TestOrigin;
let selfSigned: TestOrigin;
let mutual: TestOrigin;
let clientCertificateId = '';
let serverOnlyCertificateId = '';
let signingLessCertificateId = '';
let tenantA = '';
let tenantB = '';
let pinnedOriginId = '';

async function admin(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const response = await system.admin(method, path, body === undefined ? {} : { body });
  expect(response.status, `${method} ${path}: ${response.text}`).toBeLessThan(300);
  return response.body;
}

function tlsOrigin(name: string, certificate: TestCertificate, clientCaPem?: string): Promise<TestOrigin> {
  return startOrigin(name, undefined, {
    tls: {
      certificatePem: certificate.chainPem,
      privateKeyPem: certificate.privateKeyPem,
      ...(clientCaPem === undefined ? {} : { clientCaPem }),
    },
    webSocketEcho: true,
  });
}

/** Uploads a certificate for no domain (never served: a client certificate for origins); its id. */
async function uploadClientCertificate(tenantId: string, certificate: TestCertificate): Promise<string> {
  const uploaded = await admin('POST', '/api/v1/certificates', {
    tenant_id: tenantId,
    certificate_pem: certificate.chainPem,
    private_key_pem: certificate.privateKeyPem,
  });
  return uploaded['id'] as string;
}

async function tenantWithRoutes(
  subdomain: string,
  originsOf: (tenantId: string) => Promise<Record<string, Record<string, unknown>>>,
): Promise<{ id: string; originIds: Record<string, string>; position: bigint }> {
  const id = (await admin('POST', '/api/v1/tenants', { name: subdomain, subdomain }))['id'] as string;
  const origins = await originsOf(id);
  const originIds: Record<string, string> = {};
  let position = 0n;
  for (const [name, body] of Object.entries(origins)) {
    originIds[name] = (await admin('POST', '/api/v1/origins', { tenant_id: id, name, ...body }))[
      'id'
    ] as string;
    const route = await system.admin('POST', '/api/v1/routes', {
      body: {
        tenant_id: id,
        origin_id: originIds[name],
        auth_mode: 'public',
        path_pattern: `/${name}/*`,
        strip_prefix: `/${name}`,
      },
    });
    expect(route.status, route.text).toBe(201);
    position = eventPosition(route);
  }
  return { id, originIds, position };
}

const noChecks = { active: { enabled: false } };
/**
 * Probes every second, one failure ejecting the target (503); a probe that times out fails too, so the
 * timeout leaves time for a TLS handshake on a busy machine.
 */
const PROBED_EVERY_SECOND = {
  interval_seconds: 1,
  timeout_seconds: 10,
  healthy_threshold: 1,
  unhealthy_threshold: 1,
};

beforeAll(async () => {
  privateCa = await createTestCa('Tenant A Private CA');
  const otherCa = await createTestCa('Some Other CA');
  const clientCa = await createTestCa('Origin Client CA');
  leafOfPrivateCa = await issueTestCertificate(privateCa, { dnsNames: [], ipAddresses: ['127.0.0.1'] });
  const clientCertificate = await issueTestCertificate(clientCa, {
    dnsNames: [],
    commonName: CLIENT_SUBJECT,
    extendedKeyUsages: [CLIENT_AUTH_USAGE],
  });
  // Server authentication only: refused as a client certificate.
  const serverOnlyCertificate = await issueTestCertificate(clientCa, { dnsNames: ['server.only'] });
  // Client authentication by its extended key usage, but a key usage that allows no handshake signature.
  const signingLessCertificate = await issueTestCertificate(clientCa, {
    dnsNames: [],
    commonName: 'signs-certificates-only',
    extendedKeyUsages: [CLIENT_AUTH_USAGE],
    keyUsages: KeyUsageFlags.keyCertSign,
  });
  [pinned, named, selfSigned, mutual] = await Promise.all([
    tlsOrigin('pinned', leafOfPrivateCa),
    issueTestCertificate(privateCa, { dnsNames: ['backend.internal'] }).then((c) => tlsOrigin('named', c)),
    selfSignedTestCertificate({ dnsNames: ['self.example'] }).then((c) => tlsOrigin('self-signed', c)),
    tlsOrigin('mutual', leafOfPrivateCa, clientCa.certificatePem),
  ]);
  system = await TestSystem.create({
    controlPlaneEnv: { CERTIFICATE_ENCRYPTION_KEY: KEK },
    gatewayEnv: { CERTIFICATE_ENCRYPTION_KEY: KEK },
  });
  await system.startControlSide();
  [gateway] = (await system.startGateways(1)) as [GatewayReplica];

  const a = await tenantWithRoutes(TENANT_A, async (id) => {
    clientCertificateId = await uploadClientCertificate(id, clientCertificate);
    serverOnlyCertificateId = await uploadClientCertificate(id, serverOnlyCertificate);
    signingLessCertificateId = await uploadClientCertificate(id, signingLessCertificate);
    return {
      pinned: {
        url: pinned.url,
        tls: { ca_certificates: `${otherCa.certificatePem}\n${privateCa.certificatePem}` },
        // Probes verify with the origin's CA too: a probe refused would eject the target (503).
        health_check: {
          active: PROBED_EVERY_SECOND,
        },
      },
      named: {
        url: named.url,
        tls: { ca_certificates: privateCa.certificatePem, server_name: 'backend.internal' },
        health_check: noChecks,
      },
      insecure: { url: selfSigned.url, tls: { verify: false }, health_check: noChecks },
      'other-ca': {
        url: pinned.url,
        tls: { ca_certificates: otherCa.certificatePem },
        health_check: noChecks,
      },
      mutual: {
        url: mutual.url,
        tls: { ca_certificates: privateCa.certificatePem, client_certificate_id: clientCertificateId },
        // Probes present the client certificate too: a probe refused would eject the target (503).
        health_check: {
          active: PROBED_EVERY_SECOND,
        },
      },
      anonymous: {
        url: mutual.url,
        tls: { ca_certificates: privateCa.certificatePem },
        health_check: noChecks,
      },
    };
  });
  tenantA = a.id;
  pinnedOriginId = a.originIds['pinned']!;
  const b = await tenantWithRoutes(TENANT_B, async () => ({
    // The very target tenant A trusts through its CA: B trusts the replica's store only.
    pinned: { url: pinned.url, health_check: noChecks },
    'self-signed': { url: selfSigned.url, health_check: noChecks },
  }));
  tenantB = b.id;
  await whenServedEverywhere([gateway], tenantA, a.position, system);
  await whenServedEverywhere([gateway], tenantB, b.position, system);
}, 240_000);

afterAll(async () => {
  await system?.close();
  await Promise.all([pinned?.close(), named?.close(), selfSigned?.close(), mutual?.close()]);
  await stopAllServices();
});

function errorCode(body: string): unknown {
  try {
    return (JSON.parse(body) as { error?: { code?: unknown } }).error?.code;
  } catch {
    return undefined;
  }
}

function upgrade(
  subdomain: string,
  path: string,
): Promise<{ echo?: string; status?: number; body?: string }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`ws://127.0.0.1:${gateway.port}${path}`, {
      headers: { host: `${subdomain}.localhost` },
    });
    socket.once('open', () => socket.send('ping over wss'));
    socket.once('message', (data) => {
      resolve({ echo: String(data) });
      socket.close();
    });
    socket.once('unexpected-response', (_request, response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    socket.once('error', reject);
  });
}

describe('origin TLS settings, end to end', () => {
  it('the origin’s own CA is trusted for its requests and its health checks; GET shows the settings', async () => {
    const response = await gateway.get(TENANT_A, '/pinned/items');
    expect(response.status, system.tails()).toBe(200);
    expect(JSON.parse(response.body)).toMatchObject({ origin: 'pinned', path: '/items' });
    await eventually(
      'the pinned origin is probed over TLS',
      async () => (pinned.hits.get('/health') ?? 0) > 0,
    );
    expect((await gateway.get(TENANT_A, '/pinned/again')).status).toBe(200);

    const shown = await admin('GET', `/api/v1/origins/${pinnedOriginId}`);
    expect(shown['tls']).toMatchObject({ verify: true, server_name: null });
    expect(String((shown['tls'] as { ca_certificates: string }).ca_certificates)).toContain(
      privateCa.certificatePem.trim(),
    );
  });

  it('server_name is the SNI and the name verified', async () => {
    const response = await gateway.get(TENANT_A, '/named/items');
    expect(response.status, system.tails()).toBe(200);
    expect(named.serverNames).toEqual(['backend.internal']);
  });

  it('verify: false accepts a self-signed certificate for that origin only', async () => {
    expect((await gateway.get(TENANT_A, '/insecure/items')).status).toBe(200);
    const neighbour = await gateway.get(TENANT_B, '/self-signed/items');
    expect(neighbour.status).toBe(502);
    expect(errorCode(neighbour.body)).toBe('origin_tls_error');
  });

  it('a CA that did not issue the certificate is refused, though the replica’s store is not asked', async () => {
    const response = await gateway.get(TENANT_A, '/other-ca/items');
    expect(response.status).toBe(502);
    expect(errorCode(response.body)).toBe('origin_tls_error');
  });

  it('tenant A’s CA never makes tenant B trust the same target: B is refused, A still served', async () => {
    const neighbour = await gateway.get(TENANT_B, '/pinned/from-b');
    expect(neighbour.status, neighbour.body).toBe(502);
    expect(errorCode(neighbour.body)).toBe('origin_tls_error');
    expect(pinned.hits.has('/from-b')).toBe(false);
    expect((await gateway.get(TENANT_A, '/pinned/from-a')).status).toBe(200);
    expect(pinned.hits.get('/from-a')).toBe(1);
    // And again after A's connection is open and its TLS session known: B still opens and verifies its own.
    expect((await gateway.get(TENANT_B, '/pinned/from-b')).status).toBe(502);
    expect(pinned.hits.has('/from-b')).toBe(false);
  });

  it('WebSocket upgrades use the same settings: A’s wss origin relays, B’s is 502 origin_tls_error', async () => {
    expect(await upgrade(TENANT_A, '/pinned/ws')).toEqual({ echo: 'ping over wss' });
    const refused = await upgrade(TENANT_B, '/pinned/ws');
    expect(refused.status).toBe(502);
    expect(errorCode(refused.body ?? '')).toBe('origin_tls_error');
  });
});

describe('client certificates presented to origins (mTLS), end to end', () => {
  it('an origin asking for a client certificate refuses the gateway without one: 502 origin_tls_error', async () => {
    const response = await gateway.get(TENANT_A, '/anonymous/items');
    expect(response.status, response.body).toBe(502);
    expect(errorCode(response.body)).toBe('origin_tls_error');
    expect(mutual.hits.has('/items')).toBe(false);
    const refused = await upgrade(TENANT_A, '/anonymous/ws');
    expect(refused.status).toBe(502);
    expect(errorCode(refused.body ?? '')).toBe('origin_tls_error');
  });

  it('with tls.client_certificate_id the request, the probe and a wss upgrade present it', async () => {
    const response = await gateway.get(TENANT_A, '/mutual/items');
    expect(response.status, system.tails()).toBe(200);
    expect(JSON.parse(response.body)).toMatchObject({ origin: 'mutual', path: '/items' });
    await eventually('the mutual origin is probed with the client certificate', async () =>
      mutual.hits.has('/health'),
    );
    expect(await upgrade(TENANT_A, '/mutual/ws')).toEqual({ echo: 'ping over wss' });
    expect(mutual.clientSubjects.length).toBeGreaterThanOrEqual(2);
    expect(new Set(mutual.clientSubjects)).toEqual(new Set([CLIENT_SUBJECT]));
  });

  it('tenant B naming A’s certificate is answered as for one that does not exist', async () => {
    const named = (id: string) =>
      system.admin('POST', '/api/v1/origins', {
        body: { tenant_id: tenantB, name: 'borrowed', url: mutual.url, tls: { client_certificate_id: id } },
      });
    const borrowed = await named(clientCertificateId);
    const missing = await named(randomUUID());
    expect(borrowed.status, borrowed.text).toBe(404);
    expect(borrowed.body).toMatchObject({ error: { details: [{ field: 'tls.client_certificate_id' }] } });
    expect(missing.status).toBe(borrowed.status);
    expect(JSON.stringify(missing.body)).toBe(JSON.stringify(borrowed.body));
    const listed = await admin('GET', `/api/v1/origins?tenant_id=${tenantB}`);
    expect(JSON.stringify(listed)).not.toContain('borrowed');
  });

  it('a certificate whose extended key usage excludes client authentication is refused (400)', async () => {
    const response = await system.admin('POST', '/api/v1/origins', {
      body: {
        tenant_id: tenantA,
        name: 'server-only',
        url: mutual.url,
        tls: { client_certificate_id: serverOnlyCertificateId },
      },
    });
    expect(response.status, response.text).toBe(400);
    expect(response.body).toMatchObject({ error: { details: [{ field: 'tls.client_certificate_id' }] } });
  });

  it('a certificate whose key usage allows no signing (keyCertSign only) is refused (400), nothing recorded', async () => {
    const named = { client_certificate_id: signingLessCertificateId };
    const created = await system.admin('POST', '/api/v1/origins', {
      body: { tenant_id: tenantA, name: 'signing-less', url: mutual.url, tls: named },
    });
    expect(created.status, created.text).toBe(400);
    expect(created.body).toMatchObject({
      error: { code: 'validation_failed', details: [{ field: 'tls.client_certificate_id' }] },
    });
    expect(created.text).toContain('key usage does not allow signing (digitalSignature)');
    const updated = await system.admin('PATCH', `/api/v1/origins/${pinnedOriginId}`, {
      body: { tls: named },
    });
    expect(updated.status, updated.text).toBe(400);
    expect(updated.body).toMatchObject({ error: { details: [{ field: 'tls.client_certificate_id' }] } });
    const listed = await admin('GET', `/api/v1/origins?tenant_id=${tenantA}`);
    expect(JSON.stringify(listed)).not.toContain('signing-less');
    expect(JSON.stringify(listed)).not.toContain(signingLessCertificateId);
  });

  it('a certificate an origin presents cannot be deleted: 409 naming the origin', async () => {
    const response = await system.admin('DELETE', `/api/v1/certificates/${clientCertificateId}`);
    expect(response.status, response.text).toBe(409);
    expect(response.text).toContain('mutual');
    expect((await gateway.get(TENANT_A, '/mutual/still')).status).toBe(200);
    // Unused, it can.
    const unused = await system.admin('DELETE', `/api/v1/certificates/${serverOnlyCertificateId}`);
    expect(unused.status, unused.text).toBe(204);
  });
});

describe('origin TLS settings the control plane refuses', () => {
  it.each([
    ['text that is no PEM', 'tls.ca_certificates', { ca_certificates: 'hello' }],
    ['a leaf certificate', 'tls.ca_certificates', 'leaf'],
    ['a private key among the certificates', 'tls.ca_certificates', 'key'],
    ['a server name with a space', 'tls.server_name', { server_name: 'bad name' }],
    ['a verify that is no boolean', 'tls.verify', { verify: 'no' }],
    ['a verify_depth past 100', 'tls.verify_depth', { verify_depth: 101 }],
    ['a verify_depth that is no integer', 'tls.verify_depth', { verify_depth: 1.5 }],
    ['an unknown field', 'tls.tls_verify_depth', { tls_verify_depth: 2 }],
  ])('%s: 400 naming %s, nothing recorded', async (_what, field, given) => {
    const tls =
      given === 'leaf'
        ? { ca_certificates: leafOfPrivateCa.certificatePem }
        : given === 'key'
          ? { ca_certificates: `${privateCa.certificatePem}\n${privateCa.privateKeyPem}` }
          : given;
    const response = await system.admin('POST', '/api/v1/origins', {
      body: { tenant_id: tenantA, name: 'refused', url: pinned.url, tls },
    });
    expect(response.status, response.text).toBe(400);
    expect(response.body).toMatchObject({ error: { details: [{ field }] } });
    const update = await system.admin('PATCH', `/api/v1/origins/${pinnedOriginId}`, { body: { tls } });
    expect(update.status, update.text).toBe(400);
    const listed = await admin('GET', `/api/v1/origins?tenant_id=${tenantA}`);
    expect(JSON.stringify(listed)).not.toContain('"refused"');
  });
});
