import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  createTestCa,
  issueTestCertificate,
  selfSignedTestCertificate,
  type TestCa,
  type TestCertificate,
} from '@vantageedge/shared/testing/test-certificates';
import {
  http2Connect,
  http2Request,
  https1Request,
  tlsHandshake,
} from '@vantageedge/shared/testing/tls-clients';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { eventually, freePort, type GatewayReplica, stopAllServices, TestSystem } from './harness.js';

/**
 * TLS, HTTP/2 and WebSocket through the whole product, every service its own process: a tenant's
 * certificate uploaded through the admin API is served by SNI for its verified custom domain (the
 * default certificate for platform hosts), a renewed certificate replaces it under continuous load with
 * no failed request, HTTP/2 requests pass every auth mode, a WebSocket echo is authenticated at
 * connect (a revoked key is refused), and a stopped gateway closes open WebSockets with 1001.
 */
const KEK = randomBytes(32).toString('base64');
const DOMAIN = 'api.acme-edge.test';
const ORG = 'org_edge_e2e';

let system: TestSystem;
let gateway: GatewayReplica;
let tlsPort: number;
let dir: string;
let ca: TestCa;
let defaultCert: TestCertificate;
let origin: { server: Server; wss: WebSocketServer; url: string };
let serviceKeys: Awaited<ReturnType<typeof generateKeyPair>>;
let tenantId = '';
let apiKey = '';
let apiKeyId = '';

async function startEchoOrigin(): Promise<typeof origin> {
  const server = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ url: req.url, headers: req.headers }));
  });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (socket, req) => {
    socket.send(JSON.stringify({ url: req.url, headers: req.headers }));
    socket.on('message', (data, binary) => socket.send(data, { binary }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, wss, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function admin(method: string, pathname: string, body?: unknown) {
  const response = await system.admin(method, pathname, body === undefined ? {} : { body });
  expect(response.status, `${method} ${pathname}: ${response.text}`).toBeLessThan(300);
  return response.body;
}

function wsConnect(
  pathAndQuery: string,
): Promise<{ socket: WebSocket; hello: { url: string; headers: IncomingHttpHeaders } }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`ws://127.0.0.1:${gateway.port}${pathAndQuery}`, {
      headers: { host: 'acme.localhost' },
    });
    socket.once('unexpected-response', (_req, res) => reject(new Error(`status ${res.statusCode}`)));
    socket.once('error', reject);
    // A key revoked while this upgrade went through closes the WebSocket (1008) before the origin's hello.
    socket.once('close', (code) => reject(new Error(`closed ${code} before the first message`)));
    socket.once('message', (data) => resolve({ socket, hello: JSON.parse(String(data)) }));
  });
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'edge-e2e-'));
  ca = await createTestCa();
  defaultCert = await selfSignedTestCertificate({ dnsNames: ['*.localhost', '*.vantageedge.dev'] });
  await writeFile(path.join(dir, 'cert.pem'), defaultCert.chainPem);
  await writeFile(path.join(dir, 'key.pem'), defaultCert.privateKeyPem);
  origin = await startEchoOrigin();
  serviceKeys = await generateKeyPair('ES256');
  tlsPort = await freePort();
  system = await TestSystem.create({
    controlPlaneEnv: { CERTIFICATE_ENCRYPTION_KEY: KEK },
    gatewayEnv: {
      CERTIFICATE_ENCRYPTION_KEY: KEK,
      GATEWAY_TLS_PORT: String(tlsPort),
      GATEWAY_TLS_CERT_FILE: path.join(dir, 'cert.pem'),
      GATEWAY_TLS_KEY_FILE: path.join(dir, 'key.pem'),
    },
  });
  await system.startControlSide();
  [gateway] = (await system.startGateways(1)) as [GatewayReplica];
}, 240_000);

