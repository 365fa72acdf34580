import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { keyRing } from '@vantageedge/shared/tls/private-key-envelope';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ApiResponse,
  type ControlPlaneHarness,
  json,
  startControlPlane,
} from '../testing/control-plane-harness.js';

/**
 * Secrets the admin API handles — callers' session tokens, API key plaintexts (answered once, at
 * issue and rotation), the credential a route sends its origin, a certificate's private key, and
 * secrets inside requests it refuses — reach neither its log nor its error answers.
 */

const ROUTE_SECRET = 'planted-route-secret-0123456789';
const REFUSED_SECRET = 'planted-refused-secret-0123456789';
const PRIVATE_KEY_MARK = 'plantedPrivateKeyMaterial0123456789';

const logText: string[] = [];
const errorAnswers: Array<{ label: string; response: ApiResponse }> = [];
const plaintexts: string[] = [];
/** The answers that carry a plaintext, by what they answered. */
const plaintextAnswers: Array<{ label: string; response: ApiResponse }> = [];
let h: ControlPlaneHarness;

async function refused(label: string, response: Promise<ApiResponse>): Promise<void> {
  const answer = await response;
  expect(answer.status, label).toBeGreaterThanOrEqual(400);
  expect(answer.status, label).toBeLessThan(500);
  errorAnswers.push({ label, response: answer });
}

beforeAll(async () => {
  h = await startControlPlane({
    withReadSide: true,
    certificateKeyRing: keyRing(randomBytes(32).toString('base64')),
    logStream: new Writable({
      write(chunk: Buffer, _encoding, callback) {
        logText.push(chunk.toString('utf8'));
        callback();
      },
    }),
  });
  const tenantId = json(
    await h.request('POST', '/api/v1/tenants', { body: { name: 'Planted', subdomain: 'planted-cp' } }),
  )['id'] as string;
  const originId = json(
    await h.request('POST', '/api/v1/origins', {
      body: { tenant_id: tenantId, name: 'o', url: 'https://api.example.com' },
    }),
  )['id'] as string;
  const route = await h.request('POST', '/api/v1/routes', {
    body: {
      tenant_id: tenantId,
      origin_id: originId,
      path_pattern: '/x/*',
      auth_mode: 'public',
      request_headers: { set: { authorization: `Bearer ${ROUTE_SECRET}` } },
    },
  });
  expect(route.status).toBe(201);
  // With Idempotency-Keys: the answers, plaintexts included, are kept to be replayed.
  const issue = () =>
    h.request('POST', '/api/v1/api-keys', {
      body: { tenant_id: tenantId, name: 'k' },
      headers: { 'idempotency-key': 'planted-issue' },
    });
  const issuedAnswer = await issue();
  const issued = json(issuedAnswer);
  plaintexts.push(issued['key'] as string);
  const rotate = () =>
    h.request('POST', `/api/v1/api-keys/${issued['id']}/rotate`, {
      headers: { 'idempotency-key': 'planted-rotate' },
    });
  const rotatedAnswer = await rotate();
  const rotated = json(rotatedAnswer);
  plaintexts.push(rotated['key'] as string);
  plaintextAnswers.push(
    { label: 'issue', response: issuedAnswer },
    { label: 'issue replayed', response: await issue() },
    { label: 'rotation', response: rotatedAnswer },
    { label: 'rotation replayed', response: await rotate() },
  );
  expect(plaintexts.every((key) => key.startsWith('ve_live_'))).toBe(true);

  const badValue = `Bearer ${REFUSED_SECRET}\u0007`;
  await refused(
    'a credential header value refused',
    h.request('POST', '/api/v1/routes', {
      body: {
        tenant_id: tenantId,
        origin_id: originId,
        path_pattern: '/y/*',
        auth_mode: 'public',
        request_headers: { set: { authorization: badValue } },
      },
    }),
  );
  await refused(
    'a credential query value refused',
    h.request('PATCH', `/api/v1/routes/${json(route)['id']}`, {
      body: { query: { set: { api_key: `${REFUSED_SECRET}\n` } } },
    }),
  );
  await refused(
    'malformed JSON holding a secret',
    h.request('POST', '/api/v1/routes', {
      rawBody: `{"tenant_id":"${tenantId}","request_headers":{"set":{"authorization":"${REFUSED_SECRET}"`,
      headers: { 'content-type': 'application/json' },
    }),
  );
  await refused(
    'an unknown field holding a secret',
    h.request('POST', '/api/v1/api-keys', {
      body: { tenant_id: tenantId, name: 'k2', key: REFUSED_SECRET, secret: REFUSED_SECRET },
    }),
  );
  await refused(
    'a private key that is no key',
    h.request('POST', '/api/v1/certificates', {
      body: {
        tenant_id: tenantId,
        domains: ['api.planted.test'],
        certificate_pem: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
        private_key_pem: `-----BEGIN PRIVATE KEY-----\n${PRIVATE_KEY_MARK}\n-----END PRIVATE KEY-----\n`,
      },
    }),
  );
  await refused(
    'an OIDC setting refused',
    h.request('PATCH', `/api/v1/tenants/${tenantId}`, {
      body: {
        settings: {
          oidc: {
            issuer: 'https://idp.example.com',
            audience: 'a',
            jwks_url: `https://kid:${REFUSED_SECRET}@idp.example.com/jwks`,
          },
        },
      },
    }),
  );
  await refused(
    'a session token that is not valid',
    h.request('GET', '/api/v1/tenants', { token: `${h.adminToken.slice(0, -4)}AAAA` }),
  );
}, 60_000);

