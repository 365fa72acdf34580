import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * A rollback rewinds the gateway config, never the credentials that admit callers: a service
 * account's public key that was removed (a leaked signing key, a service cut off) stays removed, as a
 * revoked API key does, whatever position the tenant rolls back to.
 */

let h: ControlPlaneHarness;
let tenantId: string;
let adminToken: string;
let routeId: string;

const base = () => `/api/v1/tenants/${tenantId}/config`;
const position = (response: { headers: Headers }) => response.headers.get('x-event-position') ?? '';

function serviceKey(kid: string): Record<string, unknown> {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { ...publicKey.export({ format: 'jwk' }), kid, alg: 'ES256' };
}

/** The tenant's config, once the read models (which decide what the caller may read) have every write. */
async function currentConfig(): Promise<Record<string, unknown>> {
  const headers = { 'x-min-position': (await h.store.headPosition()).toString() };
  const config = await h.request('GET', base(), { token: adminToken, headers });
  expect(config.status, JSON.stringify(config.body)).toBe(200);
  return json(config);
}

async function serviceAccounts(): Promise<unknown> {
  const config = await currentConfig();
  return (config['tenant'] as { settings: { service_accounts: unknown } }).settings.service_accounts;
}

beforeAll(async () => {
  h = await startControlPlane({ withReadSide: true });
  tenantId = json(
    await h.request('POST', '/api/v1/tenants', {
      body: { name: 'Keys', subdomain: 'rollback-keys', clerk_org_id: 'org_rollback_keys' },
    }),
  )['id'] as string;
  adminToken = await h.token({ userId: 'user_keys_admin', orgId: 'org_rollback_keys', orgRole: 'admin' });
  const origin = json(
    await h.request('POST', '/api/v1/origins', {
      body: { tenant_id: tenantId, name: 'billing', url: 'http://127.0.0.1:9/' },
    }),
  )['id'] as string;
  routeId = json(
    await h.request('POST', '/api/v1/routes', {
      body: {
        tenant_id: tenantId,
        origin_id: origin,
        path_pattern: '/billing/*',
        auth_mode: 'public',
        rate_limit: { requests_per_second: 100 },
      },
    }),
  )['id'] as string;
}, 60_000);

afterAll(async () => {
  await h?.close();
});

describe('POST /api/v1/tenants/:id/config/rollback and service accounts', () => {
  it('keeps a removed service key and a removed service account removed, and rewinds the rest', async () => {
    const leaked = serviceKey('billing-leaked');
    const current = serviceKey('billing-current');
    const withBoth = await h.request('PATCH', `/api/v1/tenants/${tenantId}`, {
      token: adminToken,
      body: {
        settings: {
          service_accounts: [
            { id: 'billing-service', keys: [leaked, current], scopes: ['billing'] },
            { id: 'reports-service', keys: [serviceKey('reports-1')], scopes: ['reports'] },
          ],
        },
      },
    });
    expect(withBoth.status, JSON.stringify(withBoth.body)).toBe(200);
    const beforeRevocation = position(withBoth);

    // The billing key leaked and the reports service was retired: both are cut off.
    const revoked = await h.request('PATCH', `/api/v1/tenants/${tenantId}`, {
      token: adminToken,
      body: {
        settings: { service_accounts: [{ id: 'billing-service', keys: [current], scopes: ['billing'] }] },
      },
    });
    expect(revoked.status, JSON.stringify(revoked.body)).toBe(200);
    // A route change the tenant then wants to undo.
    const changed = await h.request('PATCH', `/api/v1/routes/${routeId}`, {
      token: adminToken,
      body: { rate_limit: { requests_per_second: 1 } },
    });
    expect(changed.status).toBe(200);
    const cutOff = await serviceAccounts();

    const preview = await h.request('POST', `${base()}/rollback`, {
      token: adminToken,
      body: { to_position: beforeRevocation, dry_run: true },
    });
    expect(preview.status, JSON.stringify(preview.body)).toBe(200);
    const planned = json(preview)['changes'] as Array<Record<string, unknown>>;
    expect(planned.map((change) => [change['resource'], change['change']])).toEqual([['route', 'changed']]);

    const rolledBack = await h.request('POST', `${base()}/rollback`, {
      token: adminToken,
      body: { to_position: beforeRevocation },
    });
    expect(rolledBack.status, JSON.stringify(rolledBack.body)).toBe(200);
    expect(await serviceAccounts()).toEqual(cutOff);
    const route = (await currentConfig())['routes'] as Array<Record<string, unknown>>;
    expect(route.find((entry) => entry['id'] === routeId)?.['rate_limit']).toMatchObject({
      requests_per_second: 100,
    });
  });
});