afterAll(async () => {
  await system?.close();
  origin?.wss.close();
  origin?.server.closeAllConnections();
  await new Promise<void>((resolve) => (origin ? origin.server.close(() => resolve()) : resolve()));
  await stopAllServices();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('edge protocols across processes', () => {
  let acmeCert: TestCertificate;
  let certificateId = '';

  it('configures a tenant with routes of every auth mode, a verified domain and its certificate', async () => {
    const serviceJwk = {
      ...(await exportJWK(serviceKeys.publicKey)),
      kid: 'svc-1',
      alg: 'ES256',
      use: 'sig',
    };
    const tenant = await admin('POST', '/api/v1/tenants', {
      name: 'Acme Edge',
      subdomain: 'acme',
      clerk_org_id: ORG,
      settings: { service_accounts: [{ id: 'billing', keys: [serviceJwk], scopes: ['billing'] }] },
    });
    tenantId = tenant['id'] as string;
    const added = await admin('POST', '/api/v1/origins', {
      tenant_id: tenantId,
      name: 'echo',
      url: origin.url,
    });
    const originId = added['id'] as string;
    for (const [pattern, mode, extra] of [
      ['/public/*', 'public', {}],
      ['/jwt/*', 'jwt_required', {}],
      ['/key/*', 'apikey_required', {}],
      ['/either/*', 'jwt_or_apikey', {}],
      ['/svc/*', 'service', {}],
      ['/ws/*', 'apikey_required', { websocket_token: 'query' }],
    ] as const) {
      await admin('POST', '/api/v1/routes', {
        tenant_id: tenantId,
        origin_id: originId,
        path_pattern: pattern,
        auth_mode: mode,
        ...extra,
      });
    }
    const key = await admin('POST', '/api/v1/api-keys', { tenant_id: tenantId, name: 'edge' });
    apiKey = key['key'] as string;
    apiKeyId = key['id'] as string;
    await admin('POST', `/api/v1/tenants/${tenantId}/domains`, { domain: DOMAIN, verified: true });

    acmeCert = await issueTestCertificate(ca, { dnsNames: [DOMAIN] });
    const uploaded = await admin('POST', '/api/v1/certificates', {
      tenant_id: tenantId,
      domains: [DOMAIN],
      certificate_pem: acmeCert.chainPem,
      private_key_pem: acmeCert.privateKeyPem,
    });
    certificateId = uploaded['id'] as string;
    expect(JSON.stringify(uploaded)).not.toContain('PRIVATE KEY');

    await eventually(
      'the gateway process serves the tenant certificate for its custom domain',
      async () =>
        (await tlsHandshake({ port: tlsPort, servername: DOMAIN })).fingerprint256 ===
        acmeCert.fingerprint256,
      { system, timeoutMs: 30_000 },
    );
    const verified = await tlsHandshake({ port: tlsPort, servername: DOMAIN, ca: ca.certificatePem });
    expect(verified.authorized).toBe(true);
    for (const platformHost of ['acme.localhost', 'acme.vantageedge.dev', 'unknown.example.org']) {
      expect(
        (await tlsHandshake({ port: tlsPort, servername: platformHost })).fingerprint256,
        platformHost,
      ).toBe(defaultCert.fingerprint256);
    }
  }, 90_000);

  it('HTTP/2 requests pass every auth mode with its credential and are refused without', async () => {
    const session = http2Connect(`https://127.0.0.1:${tlsPort}`, {
      ca: ca.certificatePem,
      servername: DOMAIN,
    });
    const userToken = await system.token({ userId: 'user_edge_member', orgId: ORG, orgRole: 'member' });
    const now = Math.floor(Date.now() / 1000);
    const serviceToken = await new SignJWT({ scope: 'billing' })
      .setProtectedHeader({ alg: 'ES256', kid: 'svc-1' })
      .setIssuer('billing')
      .setSubject('billing')
      .setAudience(DOMAIN)
      .setIssuedAt(now)
      .setExpirationTime(now + 60)
      .sign(serviceKeys.privateKey);
    try {
      const cases: Array<[string, Record<string, string>]> = [
        ['/public/a', {}],
        ['/jwt/a', { authorization: `Bearer ${userToken}` }],
        ['/key/a', { 'x-api-key': apiKey }],
        ['/either/a', { authorization: `Bearer ${userToken}` }],
        ['/either/b', { 'x-api-key': apiKey }],
        ['/svc/a', { authorization: `Bearer ${serviceToken}` }],
      ];
      for (const [pathname, headers] of cases) {
        const allowed = await http2Request(session, { path: pathname, authority: DOMAIN, headers });
        expect(allowed.status, `${pathname}: ${allowed.body}`).toBe(200);
        expect(JSON.parse(allowed.body).headers['x-forwarded-proto']).toBe('https');
        if (pathname !== '/public/a') {
          const refused = await http2Request(session, { path: pathname, authority: DOMAIN });
          expect(refused.status, pathname).toBe(401);
        }
      }
      expect(session.alpnProtocol).toBe('h2');
    } finally {
      session.close();
    }
  });

  it('a renewed certificate replaces the old one under continuous load with no failed request', async () => {
    const renewed = await issueTestCertificate(ca, { dnsNames: [DOMAIN] });
    const seen = new Set<string>();
    const failures: string[] = [];
    let requests = 0;
    let running = true;
    const worker = async () => {
      // Each request a new TLS connection, so every one is a handshake that picks a certificate.
      while (running && requests < 5_000) {
        try {
          const response = await https1Request(tlsPort, DOMAIN, '/public/load', { ca: ca.certificatePem });
          if (response.status !== 200) failures.push(`status ${response.status}`);
          seen.add(response.fingerprint256);
        } catch (error) {
          failures.push(String(error));
        }
        requests++;
      }
    };
    // Four clients at once, so handshakes are in progress while the certificate changes.
    const load = Promise.all([worker(), worker(), worker(), worker()]);
    await eventually('the load is running on the current certificate', async () => seen.size > 0, {
      system,
      timeoutMs: 30_000,
    });
    const uploaded = await admin('POST', '/api/v1/certificates', {
      tenant_id: tenantId,
      domains: [DOMAIN],
      certificate_pem: renewed.chainPem,
      private_key_pem: renewed.privateKeyPem,
    });
    await eventually(
      'new handshakes get the renewed certificate',
      async () =>
        (await tlsHandshake({ port: tlsPort, servername: DOMAIN })).fingerprint256 === renewed.fingerprint256,
      { system, timeoutMs: 30_000 },
    );
    await eventually('the load sees the renewed certificate', async () => seen.has(renewed.fingerprint256), {
      system,
      timeoutMs: 30_000,
    });
    await admin('DELETE', `/api/v1/certificates/${certificateId}`);
    certificateId = uploaded['id'] as string;
    // A few more handshakes after the old certificate is gone (counted, not timed).
    const afterDelete = requests;
    await eventually('the load goes on after the delete', async () => requests >= afterDelete + 5, {
      system,
      timeoutMs: 30_000,
    });
    running = false;
    await load;
    console.log(`certificate rotation under load: ${requests} HTTPS requests, ${failures.length} failed`);
    expect(failures).toEqual([]);
    expect(seen).toEqual(new Set([acmeCert.fingerprint256, renewed.fingerprint256]));
  }, 90_000);

  it('a WebSocket echo is authenticated at connect; a revoked key is refused', async () => {
    await expect(wsConnect('/ws/chat')).rejects.toThrow('status 401');
    const { socket, hello } = await wsConnect(`/ws/chat?access_token=${apiKey}`);
    expect(hello.url).toBe('/ws/chat');
    const echoed = new Promise<string>((resolve) => socket.once('message', (data) => resolve(String(data))));
    socket.send('ping through the gateway');
    expect(await echoed).toBe('ping through the gateway');
    socket.close();

    await admin('POST', `/api/v1/api-keys/${apiKeyId}/revoke`, { reason: 'e2e' });
    await eventually(
      'the revoked key is refused at connect',
      async () => {
        try {
          const opened = await wsConnect(`/ws/chat?access_token=${apiKey}`);
          opened.socket.close();
          return false;
        } catch (error) {
          return String(error).includes('status 401');
        }
      },
      { system, timeoutMs: 30_000 },
    );
  }, 60_000);

  it('a gateway stopped with SIGTERM closes open WebSockets with 1001', async () => {
    const { socket } = await new Promise<{ socket: WebSocket }>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${gateway.port}/public/last`, {
        headers: { host: 'acme.localhost' },
      });
      ws.once('error', reject);
      ws.once('message', () => resolve({ socket: ws }));
    });
    const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
    await gateway.service.stop(10_000);
    expect(await closed).toBe(1001);
  }, 30_000);
});
