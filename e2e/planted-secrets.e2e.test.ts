import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TenantSnapshot } from '@vantageedge/shared/domain/gateway-config';
import { encodeSnapshotMessage } from '@vantageedge/shared/snapshot-bus/codec';
import { createKafkaSnapshotBus } from '@vantageedge/shared/snapshot-bus/kafka-snapshot-bus';
import { TEST_INFRA } from '@vantageedge/shared/testing/infrastructure';
import {
  CLIENT_AUTH_USAGE,
  createTestCa,
  issueTestCertificate,
  type TestCertificate,
} from '@vantageedge/shared/testing/test-certificates';
import { Redis } from 'ioredis';
import { generateKeyPair, SignJWT } from 'jose';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import {
  type AdminResponse,
  type CliRun,
  ENTRY_POINTS,
  eventually,
  freePort,
  type GatewayReplica,
  httpRequest,
  runVantageedge,
  type ServiceProcess,
  sleep,
  startOrigin,
  startService,
  stopAllServices,
  type TestOrigin,
  TestSystem,
} from './harness.js';

/**
 * Secrets planted everywhere the product takes them, the whole product running as processes: API keys
 * (answered once, at issue and rotation), a tenant certificate's and an origin client certificate's
 * private keys, admin session tokens, the gateway's admin token, a route's credential toward its origin
 * (write-only), clients' tokens, cookies and keys in the query, and credentials in URLs (an origin's,
 * the CLI's admin API URL). None of them may reach any service's output, the CLI's, an admin API or
 * gateway admin answer other than the one that issues a key, Redis, or a PostgreSQL row other than the
 * event log's and the snapshots'. Those, and the snapshots on Kafka, hold the route credential (the
 * gateways send it) and the private keys sealed only. Failures are driven too (a wrong key, expired and
 * forged tokens, an origin refusing connections, a tenant's key set failing to load from a URL with a
 * token in its query, commands refused for their credentials, an undecodable snapshot on the topic, a
 * gateway whose Redis and Clerk key set are unreachable — with Redis's password in its URL and Clerk's
 * secret key —, a control plane whose PostgreSQL is, with the database password in its URL), and the
 * spans every service exports and every listener's /metrics are searched as well; each secret is looked
 * for as written, URL-encoded and in base64.
 */

const SUBDOMAIN = 'plantedsweep';
const DOMAIN = 'secure.plantedsweep.test';
const KEK = randomBytes(32).toString('base64');
const PREVIOUS_KEK = randomBytes(32).toString('base64');
const ROUTE_SECRET = 'planted-route-secret-0123456789';
const BEARER = 'planted.client-bearer.0123456789';
const COOKIE_SECRET = 'planted-cookie-0123456789';
const QUERY_SECRET = 'planted-query-key-0123456789';
const ORIGIN_URL_PASSWORD = 'planted-origin-url-password-0123456789';
const CLI_URL_PASSWORD = 'planted-cli-url-password-0123456789';
const GATEWAY_ADMIN_TOKEN = 'planted-gateway-admin-token-0123456789';
const PROXY_SECRET = 'planted-proxy-authorization-0123456789';
const PROXY_BASIC = Buffer.from(`user:${PROXY_SECRET}`).toString('base64');
const WRONG_KEY = `ve_live_planted${randomBytes(16).toString('hex')}`;
const JWKS_URL_SECRET = 'planted-jwks-url-token-0123456789';
const REFUSED_SECRET = 'planted-refused-command-0123456789';
const SNAPSHOT_SECRET = 'planted-undecodable-snapshot-0123456789';
const REDIS_PASSWORD = 'planted-redis-password-0123456789';
const DATABASE_PASSWORD = 'planted-database-password-0123456789';
const CLERK_SECRET_KEY = 'sk_test_planted-clerk-secret-0123456789';
const OIDC_ISSUER = 'https://idp.plantedsweep.test';
const OIDC_AUDIENCE = 'planted-api';

/** What the gateways send for a tenant, kept in its events and snapshots (never in a read model). */
const GATEWAY_CREDENTIALS = ['the route credential', "a key set URL's token"];

/** Counted in Redis for an hour: the counters are still there when Redis is read. */
const HOURLY_LIMIT_PER_KEY = {
  algorithm: 'sliding_window',
  requests_per_second: 1,
  window_seconds: 3600,
  limit: 1000,
  scope: 'api_key',
};

let system: TestSystem;
let gateway: GatewayReplica;
let plain: TestOrigin;
let mutual: TestOrigin;
let folder = '';
let lastPosition = '';
let tenantId = '';
let adminToken = '';
let memberToken = '';
let viewerToken = '';
let expiredToken = '';
let oidcToken = '';
let serverCertificate: TestCertificate;
let clientCertificate: TestCertificate;
/** Key plaintexts, each answered once (issue, rotation). */
const plaintexts: string[] = [];
/** Every admin API answer except the ones that issue a key, with what was asked. */
const answers: string[] = [];
/** Every snapshot the gateways were sent on Kafka. */
const snapshots: TenantSnapshot[] = [];
let closeBus: () => Promise<void> = async () => {};
/** Every CLI run's output (stdout and stderr), with its arguments. */
const cliOutputs: Array<{ args: string; output: string }> = [];
/** Every span export the services sent (OTLP/HTTP JSON bodies). */
const spanExports: string[] = [];
const collector = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    spanExports.push(Buffer.concat(chunks).toString());
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
});
/** A tenant's identity provider whose key set never loads: every fetch answers 500. */
let keySetFetches = 0;
const failingKeySet = http.createServer((_req, res) => {
  keySetFetches += 1;
  res.writeHead(500, { 'content-type': 'text/plain' }).end('key set unavailable');
});
const metricsPorts: Record<string, number> = {};
/** A WebSocket origin: every upgrade it accepts, its path and headers as received. */
const upgradesReceived: string[] = [];
const webSocketOrigin = http.createServer();
new WebSocketServer({
  server: webSocketOrigin,
  handleProtocols: (protocols) => [...protocols][0] ?? false,
}).on('connection', (socket, req) => {
  upgradesReceived.push(`${req.url} ${JSON.stringify(req.headers)}`);
  socket.close();
});

