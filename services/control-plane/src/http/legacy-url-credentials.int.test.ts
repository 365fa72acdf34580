import type { RecordedEvent } from '@vantageedge/shared/event-store/port';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  type ApiResponse,
  type ControlPlaneHarness,
  json,
  startControlPlane,
} from '../testing/control-plane-harness.js';

/**
 * Earlier releases accepted origin target URLs and an OIDC jwks_url with user information
 * (`https://user:password@host`) and origin URLs with a query (`?api_key=…`); commands refuse them now,
 * but the event log keeps what was recorded then. No gateway ever sent those parts, and no read of the
 * admin API shows them, to any role: the origin, the tenant, the config, its document and diffs, the
 * audit log and explain show such a URL without its user information and with its credential query
 * parameters' values redacted.
 */

const USER = 'legacy-svc-user';
const PASSWORD = 'legacy-origin-password-0123456789';
const QUERY_KEY = 'legacy-query-key-abcdef987654';
const JWKS_PASSWORD = 'legacy-jwks-password-5551234';
const LEGACY_TARGET = `https://${USER}:${PASSWORD}@legacy.example.com/v1?api_key=${QUERY_KEY}&region=eu`;
const LEGACY_JWKS = `https://kid:${JWKS_PASSWORD}@idp.example.com/.well-known/jwks.json`;

let h: ControlPlaneHarness;
let tenantId: string;
let originId: string;
let viewer: string;
let beforeLegacy: string;

const position = (response: ApiResponse) => response.headers.get('x-event-position') ?? '';

function expectNoLegacySecret(label: string, response: ApiResponse): void {
  expect(response.status, label).toBeLessThan(300);
  const text = JSON.stringify(response.body);
  expect(text, label).not.toContain(PASSWORD);
  expect(text, label).not.toContain(USER);
  expect(text, label).not.toContain(QUERY_KEY);
  expect(text, label).not.toContain(JWKS_PASSWORD);
}

