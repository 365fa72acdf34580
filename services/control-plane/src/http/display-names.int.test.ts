import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ApiResponse,
  type ControlPlaneHarness,
  json,
  startControlPlane,
} from '../testing/control-plane-harness.js';

/**
 * Names are display text: the console, the CLI and the audit log show them to other people (a
 * platform admin reads every tenant's). The security review stored terminal escape sequences in them
 * (an OSC 52 clipboard write, a screen clear); control characters are refused with a 400 naming the
 * field, and nothing is appended. Ordinary Unicode stays accepted.
 */
const OSC52 = '\u001b]52;c;Y3VybCBodHRwOi8vZXZpbC5zaCB8IHNo\u0007';
const CLEAR = '\u001b[2J\u001b[H';

let cp: ControlPlaneHarness;
let tenantId = '';
let originId = '';
let keyId = '';

beforeAll(async () => {
  cp = await startControlPlane();
  tenantId = json(
    await cp.request('POST', '/api/v1/tenants', { body: { name: 'Names', subdomain: 'display-names' } }),
  )['id'] as string;
  originId = json(
    await cp.request('POST', '/api/v1/origins', {
      body: { tenant_id: tenantId, name: 'plain', url: 'http://127.0.0.1:9' },
    }),
  )['id'] as string;
  keyId = json(
    await cp.request('POST', '/api/v1/api-keys', { body: { tenant_id: tenantId, name: 'plain' } }),
  )['id'] as string;
});
afterAll(async () => {
  await cp?.close();
});

/** 400 validation_failed naming `field` (about control characters), with no event appended. */
async function expectRefused(field: string, send: () => Promise<ApiResponse>): Promise<void> {
  const before = await cp.store.headPosition();
  const response = await send();
  const body = json(response);
  expect(response.status, JSON.stringify(body).slice(0, 300)).toBe(400);
  const error = body['error'] as { code: string; details: Array<{ field: string; issue: string }> };
  expect(error.code).toBe('validation_failed');
  expect(error.details).toContainEqual({ field, issue: expect.stringContaining('control characters') });
  expect(await cp.store.headPosition()).toBe(before);
}

describe('control characters in names: 400 naming the field', () => {
  it.each([
    ['ESC (an OSC 52 clipboard write, then a screen clear)', `o${OSC52}${CLEAR}x`],
    ['BEL', 'a\u0007b'],
    ['a tab', 'a\tb'],
    ['a newline', 'a\nb'],
    ['a carriage return', 'a\rb'],
    ['DEL', 'a\u007fb'],
    ['C1 CSI (U+009B)', 'a\u009b2Jb'],
    ['C1 NEL (U+0085)', 'a\u0085b'],
  ])('POST /api/v1/origins with %s', async (_label, name) => {
    await expectRefused('name', () =>
      cp.request('POST', '/api/v1/origins', {
        body: { tenant_id: tenantId, name, url: 'https://backend.example.com' },
      }),
    );
  });

  it('POST and PATCH /api/v1/tenants', async () => {
    await expectRefused('name', () =>
      cp.request('POST', '/api/v1/tenants', { body: { name: `Evil${CLEAR}`, subdomain: 'evil-names' } }),
    );
    await expectRefused('name', () =>
      cp.request('PATCH', `/api/v1/tenants/${tenantId}`, { body: { name: `Evil${CLEAR}` } }),
    );
  });

  it('PATCH /api/v1/origins/:id', async () => {
    await expectRefused('name', () =>
      cp.request('PATCH', `/api/v1/origins/${originId}`, { body: { name: `o${OSC52}` } }),
    );
  });

  it('POST /api/v1/api-keys and a revoke reason', async () => {
    await expectRefused('name', () =>
      cp.request('POST', '/api/v1/api-keys', { body: { tenant_id: tenantId, name: `k${OSC52}x` } }),
    );
    await expectRefused('reason', () =>
      cp.request('POST', `/api/v1/api-keys/${keyId}/revoke`, { body: { reason: `gone${CLEAR}` } }),
    );
  });

  it('a config document: the tenant and origin names, and a route naming its origin', async () => {
    const document = {
      tenant: { name: `Evil${CLEAR}`, subdomain: 'display-names' },
      origins: [{ name: `o${OSC52}x`, url: 'https://backend.example.com' }],
      routes: [{ origin: `o${OSC52}x`, path_pattern: '/x/*', auth_mode: 'public' }],
    };
    for (const field of ['tenant.name', 'origins.0.name', 'routes.0.origin']) {
      await expectRefused(field, () =>
        cp.request('POST', `/api/v1/tenants/${tenantId}/config/plan`, { body: document }),
      );
    }
  });
});