/**
 * Lines of a PEM private key's base64 body: any copy of the key in the clear holds them. Not one the
 * certificate's PEM holds too: a PKCS#8 EC key carries its public key, and when its bytes fall on the
 * same line boundaries in both (a run in a few dozen) that line is in every answer showing the
 * certificate.
 */
function privateKeyLines(certificate: TestCertificate): string[] {
  return certificate.privateKeyPem
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length >= 40 && !line.startsWith('-----') && !certificate.chainPem.includes(line));
}

/** A JWT's signature: enough to replay nothing, yet no copy of the token may keep it either. */
function signatureOf(token: string): string {
  return token.split('.')[2] ?? '';
}

/** A secret as written, URL-encoded and in base64 (standard and URL-safe). */
function encodings(secret: string): string[] {
  const base64 = Buffer.from(secret).toString('base64');
  return [
    ...new Set([
      secret,
      encodeURIComponent(secret),
      base64.replace(/=+$/, ''),
      Buffer.from(secret).toString('base64url'),
    ]),
  ];
}

/** Every secret planted, by name (the key plaintexts and tokens once they exist). */
function planted(): Array<[string, string]> {
  const tokens: Array<[string, string]> = [
    ['the platform admin token', adminToken],
    ['the member token', memberToken],
    ['the viewer token', viewerToken],
    ['an expired admin token', expiredToken],
    ["a tenant identity provider's token", oidcToken],
  ];
  const secrets: Array<[string, string]> = [
    ['the route credential', ROUTE_SECRET],
    ['a client bearer token', BEARER],
    ['a client cookie', COOKIE_SECRET],
    ['a key in the query', QUERY_SECRET],
    ["an origin URL's password", ORIGIN_URL_PASSWORD],
    ["the CLI URL's password", CLI_URL_PASSWORD],
    ['the certificate encryption key', KEK],
    ['the previous certificate encryption key', PREVIOUS_KEK],
    ['the API key pepper', system.pepper],
    ["the gateway's admin token", GATEWAY_ADMIN_TOKEN],
    ['a proxy authorization', PROXY_SECRET],
    ['a proxy authorization in Basic', PROXY_BASIC],
    ['a wrong API key', WRONG_KEY],
    ["a key set URL's token", JWKS_URL_SECRET],
    ["a refused command's credential", REFUSED_SECRET],
    ["an undecodable snapshot's credential", SNAPSHOT_SECRET],
    ["Redis's password", REDIS_PASSWORD],
    ["PostgreSQL's password", DATABASE_PASSWORD],
    ["Clerk's secret key", CLERK_SECRET_KEY],
    ...tokens,
    ...tokens.map(([name, token]): [string, string] => [`${name}'s signature`, signatureOf(token)]),
    ...plaintexts.map((key, index): [string, string] => [`API key plaintext ${index}`, key]),
    // Keys are stored as keyed hashes (the pepper's HMAC): a plain digest could be checked offline.
    ...[...plaintexts, WRONG_KEY].flatMap(
      (key, index): Array<[string, string]> =>
        ['sha256', 'sha512'].flatMap(
          (algorithm): Array<[string, string]> => [
            [`API key ${index}'s unkeyed ${algorithm}`, createHash(algorithm).update(key).digest('hex')],
            [`API key ${index}'s unkeyed ${algorithm}`, createHash(algorithm).update(key).digest('base64')],
          ],
        ),
    ),
  ];
  return [
    ...secrets
      .filter(([, secret]) => secret.length > 0)
      .flatMap(([name, secret]) => encodings(secret).map((form): [string, string] => [name, form])),
    ...privateKeyLines(serverCertificate).map((line): [string, string] => ["the server key's PEM", line]),
    ...privateKeyLines(clientCertificate).map((line): [string, string] => ["the client key's PEM", line]),
  ];
}

/** The names of the planted secrets `text` holds, but for `allowed`. */
function plantedIn(text: string, allowed: readonly string[] = []): string[] {
  return [
    ...new Set(
      planted()
        .filter(([name, secret]) => !allowed.includes(name) && text.includes(secret))
        .map(([name]) => name),
    ),
  ];
}

/** A Redis value as text, whatever its type. */
async function redisValue(redis: Redis, key: string): Promise<string> {
  const type = await redis.type(key);
  if (type === 'string') return (await redis.getBuffer(key))?.toString('latin1') ?? '';
  if (type === 'hash') return JSON.stringify(await redis.hgetall(key));
  if (type === 'zset') return JSON.stringify(await redis.zrange(key, '0', '-1', 'WITHSCORES'));
  if (type === 'list') return JSON.stringify(await redis.lrange(key, 0, -1));
  if (type === 'set') return JSON.stringify(await redis.smembers(key));
  if (type === 'stream') return JSON.stringify(await redis.xrange(key, '-', '+'));
  return type;
}

/**
 * An explanation tells its asker what the origin would receive, the query the asker wrote included:
 * the only planted secret it may show is that query's.
 */
function ownQueryEchoed(asked: string): string[] {
  return /^(POST \S+\/explain|explain) /.test(asked) ? ['a key in the query'] : [];
}

async function admin(
  method: string,
  pathname: string,
  {
    label = pathname,
    ...options
  }: { body?: unknown; token?: string; headers?: Record<string, string>; label?: string } = {},
): Promise<AdminResponse> {
  const answer = await system.admin(method, pathname, options);
  answers.push(`${method} ${label} → ${answer.status} ${JSON.stringify([...answer.headers])} ${answer.text}`);
  return answer;
}

