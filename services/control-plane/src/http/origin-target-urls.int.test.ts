import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * Regression tests for origin target URLs with parts a gateway never uses: it connects to the URL's
 * scheme, host and port and prefixes its path, so credentials (user:password@), a query, a fragment
 * or port 0 were stored and then silently left out of every request and health check. They are
 * refused with 400 naming the field, and nothing is recorded.
 */

let cp: ControlPlaneHarness;
let tenantId = '';

beforeAll(async () => {
  cp = await startControlPlane({ withReadSide: true });
  const tenant = await cp.request('POST', '/api/v1/tenants', {
    body: { name: 'Targets', subdomain: 'targets' },
  });
  tenantId = json(tenant)['id'] as string;
});
afterAll(async () => {
  await cp?.close();
});

function expectRefused(response: { status: number; body: unknown }, field: string, issue: string): void {
  expect(response.status).toBe(400);
  expect(response.body).toMatchObject({
    error: {
      code: 'validation_failed',
      details: [{ field, issue: expect.stringContaining(issue) }],
    },
  });
}

const UNUSED_PARTS = [
  ['http://user:secret@api.example.com', 'credentials'],
  ['http://user@api.example.com', 'credentials'],
  ['http://api.example.com/v1?token=1', 'query'],
  ['http://api.example.com/v1#top', 'fragment'],
  ['http://api.example.com:0', 'port'],
] as const;

describe('origin target URLs', () => {
  it.each(UNUSED_PARTS)('refuses url %s (%s) and records nothing', async (url, issue) => {
    const before = (await cp.allEvents()).length;
    expectRefused(
      await cp.request('POST', '/api/v1/origins', { body: { tenant_id: tenantId, name: 'o', url } }),
      'url',
      issue,
    );
    expect((await cp.allEvents()).length).toBe(before);
  });

  it.each(UNUSED_PARTS)(
    'refuses target %s (%s) in a PATCH, naming it among several, and records nothing',
    async (url, issue) => {
      const created = await cp.request('POST', '/api/v1/origins', {
        body: {
          tenant_id: tenantId,
          name: `patched ${issue} ${url.length}`,
          url: 'https://api.example.com/v1',
        },
      });
      expect(created.status).toBe(201);
      const id = json(created)['id'] as string;
      const before = (await cp.allEvents()).length;
      expectRefused(
        await cp.request('PATCH', `/api/v1/origins/${id}`, {
          body: { targets: [{ url: 'https://api.example.com' }, { url }] },
        }),
        'targets.1.url',
        issue,
      );
      expect((await cp.allEvents()).length).toBe(before);
    },
  );

  it('refuses such a target in a config document, plan and apply alike', async () => {
    const document = {
      tenant: { name: 'Targets', subdomain: 'targets' },
      origins: [{ name: 'api', url: 'https://user:secret@api.example.com' }],
      routes: [{ origin: 'api', path_pattern: '/api/*', auth_mode: 'public' }],
    };
    for (const step of ['plan', 'apply']) {
      expectRefused(
        await cp.request('POST', `/api/v1/tenants/${tenantId}/config/${step}`, { body: document }),
        'origins.0.url',
        'credentials',
      );
    }
  });

  it('keeps accepting a base path, any port from 1 to 65535 and an IPv6 literal', async () => {
    for (const url of [
      'https://api.example.com/v1/',
      'http://api.example.com:1',
      'http://[2001:db8::1]:65535',
    ]) {
      const created = await cp.request('POST', '/api/v1/origins', {
        body: { tenant_id: tenantId, name: `kept ${url}`, url },
      });
      expect(created.status).toBe(201);
    }
  });
});