afterAll(async () => {
  await h?.close();
});

describe('secrets the admin API handles', () => {
  it('reach no log line', () => {
    const log = logText.join('');
    expect(log).toContain('"message":"request"');
    for (const secret of [ROUTE_SECRET, REFUSED_SECRET, PRIVATE_KEY_MARK, h.adminToken, ...plaintexts]) {
      expect(log).not.toContain(secret);
    }
  });

  it('are stored nowhere but as the route credential in the event log', async () => {
    const { rows: tables } = await h.db.pool.query<{ name: string }>(
      `select format('%I.%I', table_schema, table_name) as name from information_schema.tables
        where table_type = 'BASE TABLE' and table_schema not in ('pg_catalog', 'information_schema')`,
    );
    expect(tables.length).toBeGreaterThan(5);
    for (const { name } of tables) {
      const { rows } = await h.db.pool.query<{ row: string }>(`select t::text as row from ${name} t`);
      const text = rows.map((row) => row.row).join('\n');
      for (const secret of [REFUSED_SECRET, PRIVATE_KEY_MARK, h.adminToken, ...plaintexts]) {
        expect(text, `${name} holds ${secret}`).not.toContain(secret);
      }
      if (!name.includes('event'))
        expect(text, `${name} holds the route credential`).not.toContain(ROUTE_SECRET);
    }
  });

  it.each(['issue', 'issue replayed', 'rotation', 'rotation replayed'])(
    'are kept by no cache from the answer to an API key %s',
    (label) => {
      const answer = plaintextAnswers.find((candidate) => candidate.label === label);
      expect(answer?.response.status).toBe(201);
      expect(JSON.stringify(answer?.response.body)).toMatch(/"key":"ve_live_/);
      if (label.endsWith('replayed'))
        expect(answer?.response.headers.get('idempotent-replayed')).toBe('true');
      expect(answer?.response.headers.get('cache-control')).toBe('no-store');
    },
  );

  it.each([
    'a credential header value refused',
    'a credential query value refused',
    'malformed JSON holding a secret',
    'an unknown field holding a secret',
    'a private key that is no key',
    'an OIDC setting refused',
    'a session token that is not valid',
  ])('are not echoed when %s', (label) => {
    const answer = errorAnswers.find((candidate) => candidate.label === label);
    expect(answer).toBeDefined();
    const text = JSON.stringify(answer?.response.body);
    expect(text).toContain('"code"');
    for (const secret of [REFUSED_SECRET, PRIVATE_KEY_MARK, h.adminToken.slice(0, -4)]) {
      expect(text).not.toContain(secret);
    }
  });
});