/** A JWT of the claims with a signature explain does not check (the gateways fetch the keys). */
function unsignedToken(claims: Record<string, unknown>): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'RS256', typ: 'JWT' })}.${part({ ...claims, aud: 'legacy', exp: 4_102_444_800 })}.c2ln`;
}

/** Appends to `stream` an event recorded as the earlier release did, after the stream's last one. */
async function appendAsEarlierRelease(
  stream: string,
  type: string,
  data: (last: RecordedEvent) => unknown,
): Promise<void> {
  const events = await h.store.readStream(stream);
  const last = events.at(-1);
  if (last === undefined) throw new Error(`no stream ${stream}`);
  await h.store.appendToStream(
    stream,
    [{ type, data: data(last), metadata: { ...last.metadata, occurred_at: new Date().toISOString() } }],
    { expectedRevision: last.revision },
  );
}

beforeAll(async () => {
  h = await startControlPlane({ withReadSide: true });
  tenantId = json(
    await h.request('POST', '/api/v1/tenants', {
      body: { name: 'Legacy', subdomain: 'legacy-urls', clerk_org_id: 'org_legacy_urls' },
    }),
  )['id'] as string;
  originId = json(
    await h.request('POST', '/api/v1/origins', {
      body: { tenant_id: tenantId, name: 'legacy', url: 'https://legacy.example.com/v1' },
    }),
  )['id'] as string;
  const route = await h.request('POST', '/api/v1/routes', {
    body: { tenant_id: tenantId, origin_id: originId, path_pattern: '/legacy/*', auth_mode: 'public' },
  });
  expect(route.status).toBe(201);
  const oidcRoute = await h.request('POST', '/api/v1/routes', {
    body: { tenant_id: tenantId, origin_id: originId, path_pattern: '/oidc/*', auth_mode: 'jwt_required' },
  });
  expect(oidcRoute.status).toBe(201);
  const member = await h.request('POST', '/api/v1/users', {
    body: {
      tenant_id: tenantId,
      clerk_user_id: 'user_legacy_viewer',
      email: 'v@legacy.test',
      role: 'viewer',
    },
  });
  expect(member.status).toBe(201);
  beforeLegacy = position(member);
  viewer = await h.token({ userId: 'user_legacy_viewer' });

  await appendAsEarlierRelease(`origin-${originId}`, 'OriginUpdated', (last) => ({
    ...(last.data as object),
    targets: [{ url: LEGACY_TARGET, weight: 1 }],
    changed_fields: ['targets'],
  }));
  const tenantEvents = await h.store.readStream(`tenant-${tenantId}`);
  const tenantState = tenantEvents.find((event) => event.type === 'TenantCreated')?.data as {
    settings: object;
  };
  await appendAsEarlierRelease(`tenant-${tenantId}`, 'TenantUpdated', () => ({
    ...tenantState,
    settings: {
      ...tenantState.settings,
      oidc: { issuer: 'https://idp.example.com', audience: 'legacy', jwks_url: LEGACY_JWKS },
    },
    changed_fields: ['settings'],
  }));
  // The read models have caught up once the viewer sees the tenant's OIDC settings.
  await vi.waitFor(async () => {
    const tenant = json(await h.request('GET', `/api/v1/tenants/${tenantId}`, { token: viewer }));
    const origin = json(await h.request('GET', `/api/v1/origins/${originId}`, { token: viewer }));
    expect((tenant['settings'] as { oidc: unknown }).oidc).not.toBeNull();
    expect(origin['updated_at']).not.toBe(origin['created_at']);
  }, 30_000);
}, 60_000);

afterAll(async () => {
  await h?.close();
});

describe('URLs with credentials recorded by earlier releases', () => {
  it('reach no read of the admin API, for a viewer', async () => {
    for (const path of [
      `/api/v1/origins/${originId}`,
      `/api/v1/origins?tenant_id=${tenantId}`,
      `/api/v1/tenants/${tenantId}`,
      `/api/v1/tenants/${tenantId}/config`,
      `/api/v1/tenants/${tenantId}/config/document`,
    ]) {
      expectNoLegacySecret(path, await h.request('GET', path, { token: viewer }));
    }
  });

  it('reach neither the audit log, a diff, explain nor a command answer, for an admin', async () => {
    const now = json(await h.request('GET', `/api/v1/tenants/${tenantId}/config`))['position'] as string;
    for (const path of [
      `/api/v1/audit-log?tenant_id=${tenantId}`,
      `/api/v1/tenants/${tenantId}/config/diff?from=${beforeLegacy}&to=${now}`,
    ]) {
      expectNoLegacySecret(path, await h.request('GET', path));
    }
    expectNoLegacySecret(
      'explain',
      await h.request('POST', `/api/v1/tenants/${tenantId}/explain`, {
        body: { method: 'GET', host: 'legacy-urls.vantageedge.dev', path: '/legacy/1' },
      }),
    );
    expectNoLegacySecret(
      'explain with a token of the OIDC provider',
      await h.request('POST', `/api/v1/tenants/${tenantId}/explain`, {
        body: {
          method: 'GET',
          host: 'legacy-urls.vantageedge.dev',
          path: '/oidc/1',
          headers: {
            authorization: `Bearer ${unsignedToken({ iss: 'https://idp.example.com', sub: 'u1' })}`,
          },
        },
      }),
    );
    expectNoLegacySecret(
      'PATCH origin',
      await h.request('PATCH', `/api/v1/origins/${originId}`, { body: { name: 'legacy renamed' } }),
    );
  });

  it('show the host, path and other query parameters, which the gateways use', async () => {
    const origin = json(await h.request('GET', `/api/v1/origins/${originId}`, { token: viewer }));
    expect(origin['url']).toBe('https://legacy.example.com/v1?api_key=<redacted>&region=eu');
    const tenant = json(await h.request('GET', `/api/v1/tenants/${tenantId}`, { token: viewer }));
    expect((tenant['settings'] as { oidc: { jwks_url: string } }).oidc.jwks_url).toBe(
      'https://idp.example.com/.well-known/jwks.json',
    );
  });
});