async function created(pathname: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
  const answer = await admin('POST', pathname, { body });
  expect(answer.status, `${pathname}: ${answer.text}`).toBe(201);
  return answer.body;
}

async function cli(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  const run = await runVantageedge(args, {
    configFile: path.join(folder, 'config.json'),
    env: { VANTAGEEDGE_URL: system.controlPlaneUrl, VANTAGEEDGE_TOKEN: adminToken, ...env },
  });
  cliOutputs.push({
    args: `${args.slice(0, 2).join(' ')} → ${run.code}`,
    output: `${run.stdout}\n${run.stderr}`,
  });
  return run;
}

beforeAll(async () => {
  const ca = await createTestCa('Planted Sweep CA');
  const clientCa = await createTestCa('Planted Sweep Client CA');
  serverCertificate = await issueTestCertificate(ca, { dnsNames: [DOMAIN] });
  clientCertificate = await issueTestCertificate(clientCa, {
    dnsNames: [],
    commonName: 'gateway-of-plantedsweep',
    extendedKeyUsages: [CLIENT_AUTH_USAGE],
  });
  const originCertificate = await issueTestCertificate(ca, { dnsNames: [], ipAddresses: ['127.0.0.1'] });
  plain = await startOrigin('plain', (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=300' });
    res.end('ok');
    return true;
  });
  mutual = await startOrigin(
    'mutual',
    (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
      return true;
    },
    {
      tls: {
        certificatePem: originCertificate.chainPem,
        privateKeyPem: originCertificate.privateKeyPem,
        clientCaPem: clientCa.certificatePem,
      },
    },
  );
  folder = await mkdtemp(path.join(os.tmpdir(), 'vantageedge-e2e-planted-'));
  for (const server of [collector, failingKeySet, webSocketOrigin]) {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  }
  const traced = {
    OTEL_ENABLED: 'true',
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(collector.address() as AddressInfo).port}`,
    OTEL_BSP_SCHEDULE_DELAY: '100',
    LOG_LEVEL: 'debug',
  };
  for (const name of ['control-plane', 'read-model-projector', 'snapshot-projector']) {
    metricsPorts[name] = await freePort();
  }
  system = await TestSystem.create({
    controlPlaneEnv: {
      ...traced,
      CERTIFICATE_ENCRYPTION_KEY: KEK,
      CERTIFICATE_ENCRYPTION_PREVIOUS_KEYS: PREVIOUS_KEK,
      CONTROL_PLANE_METRICS_PORT: String(metricsPorts['control-plane']),
    },
    projectorEnv: {
      ...traced,
      READ_MODEL_PROJECTOR_METRICS_PORT: String(metricsPorts['read-model-projector']),
      SNAPSHOT_PROJECTOR_METRICS_PORT: String(metricsPorts['snapshot-projector']),
    },
    gatewayEnv: {
      ...traced,
      CERTIFICATE_ENCRYPTION_KEY: KEK,
      CERTIFICATE_ENCRYPTION_PREVIOUS_KEYS: PREVIOUS_KEK,
      GATEWAY_ADMIN_TOKEN,
    },
  });
  await system.startControlSide();
  const bus = createKafkaSnapshotBus({
    brokers: TEST_INFRA.kafkaBrokers,
    clientId: 'e2e-planted-secrets-reader',
    topic: system.topic,
    partitions: 3,
    replicationFactor: 1,
    maxMessageBytes: 8 * 1024 * 1024,
  });
  const subscription = await bus.subscribe({
    onMessage: (message) => {
      if (message.kind === 'snapshot') snapshots.push(message.snapshot);
    },
    onCaughtUp: () => {},
    onHealth: () => {},
  });
  closeBus = async () => {
    await subscription.close();
    await bus.close();
  };
  [gateway] = (await system.startGateways(1)) as [GatewayReplica];
  adminToken = await system.token();
  memberToken = await system.token({ userId: 'user_planted_member', orgId: 'org_planted' });

  tenantId = (
    await created('/api/v1/tenants', {
      name: 'Planted',
      subdomain: SUBDOMAIN,
      clerk_org_id: 'org_planted',
    })
  )['id'] as string;
  await created('/api/v1/users', {
    tenant_id: tenantId,
    clerk_user_id: 'user_planted_viewer',
    email: 'viewer@plantedsweep.test',
    role: 'viewer',
  });
  viewerToken = await system.token({ userId: 'user_planted_viewer' });
  await admin('POST', `/api/v1/tenants/${tenantId}/domains`, { body: { domain: DOMAIN, verified: true } });
  const serverCertificateId = (
    await created('/api/v1/certificates', {
      tenant_id: tenantId,
      domains: [DOMAIN],
      certificate_pem: serverCertificate.chainPem,
      private_key_pem: serverCertificate.privateKeyPem,
    })
  )['id'] as string;
  const clientCertificateId = (
    await created('/api/v1/certificates', {
      tenant_id: tenantId,
      certificate_pem: clientCertificate.chainPem,
      private_key_pem: clientCertificate.privateKeyPem,
    })
  )['id'] as string;
  await admin('POST', `/api/v1/certificates/${serverCertificateId}/reseal`);

  const plainOrigin = (
    await created('/api/v1/origins', {
      tenant_id: tenantId,
      name: 'plain',
      url: plain.url,
    })
  )['id'] as string;
  const mutualOrigin = (
    await created('/api/v1/origins', {
      tenant_id: tenantId,
      name: 'mutual',
      url: mutual.url,
      tls: { ca_certificates: ca.certificatePem, client_certificate_id: clientCertificateId },
      health_check: { active: { enabled: false } },
    })
  )['id'] as string;
  // Credentials in an origin's URL are refused; the refusal must not quote them.
  const withPassword = await admin('POST', '/api/v1/origins', {
    body: {
      tenant_id: tenantId,
      name: 'with-password',
      url: `https://user:${ORIGIN_URL_PASSWORD}@api.plantedsweep.test`,
    },
  });
  expect(withPassword.status, withPassword.text).toBe(400);

  const route = async (body: Record<string, unknown>) =>
    created('/api/v1/routes', { tenant_id: tenantId, origin_id: plainOrigin, ...body });
  await route({ path_pattern: '/open/*', auth_mode: 'public' });
  await route({
    path_pattern: '/keyed/*',
    auth_mode: 'apikey_required',
    rate_limit: HOURLY_LIMIT_PER_KEY,
  });
  await route({
    path_pattern: '/cached/*',
    auth_mode: 'public',
    rate_limit: { ...HOURLY_LIMIT_PER_KEY, scope: 'ip' },
    cache_policy: { enabled: true, ttl_seconds: 300, cache_key_pattern: 'path+query' },
  });
  await route({ path_pattern: '/jwt/*', auth_mode: 'jwt_required' });
  await route({
    path_pattern: '/upstream/*',
    auth_mode: 'public',
    request_headers: { set: { authorization: `Bearer ${ROUTE_SECRET}` } },
  });
  await created('/api/v1/routes', {
    tenant_id: tenantId,
    origin_id: mutualOrigin,
    path_pattern: '/mutual/*',
    auth_mode: 'public',
  });

  // A key issued and rotated with Idempotency-Keys: their answers are kept to be replayed.
  const issueBody = { tenant_id: tenantId, name: 'planted' };
  const issued = await system.admin('POST', '/api/v1/api-keys', {
    body: issueBody,
    headers: { 'idempotency-key': 'planted-issue' },
  });
  expect(issued.status, issued.text).toBe(201);
  plaintexts.push(issued.body['key'] as string);
  const keyId = issued.body['id'] as string;
  const rotated = await system.admin('POST', `/api/v1/api-keys/${keyId}/rotate`, {
    headers: { 'idempotency-key': 'planted-rotate' },
  });
  expect(rotated.status, rotated.text).toBe(201);
  plaintexts.push(rotated.body['key'] as string);
  const position = rotated.headers.get('x-event-position') ?? '';
  lastPosition = position;
  expect(plaintexts.every((key) => key.startsWith('ve_live_'))).toBe(true);
  // Another caller sending the same request with the same Idempotency-Key is no replay of the answer.
  const orgAdminToken = await system.token({
    userId: 'user_planted_admin',
    orgId: 'org_planted',
    orgRole: 'admin',
  });
  for (const token of [orgAdminToken, memberToken, viewerToken]) {
    await admin('POST', '/api/v1/api-keys', {
      body: issueBody,
      token,
      headers: { 'idempotency-key': 'planted-issue' },
    });
    await admin('POST', `/api/v1/api-keys/${keyId}/rotate`, {
      token,
      headers: { 'idempotency-key': 'planted-rotate' },
    });
  }

  // Clients' credentials through the gateway, once the tenant's last change is served.
  await eventually(
    'the gateway serves the rotated key',
    async () =>
      (await gateway.get(SUBDOMAIN, '/keyed/1', { 'x-api-key': plaintexts[1] as string })).status === 200,
    { system, timeoutMs: 30_000 },
  );
  const credentials = { authorization: `Bearer ${BEARER}`, cookie: `session=${COOKIE_SECRET}` };
  for (const pathname of ['/open/1', '/upstream/1', '/jwt/1', '/mutual/1', '/cached/1']) {
    for (const parameter of [
      'apikey',
      'api_key',
      'access_token',
      'token',
      'client_secret',
      'password',
      'X-Amz-Signature',
      'sig',
      'jwt',
      'key',
    ]) {
      await gateway.get(SUBDOMAIN, `${pathname}?${parameter}=${QUERY_SECRET}`, credentials);
    }
  }
  for (const key of plaintexts) {
    await gateway.get(SUBDOMAIN, `/keyed/1?apikey=${key}`, { cookie: `session=${COOKIE_SECRET}` });
    await gateway.get(SUBDOMAIN, '/keyed/1', { 'x-api-key': key });
    await gateway.get(SUBDOMAIN, '/keyed/1', { authorization: `Bearer ${key}` });
  }
  expect((await gateway.get(SUBDOMAIN, '/mutual/1')).status).toBe(200);
  for (const pathname of ['/status', '/metrics']) {
    for (const token of [GATEWAY_ADMIN_TOKEN, BEARER]) {
      const answer = await fetch(`${gateway.adminUrl}${pathname}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      answers.push(`gateway GET ${pathname} → ${answer.status} ${await answer.text()}`);
    }
  }
  expect(answers.filter((answer) => /^gateway GET \S+ → 200 /.test(answer))).toHaveLength(2);
  expect(mutual.clientSubjects.length).toBeGreaterThan(0);

  // What tenant users and platform admins read back: every resource, the history, audit and explain.
  for (const token of [adminToken, memberToken, viewerToken]) {
    for (const pathname of [
      `/api/v1/tenants/${tenantId}`,
      `/api/v1/origins?tenant_id=${tenantId}`,
      `/api/v1/origins/${mutualOrigin}`,
      `/api/v1/routes?tenant_id=${tenantId}`,
      `/api/v1/api-keys?tenant_id=${tenantId}`,
      `/api/v1/api-keys/${keyId}`,
      `/api/v1/certificates?tenant_id=${tenantId}`,
      `/api/v1/certificates/${serverCertificateId}`,
      `/api/v1/certificates/${clientCertificateId}`,
      `/api/v1/audit-log?tenant_id=${tenantId}&limit=200`,
      `/api/v1/tenants/${tenantId}/config`,
      `/api/v1/tenants/${tenantId}/config/document`,
      `/api/v1/tenants/${tenantId}/config/history?limit=200`,
      `/api/v1/tenants/${tenantId}/config/diff?from=1&to=${position}`,
      `/api/v1/tenants/${tenantId}/rollout`,
    ]) {
      await admin('GET', pathname, { token });
    }
    for (const headers of [
      { 'x-api-key': plaintexts[1] as string },
      { authorization: `Bearer ${BEARER}`, cookie: `session=${COOKIE_SECRET}` },
    ]) {
      await admin('POST', `/api/v1/tenants/${tenantId}/explain`, {
        token,
        body: {
          method: 'GET',
          host: `${SUBDOMAIN}.localhost`,
          path: `/keyed/1?apikey=${QUERY_SECRET}`,
          headers,
        },
      });
    }
  }

  // Admin API callers' credentials where they do not belong, or in a session cookie.
  await admin('GET', `/api/v1/tenants?access_token=${QUERY_SECRET}`, {
    label: '/api/v1/tenants?access_token=…',
  });
  await admin('POST', '/api/v1/api-keys', { body: { tenant_id: tenantId, name: 'x', key: QUERY_SECRET } });
  const cookieAnswer = await fetch(`${system.controlPlaneUrl}/api/v1/tenants/${tenantId}`, {
    headers: { cookie: `__session=${memberToken}; other=${COOKIE_SECRET}` },
  });
  answers.push(`GET with a session cookie → ${cookieAnswer.status} ${await cookieAnswer.text()}`);

  // The CLI: reads, a dump, the history, explain with credentials, and its errors.
  for (const args of [
    ['get', 'keys', '-t', SUBDOMAIN, '-o', 'json'],
    ['get', 'audit', '-t', SUBDOMAIN, '-o', 'json'],
    ['get', 'origins', '-t', SUBDOMAIN, '-o', 'yaml'],
    ['dump', '-t', SUBDOMAIN],
    ['history', '-t', SUBDOMAIN],
    [
      'explain',
      'GET',
      `http://${SUBDOMAIN}.localhost/keyed/1?apikey=${QUERY_SECRET}`,
      '-H',
      `x-api-key: ${plaintexts[1]}`,
    ],
  ]) {
    expect((await cli(args)).code, cliOutputs.at(-1)?.output).toBe(0);
  }
  await cli(['get', 'keys', '-t', SUBDOMAIN], { VANTAGEEDGE_TOKEN: `${adminToken.slice(0, -4)}AAAA` });
  const credentialsUrl = `http://user:${CLI_URL_PASSWORD}@127.0.0.1:${new URL(system.controlPlaneUrl).port}`;
  await cli(['get', 'keys', '-t', SUBDOMAIN], { VANTAGEEDGE_URL: credentialsUrl });
  await cli(['login', '--url', credentialsUrl, '--token', adminToken], { VANTAGEEDGE_URL: '' });
  await cli(['login', '--url', `http://user:${CLI_URL_PASSWORD}@127.0.0.1:99999`, '--token', adminToken]);

  await failures(plainOrigin, keyId);
  await webSocketTokens();
  await unreachableStores();

  // Every listener's metrics, scraped last.
  const scrapes = [
    ...Object.entries(metricsPorts).map(([name, port]) => [name, `http://127.0.0.1:${port}/metrics`]),
    ['gateway', `${gateway.adminUrl}/metrics`],
  ];
  const scraped: number[] = [];
  for (const [name, url] of scrapes) {
    const answer = await fetch(url as string, {
      headers: { authorization: `Bearer ${GATEWAY_ADMIN_TOKEN}` },
    });
    scraped.push(answer.status);
    answers.push(`${name} GET /metrics at the end → ${answer.status} ${await answer.text()}`);
  }
  expect(scraped).toEqual([200, 200, 200, 200]);
}, 300_000);

