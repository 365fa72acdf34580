import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startReadModelProjector } from '@vantageedge/projections/read-models/projector';
import type { Projector } from '@vantageedge/projections/runner/projector';
import { createEventStore } from '@vantageedge/shared/event-store/factory';
import type { EventStore } from '@vantageedge/shared/event-store/port';
import { createLogger } from '@vantageedge/shared/observability/logger';
import {
  type ClerkTestKeys,
  createClerkTestKeys,
  OFFLINE_CLERK_ISSUER,
  OFFLINE_CLERK_PUBLISHABLE_KEY,
  signClerkToken,
} from '@vantageedge/shared/testing/clerk-tokens';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createControlPlaneApp } from '../http/app.js';
import { createQueryRouter } from './router.js';
import { createTenantDirectory } from './tenant-directory.js';

// The whole control plane as main.ts wires it: commands and queries (this folder) over one
// database, with the read-model projector running beside it. What a command answers, a query with
// X-Min-Position set to the command's X-Event-Position must answer too, in the same shape.

const ADMIN = 'user_platformadmin';
let db: TestDatabase;
let store: EventStore;
let projector: Projector;
let server: Server;
let baseUrl: string;
let keys: ClerkTestKeys;

beforeAll(async () => {
  db = await createTestDatabase();
  store = createEventStore({ kind: 'postgres', pool: db.pool });
  keys = await createClerkTestKeys();
  const app = createControlPlaneApp({
    store,
    pool: db.pool,
    auth: {
      jwtKey: keys.publicKeyPem,
      publishableKey: OFFLINE_CLERK_PUBLISHABLE_KEY,
      issuer: OFFLINE_CLERK_ISSUER,
      authorizedParties: [],
      platformAdminUserIds: new Set([ADMIN]),
    },
    tenantDirectory: createTenantDirectory(db.pool),
    apiKeyPepper: 'test-pepper-0123456789abcdef0123456789abcdef',
    logger: createLogger({ service: 'control-plane-test', level: 'error' }),
    // A loaded machine's projector can be seconds behind: a longer wait than the app's 2 s.
    queryRouter: (authorizer) =>
      createQueryRouter({ pool: db.pool, authorizer, eventStore: store, minPositionWaitMs: 10_000 }),
  });
  server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  projector = startReadModelProjector({ store, pool: db.pool });
});

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  await projector?.stop();
  await store?.close();
  await db?.drop();
});

async function call(
  method: string,
  path: string,
  userId: string,
  body?: unknown,
  headers: Record<string, string> = {},
) {
  const token = await signClerkToken(keys, { userId });
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : null };
}

/** POST a command, then GET the resource it created at the command's position: same JSON, same ETag. */
async function writeThenRead(path: string, body: unknown) {
  const written = await call('POST', path, ADMIN, body);
  expect(written.status, JSON.stringify(written.body)).toBe(201);
  const position = written.headers.get('x-event-position');
  expect(position).toMatch(/^\d+$/);
  const read = await call('GET', `${path}/${written.body.id}`, ADMIN, undefined, {
    'X-Min-Position': position ?? '',
  });
  expect(read.status).toBe(200);
  expect(read.headers.get('etag')).toBe(written.headers.get('etag'));
  return { written: written.body, read: read.body };
}

describe('read your writes through the whole control plane', () => {
  it('serves exactly what the commands answered: tenant, origin, route, api key (minus the plaintext)', async () => {
    const tenant = await writeThenRead('/api/v1/tenants', {
      name: 'acme-corp',
      subdomain: 'acme',
      clerk_org_id: 'org_acme',
    });
    expect(tenant.read).toEqual(tenant.written);
    const tenantId = tenant.written.id;

    const origin = await writeThenRead('/api/v1/origins', {
      tenant_id: tenantId,
      name: 'api-backend',
      url: 'https://api.example.com',
      health_check_path: '/health',
      timeout_seconds: 30,
    });
    expect(origin.read).toEqual(origin.written);

    const route = await writeThenRead('/api/v1/routes', {
      tenant_id: tenantId,
      path_pattern: '/api/users/*',
      origin_id: origin.written.id,
      auth_mode: 'jwt_required',
      rate_limit: { requests_per_second: 100, burst: 200 },
      cache_policy: { enabled: true, ttl_seconds: 300, cache_key_pattern: 'path+query' },
    });
    expect(route.read).toEqual(route.written);

    const key = await writeThenRead('/api/v1/api-keys', {
      tenant_id: tenantId,
      name: 'production-key',
      scopes: ['read', 'write'],
      expires_at: '2027-12-31T23:59:59Z',
    });
    const { key: plaintext, ...withoutPlaintext } = key.written;
    expect(typeof plaintext).toBe('string');
    // Same instant; the read side always answers the canonical form (…T23:59:59.000Z), the command
    // echoes the request's spelling (…T23:59:59Z).
    expect(key.read).toEqual({
      ...withoutPlaintext,
      expires_at: new Date(withoutPlaintext.expires_at).toISOString(),
    });
    expect(JSON.stringify(key.read)).not.toContain(plaintext);

    const audit = await call('GET', `/api/v1/audit-log?tenant_id=${tenantId}`, ADMIN);
    expect(audit.body.data.map((e: { event_type: string }) => e.event_type)).toEqual([
      'ApiKeyIssued',
      'RouteCreated',
      'OriginCreated',
      'TenantCreated',
    ]);
    expect(audit.body.data.every((e: { actor: string }) => e.actor === ADMIN)).toBe(true);
  });
});