/**
 * Regression: the bidi embedding, override and isolate controls (U+202A–U+202E, U+2066–U+2069) reorder
 * what a terminal or a page shows, so a name could pass itself off as another (`ok\u202e)x(` shows as
 * `ok(x)`). Refused like control characters, naming the field; right-to-left text itself stays fine.
 */
describe('bidi controls in names: 400 naming the field', () => {
  /** 400 validation_failed naming `field` (about bidi controls), with no event appended. */
  async function expectBidiRefused(field: string, send: () => Promise<ApiResponse>): Promise<void> {
    const before = await cp.store.headPosition();
    const response = await send();
    const body = json(response);
    expect(response.status, JSON.stringify(body).slice(0, 300)).toBe(400);
    const error = body['error'] as { code: string; details: Array<{ field: string; issue: string }> };
    expect(error.code).toBe('validation_failed');
    expect(error.details).toContainEqual({ field, issue: expect.stringContaining('bidirectional') });
    expect(await cp.store.headPosition()).toBe(before);
  }

  it.each([
    ['RLO (U+202E)', 'invoice\u202efdp.exe'],
    ['LRE (U+202A)', 'a\u202ab'],
    ['PDF (U+202C)', 'a\u202cb'],
    ['LRI (U+2066)', 'a\u2066b'],
    ['PDI (U+2069)', 'a\u2069b'],
  ])('POST /api/v1/origins with %s', async (_label, name) => {
    await expectBidiRefused('name', () =>
      cp.request('POST', '/api/v1/origins', {
        body: { tenant_id: tenantId, name, url: 'https://backend.example.com' },
      }),
    );
  });

  it('tenants, API keys, a revoke reason and a config document', async () => {
    const BIDI = 'ok\u202e)redro-eht-gnisrever(';
    await expectBidiRefused('name', () =>
      cp.request('POST', '/api/v1/tenants', { body: { name: BIDI, subdomain: 'bidi-names' } }),
    );
    await expectBidiRefused('name', () =>
      cp.request('PATCH', `/api/v1/tenants/${tenantId}`, { body: { name: BIDI } }),
    );
    await expectBidiRefused('name', () =>
      cp.request('PATCH', `/api/v1/origins/${originId}`, { body: { name: BIDI } }),
    );
    await expectBidiRefused('name', () =>
      cp.request('POST', '/api/v1/api-keys', { body: { tenant_id: tenantId, name: BIDI } }),
    );
    await expectBidiRefused('reason', () =>
      cp.request('POST', `/api/v1/api-keys/${keyId}/revoke`, { body: { reason: BIDI } }),
    );
    const document = {
      tenant: { name: BIDI, subdomain: 'display-names' },
      origins: [{ name: BIDI, url: 'https://backend.example.com' }],
      routes: [{ origin: BIDI, path_pattern: '/x/*', auth_mode: 'public' }],
    };
    for (const field of ['tenant.name', 'origins.0.name', 'routes.0.origin']) {
      await expectBidiRefused(field, () =>
        cp.request('POST', `/api/v1/tenants/${tenantId}/config/plan`, { body: document }),
      );
    }
  });
});

describe('ordinary Unicode in names', () => {
  it('accents, CJK, emoji and right-to-left text are accepted', async () => {
    const names = ['Café Zürich', '東京支店', 'edge 🚀 prod', 'שלום עולם', 'a\\u001b (a backslash, not ESC)'];
    for (const [index, name] of names.entries()) {
      const origin = await cp.request('POST', '/api/v1/origins', {
        body: { tenant_id: tenantId, name, url: 'https://backend.example.com' },
      });
      expect(origin.status, JSON.stringify(origin.body).slice(0, 300)).toBe(201);
      expect(json(origin)['name']).toBe(name);
      const key = await cp.request('POST', '/api/v1/api-keys', { body: { tenant_id: tenantId, name } });
      expect(key.status, JSON.stringify(key.body).slice(0, 300)).toBe(201);
      const tenant = await cp.request('PATCH', `/api/v1/tenants/${tenantId}`, { body: { name } });
      expect(tenant.status, `${index}: ${JSON.stringify(tenant.body).slice(0, 300)}`).toBe(200);
    }
    const revoked = await cp.request('POST', `/api/v1/api-keys/${keyId}/revoke`, {
      body: { reason: 'rotated — ключ заменён' },
    });
    expect(revoked.status, JSON.stringify(revoked.body).slice(0, 300)).toBe(200);
  });
});