/** A WebSocket upgrade through the gateway: the status it answered (101 once switched). */
function upgrade(pathname: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${gateway.url}${pathname}`, {
      headers: {
        host: `${SUBDOMAIN}.localhost`,
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': randomBytes(16).toString('base64'),
        ...headers,
      },
    });
    req.once('upgrade', (res, socket) => {
      socket.destroy();
      resolve(res.statusCode ?? 0);
    });
    req.once('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.once('error', reject);
    req.end();
  });
}

/** Keys a browser sends where it can put them on a WebSocket: the query and a subprotocol entry. */
async function webSocketTokens(): Promise<void> {
  const origin = (
    await created('/api/v1/origins', {
      tenant_id: tenantId,
      name: 'websockets',
      url: `http://127.0.0.1:${(webSocketOrigin.address() as AddressInfo).port}`,
      health_check: { active: { enabled: false } },
    })
  )['id'] as string;
  for (const websocket_token of ['query', 'subprotocol']) {
    await created('/api/v1/routes', {
      tenant_id: tenantId,
      origin_id: origin,
      path_pattern: `/ws-${websocket_token}/*`,
      auth_mode: 'apikey_required',
      websocket_token,
    });
  }
  const key = plaintexts[1] as string;
  await eventually(
    'a key in a subprotocol opens a WebSocket',
    async () =>
      (await upgrade('/ws-subprotocol/1', { 'sec-websocket-protocol': `vantageedge.token.${key}, chat` })) ===
      101,
    { system, timeoutMs: 30_000 },
  );
  expect(await upgrade(`/ws-query/1?access_token=${key}&room=1`)).toBe(101);
  expect(await upgrade(`/ws-query/1?access_token=${WRONG_KEY}`)).toBe(401);
  expect(
    await upgrade('/ws-subprotocol/1', { 'sec-websocket-protocol': `vantageedge.token.${WRONG_KEY}, chat` }),
  ).toBe(401);
  expect(upgradesReceived.length).toBeGreaterThanOrEqual(2);
}

/** Resolves once `service` has written a line matching `pattern` (or has exited); throws after 30 s. */
async function untilLogged(service: ServiceProcess, pattern: RegExp): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!pattern.test(service.output()) && !service.exited()) {
    if (Date.now() > deadline)
      throw new Error(`${service.name}: nothing matched ${pattern}\n${service.tail()}`);
    await sleep(100);
  }
}

/**
 * Services whose stores cannot be reached, with credentials in their URLs: a gateway whose Redis
 * refuses connections and whose Clerk key set (fetched with Clerk's secret key) does not load, serving
 * keyed, cached and Clerk-authenticated requests, and a control plane whose PostgreSQL refuses them.
 */
async function unreachableStores(): Promise<void> {
  const [closed, port, adminPort, controlPlanePort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const { CLERK_JWT_KEY: _clerkKey, ...common } = system.commonEnv();
  const degraded = startService('gateway with unreachable stores', ENTRY_POINTS.gateway, {
    ...common,
    CERTIFICATE_ENCRYPTION_KEY: KEK,
    GATEWAY_ADMIN_TOKEN,
    GATEWAY_DRAIN_SECONDS: '0',
    REDIS_URL: `redis://planted:${REDIS_PASSWORD}@127.0.0.1:${closed}`,
    CLERK_SECRET_KEY,
    CLERK_API_URL: `http://127.0.0.1:${(failingKeySet.address() as AddressInfo).port}`,
    GATEWAY_PORT: String(port),
    GATEWAY_ADMIN_PORT: String(adminPort),
    GATEWAY_HOST: '127.0.0.1',
    GATEWAY_BASE_DOMAINS: 'vantageedge.dev,localhost',
    GATEWAY_REPLICA_ID: `e2e-gw-planted-degraded-${port}`,
  });
  const controlPlane = startService('control plane with PostgreSQL unreachable', ENTRY_POINTS.controlPlane, {
    ...system.commonEnv(),
    DATABASE_URL: `postgres://planted:${DATABASE_PASSWORD}@127.0.0.1:${closed}/vantageedge`,
    CONTROL_PLANE_PORT: String(controlPlanePort),
    CONTROL_PLANE_HOST: '127.0.0.1',
    CONTROL_PLANE_METRICS_PORT: '0',
  });
  system.services.push(degraded, controlPlane);
  const fetchesBefore = keySetFetches;
  const get = (pathname: string, headers: Record<string, string> = {}) =>
    httpRequest(`http://127.0.0.1:${port}${pathname}`, {
      headers: { host: `${SUBDOMAIN}.localhost`, ...headers },
    });
  await eventually(
    'the degraded gateway serves the tenant',
    async () => (await get('/open/1').catch(() => undefined))?.status === 200,
    { timeoutMs: 60_000 },
  ).catch((error: Error) => {
    const said = degraded
      .output()
      .split('\n')
      .filter((line) => !line.includes('"kind":"access"'));
    throw new Error(`${error.message}\n${said.join('\n').slice(0, 6000)}`);
  });
  for (const key of [plaintexts[1] as string, WRONG_KEY]) await get('/keyed/1', { 'x-api-key': key });
  await get(`/cached/1?api_key=${QUERY_SECRET}`, { cookie: `session=${COOKIE_SECRET}` });
  await get('/jwt/1', { authorization: `Bearer ${memberToken}` });
  await untilLogged(degraded, /"message":"redis unavailable"/);
  await untilLogged(degraded, /"message":"JWKS fetch failed"[^\n]*"source":"clerk"/);
  expect(keySetFetches).toBeGreaterThan(fetchesBefore);
  await untilLogged(controlPlane, /"message":"control plane listening"/);
  for (const pathname of ['/readyz', '/api/v1/tenants']) {
    const answer = await fetch(`http://127.0.0.1:${controlPlanePort}${pathname}`, {
      headers: { authorization: `Bearer ${adminToken}` },
    }).catch((error: Error) => ({ status: 0, text: async () => error.message }));
    answers.push(
      `control plane without PostgreSQL GET ${pathname} → ${answer.status} ${await answer.text()}`,
    );
  }
  await untilLogged(controlPlane, /"message":"dependency unavailable"/);
  await Promise.all([degraded.stop(), controlPlane.stop()]);
}

/**
 * What fails on the way: tokens expired or from a provider whose key set does not load, a wrong key, an
 * origin refusing connections, commands refused for their credentials, an undecodable snapshot.
 */
async function failures(plainOrigin: string, keyId: string): Promise<void> {
  expiredToken = await system.token({ expiresInSeconds: -120 });
  const oidcKey = await generateKeyPair('RS256');
  oidcToken = await new SignJWT({})
    .setProtectedHeader({ alg: 'RS256', kid: 'planted-kid' })
    .setIssuer(OIDC_ISSUER)
    .setAudience(OIDC_AUDIENCE)
    .setSubject('planted-user')
    .setExpirationTime('1h')
    .sign(oidcKey.privateKey);
  const keySetUrl = `http://127.0.0.1:${(failingKeySet.address() as AddressInfo).port}/jwks?token=${JWKS_URL_SECRET}`;
  const oidc = await admin('PATCH', `/api/v1/tenants/${tenantId}`, {
    body: { settings: { oidc: { issuer: OIDC_ISSUER, audience: OIDC_AUDIENCE, jwks_url: keySetUrl } } },
  });
  expect(oidc.status, oidc.text).toBe(200);
  const refusingOrigin = (
    await created('/api/v1/origins', {
      tenant_id: tenantId,
      name: 'refusing',
      url: `http://127.0.0.1:${await freePort()}`,
      health_check: { active: { enabled: false } },
    })
  )['id'] as string;
  const refusing = await created('/api/v1/routes', {
    tenant_id: tenantId,
    origin_id: refusingOrigin,
    path_pattern: '/refusing/*',
    auth_mode: 'public',
    request_headers: { set: { authorization: `Bearer ${ROUTE_SECRET}` } },
  });
  await eventually(
    'the gateway serves the refusing route',
    async () => (await gateway.get(SUBDOMAIN, '/refusing/1')).status === 502,
    { system, timeoutMs: 30_000 },
  );
  const clientCredentials = {
    authorization: `Bearer ${oidcToken}`,
    'proxy-authorization': `Basic ${PROXY_BASIC}`,
    cookie: `session=${COOKIE_SECRET}`,
  };
  await eventually(
    "the tenant's key set is fetched and fails",
    async () => {
      await gateway.get(SUBDOMAIN, '/jwt/1', clientCredentials);
      return keySetFetches > 0;
    },
    { system, timeoutMs: 30_000 },
  );
  for (const pathname of ['/jwt/1', '/refusing/1', '/open/1']) {
    await gateway.get(SUBDOMAIN, pathname, clientCredentials);
    await gateway.get(SUBDOMAIN, pathname, { authorization: `Bearer ${expiredToken}` });
    await gateway.get(SUBDOMAIN, `${pathname}?api_key=${WRONG_KEY}`, { 'proxy-authorization': PROXY_SECRET });
  }
  for (const headers of [{ 'x-api-key': WRONG_KEY }, { authorization: `Bearer ${WRONG_KEY}` }]) {
    expect((await gateway.get(SUBDOMAIN, '/keyed/1', headers)).status).toBe(401);
  }
  await admin('POST', `/api/v1/tenants/${tenantId}/explain`, {
    body: { method: 'GET', host: `${SUBDOMAIN}.localhost`, path: '/jwt/1', headers: clientCredentials },
  });
  await admin('POST', `/api/v1/tenants/${tenantId}/explain`, {
    body: {
      method: 'GET',
      host: `${SUBDOMAIN}.localhost`,
      path: '/keyed/1',
      headers: { 'x-api-key': WRONG_KEY },
    },
  });
  for (const pathname of [`/api/v1/tenants/${tenantId}`, `/api/v1/tenants/${tenantId}/config`]) {
    await admin('GET', pathname, { token: expiredToken });
  }

  // Commands refused at the credential they carry.
  for (const set of [
    { authorization: `Bearer \${${REFUSED_SECRET}}` },
    { authorization: `Bearer ${REFUSED_SECRET}\n` },
    { 'x-api-key': `${REFUSED_SECRET}\u0000` },
  ]) {
    const refused = await admin('PATCH', `/api/v1/routes/${refusing['id']}`, {
      body: { request_headers: { set } },
    });
    expect(refused.status, refused.text).toBe(400);
  }
  const refusedOrigin = await admin('POST', '/api/v1/origins', {
    body: {
      tenant_id: tenantId,
      name: 'refused',
      url: `https://api.plantedsweep.test/?token=${REFUSED_SECRET}`,
    },
  });
  expect(refusedOrigin.status, refusedOrigin.text).toBe(400);
  const refusedKeySet = await admin('PATCH', `/api/v1/tenants/${tenantId}`, {
    body: {
      settings: {
        oidc: {
          issuer: OIDC_ISSUER,
          audience: OIDC_AUDIENCE,
          jwks_url: `https://u:${REFUSED_SECRET}@idp.test/jwks`,
        },
      },
    },
  });
  expect(refusedKeySet.status, refusedKeySet.text).toBe(400);
  await admin('POST', `/api/v1/tenants/${tenantId}/explain`, {
    body: {
      method: 'GET',
      host: `${SUBDOMAIN}.localhost`,
      path: '/jwt/1',
      headers: { authorization: `Bearer ${memberToken}` },
    },
  });
  // What admins read back of the key set URL and the refused commands.
  for (const token of [adminToken, memberToken, viewerToken]) {
    for (const pathname of [
      `/api/v1/tenants/${tenantId}`,
      `/api/v1/tenants?limit=100`,
      `/api/v1/routes/${refusing['id']}`,
      `/api/v1/audit-log?tenant_id=${tenantId}&limit=200`,
      `/api/v1/tenants/${tenantId}/config`,
      `/api/v1/tenants/${tenantId}/config/document`,
      `/api/v1/tenants/${tenantId}/config/history?limit=200`,
      `/api/v1/tenants/${tenantId}/config/diff?from=1&to=${oidc.headers.get('x-event-position') ?? ''}`,
    ]) {
      await admin('GET', pathname, { token });
    }
  }
  for (const args of [
    ['dump', '-t', SUBDOMAIN],
    ['history', '-t', SUBDOMAIN],
    ['get', 'audit', '-t', SUBDOMAIN, '-o', 'json'],
  ]) {
    expect((await cli(args)).code, cliOutputs.at(-1)?.output).toBe(0);
  }
  await admin('GET', `/api/v1/usage?tenant_id=${tenantId}`);
  await admin('GET', `/api/v1/usage?api_key_id=${keyId}`);
  await admin('GET', `/api/v1/origins/${plainOrigin}`);

  // A snapshot the gateways cannot decode, for another tenant, carrying a route credential.
  const template = snapshots.findLast((snapshot) => snapshot.tenant_id === tenantId);
  expect(template?.routes.length).toBeGreaterThan(0);
  const strangerId = randomUUID();
  const undecodable = {
    ...(template as TenantSnapshot),
    tenant_id: strangerId,
    version: '1',
    routes: (template as TenantSnapshot).routes.map((route) => ({
      ...route,
      request_headers: { set: { authorization: `Bearer \${${SNAPSHOT_SECRET}}` }, add: {}, remove: [] },
    })),
  } as TenantSnapshot;
  const record = encodeSnapshotMessage(
    { kind: 'snapshot', tenantId: strangerId, version: 1n, snapshot: undecodable },
    8 * 1024 * 1024,
  );
  const producer = new Kafka({
    brokers: [...TEST_INFRA.kafkaBrokers],
    clientId: 'e2e-planted-undecodable',
    logLevel: logLevel.NOTHING,
  }).producer();
  await producer.connect();
  try {
    await producer.send({
      topic: system.topic,
      messages: [{ key: record.key, value: record.value, headers: record.headers }],
    });
  } finally {
    await producer.disconnect();
  }
  await gateway.service.waitForLine('invalid snapshot message skipped', 30_000);
}

afterAll(async () => {
  await closeBus();
  collector.closeAllConnections();
  failingKeySet.closeAllConnections();
  collector.close();
  failingKeySet.close();
  webSocketOrigin.closeAllConnections();
  webSocketOrigin.close();
  await system?.close();
  await plain?.close();
  await mutual?.close();
  await stopAllServices();
  if (folder) await rm(folder, { recursive: true, force: true });
});

describe('secrets planted across the running product', () => {
  it('reach no service output: control plane, projectors, gateway', () => {
    expect(system.services.length).toBe(6);
    for (const service of system.services) {
      expect(service.output().length, service.name).toBeGreaterThan(0);
      expect(plantedIn(service.output()), service.name).toEqual([]);
    }
  });

  it('reach no WebSocket origin: a key in the query or a subprotocol is taken off the upgrade', () => {
    expect(upgradesReceived.some((upgrade) => upgrade.includes('chat'))).toBe(true);
    expect(plantedIn(upgradesReceived.join('\n'))).toEqual([]);
  });

  it('reach no span any service exports', async () => {
    await eventually('spans of every service', async () => {
      const text = spanExports.join('\n');
      return ['"control-plane"', '"gateway"'].every((service) => text.includes(service));
    });
    await eventually('spans of the failed requests', async () =>
      spanExports.join('\n').includes('/refusing/1'),
    );
    expect(plantedIn(spanExports.join('\n'))).toEqual([]);
  });

  it('reach no admin API answer (the issuing ones aside), to admins, members or viewers', () => {
    expect(answers.length).toBeGreaterThan(40);
    // The key set URL is read back, its token redacted.
    expect(answers.filter((answer) => answer.includes('/jwks?token=<redacted>')).length).toBeGreaterThan(10);
    const leaks = answers.flatMap((answer) =>
      plantedIn(answer, ownQueryEchoed(answer)).map((name) => `${answer.slice(0, 160)}: ${name}`),
    );
    expect(leaks).toEqual([]);
  });

  it('reach no CLI output, its errors included', () => {
    expect(cliOutputs.length).toBeGreaterThan(6);
    const leaks = cliOutputs.flatMap(({ args, output }) =>
      plantedIn(output, ownQueryEchoed(args)).map((name) => `${args}: ${name}`),
    );
    expect(leaks).toEqual([]);
  });

  it("reach the gateways on Kafka as their config needs them: the route credential, the key set URL's token, the private keys sealed", async () => {
    await eventually('the last change is on Kafka', async () =>
      snapshots.some((snapshot) => BigInt(snapshot.version) >= BigInt(lastPosition)),
    );
    const sent = JSON.stringify(snapshots);
    expect(sent).toContain(ROUTE_SECRET);
    expect(sent).toContain(JWKS_URL_SECRET);
    expect(sent).toContain('aes-256-gcm-envelope-v1');
    expect(plantedIn(sent, GATEWAY_CREDENTIALS)).toEqual([]);
  });

  it('are in no Redis key or value of the system (limits, cache, usage, rollout)', async () => {
    const redis = new Redis(TEST_INFRA.redisUrl, { maxRetriesPerRequest: 2 });
    try {
      const seen = new Set<string>();
      const dumped: string[] = [];
      // The system's own keys, and any other one naming its tenant.
      for (const pattern of [`${system.redisKeyPrefix}*`, `${system.rolloutPrefix}*`, `*${tenantId}*`]) {
        let cursor = '0';
        do {
          const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
          for (const key of keys.filter((candidate) => !seen.has(candidate))) {
            seen.add(key);
            dumped.push(key, await redisValue(redis, key));
          }
          cursor = next;
        } while (cursor !== '0');
      }
      expect(dumped.length).toBeGreaterThan(4);
      expect(plantedIn(dumped.join('\n'))).toEqual([]);
    } finally {
      redis.disconnect();
    }
  });

  it("are stored in no PostgreSQL row but the event log and the snapshots, which hold the route credential and the key set URL's token alone", async () => {
    const { rows: tables } = await system.database.pool.query<{ name: string }>(
      `select format('%I.%I', table_schema, table_name) as name from information_schema.tables
        where table_type = 'BASE TABLE' and table_schema not in ('pg_catalog', 'information_schema')`,
    );
    expect(tables.length).toBeGreaterThan(5);
    for (const { name } of tables) {
      const { rows } = await system.database.pool.query<{ row: string }>(
        `select t::text as row from ${name} t`,
      );
      const text = rows.map((row) => row.row).join('\n');
      // The gateways' config (the snapshot projector's state, as sent on Kafka) holds their credentials too.
      const holders = name.includes('event') || name.includes('snapshot');
      expect(plantedIn(text, holders ? GATEWAY_CREDENTIALS : []), name).toEqual([]);
    }
  });
});
