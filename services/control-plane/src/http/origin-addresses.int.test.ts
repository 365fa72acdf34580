import { randomUUID } from 'node:crypto';
import { streamName } from '@vantageedge/shared/domain/events';
import { originConfig } from '@vantageedge/shared/domain/gateway-config';
import { DEFAULT_ORIGIN_BLOCKED_CIDRS } from '@vantageedge/shared/net/origin-address-policy';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * Regression tests for origin targets and OIDC jwks_url pointing at the platform itself: loopback,
 * link-local (169.254.169.254), the unspecified address and their hex/integer/IPv4-mapped spellings
 * were accepted by the commands. They are refused with 400 origin_address_blocked naming the field,
 * and nothing is recorded.
 */

async function createTenant(cp: ControlPlaneHarness, subdomain: string): Promise<string> {
  const response = await cp.request('POST', '/api/v1/tenants', { body: { name: subdomain, subdomain } });
  expect(response.status).toBe(201);
  return json(response)['id'] as string;
}

function expectBlocked(response: { status: number; body: unknown }, field: string, range: string): void {
  expect(response.status).toBe(400);
  expect(response.body).toEqual({
    error: {
      code: 'origin_address_blocked',
      message: 'the address is not allowed as an origin',
      details: [{ field, issue: expect.stringContaining(range) }],
    },
  });
}

describe('origin addresses with the default ORIGIN_BLOCKED_CIDRS', () => {
  let cp: ControlPlaneHarness;
  let tenantId: string;

  beforeAll(async () => {
    cp = await startControlPlane({ originBlockedCidrs: DEFAULT_ORIGIN_BLOCKED_CIDRS });
    tenantId = await createTenant(cp, 'ssrf');
  });
  afterAll(async () => {
    await cp?.close();
  });

  it.each([
    ['http://127.0.0.1:8001/', '127.0.0.0/8'],
    ['http://2130706433:8001/', '127.0.0.0/8'],
    ['http://0x7f.1:8001/', '127.0.0.0/8'],
    ['http://[::ffff:127.0.0.1]:8001/', '127.0.0.0/8'],
    ['http://[::127.0.0.1]:8001/', '127.0.0.0/8'],
    ['http://0/', '0.0.0.0/8'],
    ['http://[::]/', '::/128'],
    ['http://[::1]/', '::1/128'],
    ['http://169.254.169.254/latest/meta-data/', '169.254.0.0/16'],
    ['http://[fe80::1]/', 'fe80::/10'],
    ['http://[fd20:ce::254]/computeMetadata/v1/', 'fd20:ce::254/128'],
    ['http://[fd00:c1::a9fe:a9fe]/opc/v2/', 'fd00:c1::a9fe:a9fe/128'],
    ['http://[64:ff9b:1:ab::169.254.169.254]/latest/meta-data/', '169.254.0.0/16'],
  ])('refuses url %s (%s) and records nothing', async (url, range) => {
    const before = (await cp.allEvents()).length;
    expectBlocked(
      await cp.request('POST', '/api/v1/origins', { body: { tenant_id: tenantId, name: 'o', url } }),
      'url',
      range,
    );
    expect((await cp.allEvents()).length).toBe(before);
  });

  it('names the offending target among several', async () => {
    expectBlocked(
      await cp.request('POST', '/api/v1/origins', {
        body: {
          tenant_id: tenantId,
          name: 'o',
          targets: [{ url: 'https://api.example.com' }, { url: 'http://2852039166/' }],
        },
      }),
      'targets.1.url',
      '169.254.0.0/16',
    );
  });

  it('refuses a PATCH to a blocked address and keeps the origin as it was', async () => {
    const created = await cp.request('POST', '/api/v1/origins', {
      body: { tenant_id: tenantId, name: 'private', url: 'http://10.0.0.5:8080' },
    });
    expect(created.status).toBe(201);
    const id = json(created)['id'] as string;
    expectBlocked(
      await cp.request('PATCH', `/api/v1/origins/${id}`, { body: { url: 'http://0x7f000001/' } }),
      'url',
      '127.0.0.0/8',
    );
    expectBlocked(
      await cp.request('PATCH', `/api/v1/origins/${id}`, { body: { targets: [{ url: 'http://[::1]/' }] } }),
      'targets.0.url',
      '::1/128',
    );
    expect((await cp.allEvents()).filter((event) => event.type === 'OriginUpdated')).toHaveLength(0);
  });

  it('accepts private ranges and names (a name is checked by the gateways when they connect)', async () => {
    for (const url of ['http://192.168.1.10', 'http://172.16.0.1:9000', 'http://localhost:8080']) {
      const response = await cp.request('POST', '/api/v1/origins', {
        body: { tenant_id: tenantId, name: 'ok', url },
      });
      expect(response.status, url).toBe(201);
    }
  });

  it('refuses an OIDC jwks_url on a blocked address, on create and on update', async () => {
    const oidc = (jwks_url: string) => ({ issuer: 'https://idp.example', audience: 'api', jwks_url });
    expectBlocked(
      await cp.request('POST', '/api/v1/tenants', {
        body: { name: 'x', subdomain: 'jwks-x', settings: { oidc: oidc('http://169.254.169.254/jwks') } },
      }),
      'settings.oidc.jwks_url',
      '169.254.0.0/16',
    );
    expectBlocked(
      await cp.request('PATCH', `/api/v1/tenants/${tenantId}`, {
        body: { settings: { oidc: oidc('http://2130706433:8001/status') } },
      }),
      'settings.oidc.jwks_url',
      '127.0.0.0/8',
    );
    const fine = await cp.request('PATCH', `/api/v1/tenants/${tenantId}`, {
      body: { settings: { oidc: oidc('https://idp.example/.well-known/jwks.json') } },
    });
    expect(fine.status).toBe(200);
  });
});

describe('config documents naming blocked addresses (default ORIGIN_BLOCKED_CIDRS)', () => {
  let cp: ControlPlaneHarness;
  let tenantId: string;
  const config = (action: 'plan' | 'apply') => `/api/v1/tenants/${tenantId}/config/${action}`;
  const document = (
    origins: Array<Record<string, unknown>>,
    settings: Record<string, unknown> = {},
  ): Record<string, unknown> => ({
    tenant: { name: 'documents', subdomain: 'ssrf-documents', settings },
    origins,
    routes: [],
  });

  /** An origin's targets changed as a release before the address check recorded them. */
  async function recordTargetsAsAnEarlierReleaseDid(originId: string, name: string, url: string) {
    const { id: _id, ...recorded } = originConfig.parse({ id: originId, name, targets: [{ url }] });
    const { position } = await cp.store.appendToStream(streamName.origin(originId), [
      {
        type: 'OriginUpdated',
        data: { ...recorded, origin_id: originId, tenant_id: tenantId, changed_fields: ['targets'] },
        metadata: {
          actor: 'user_platform',
          tenant_id: tenantId,
          correlation_id: randomUUID(),
          causation_id: null,
          occurred_at: new Date().toISOString(),
          schema_version: 1,
        },
      },
    ]);
    return position;
  }

  beforeAll(async () => {
    cp = await startControlPlane({ originBlockedCidrs: DEFAULT_ORIGIN_BLOCKED_CIDRS });
    tenantId = await createTenant(cp, 'ssrf-documents');
  });
  afterAll(async () => {
    await cp?.close();
  });

  // Regression: apply named the field as the origin command has it (`url`, `targets.0.url`), which says
  // nothing of which of the document's origins it was, and plan answered 200 with a plan apply refuses.
  it.each([
    [
      'an origin url',
      document([
        { name: 'api', url: 'https://api.example.com' },
        { name: 'admin', url: 'http://2130706433:8001/' },
      ]),
      'origins.1.url',
      '127.0.0.0/8',
    ],
    [
      'a target among several',
      document([
        {
          name: 'api',
          targets: [{ url: 'https://api.example.com' }, { url: 'http://[64:ff9b::a9fe:a9fe]/' }],
        },
      ]),
      'origins.0.targets.1.url',
      '64:ff9b::a9fe:0/112',
    ],
    [
      'the OIDC jwks_url',
      document([], {
        oidc: { issuer: 'https://idp.example', audience: 'api', jwks_url: 'http://[fd00:ec2::254]/jwks' },
      }),
      'tenant.settings.oidc.jwks_url',
      'fd00:ec2::254/128',
    ],
  ])(
    'refuses %s in plan and apply, naming its place in the document, and records nothing',
    async (_what, body, field, range) => {
      const before = (await cp.allEvents()).length;
      expectBlocked(await cp.request('POST', config('plan'), { body }), field, range);
      expectBlocked(await cp.request('POST', config('apply'), { body }), field, range);
      expect((await cp.allEvents()).length).toBe(before);
    },
  );

  // Regression: a rollback to a config an earlier release recorded with such an address was planned
  // (200 on a dry run), then refused naming `targets.0.url`, a field of no request.
  it('refuses a rollback to a config recorded with a blocked address, naming to_position', async () => {
    const created = await cp.request('POST', '/api/v1/origins', {
      body: { tenant_id: tenantId, name: 'legacy', url: 'https://api.example.com' },
    });
    expect(created.status).toBe(201);
    const originId = json(created)['id'] as string;
    const position = await recordTargetsAsAnEarlierReleaseDid(originId, 'legacy', 'http://127.0.0.1:8001');
    const restored = await cp.request('PATCH', `/api/v1/origins/${originId}`, {
      body: { url: 'https://api.example.com' },
    });
    expect(restored.status).toBe(200);
    const before = (await cp.allEvents()).length;
    for (const dry_run of [true, false]) {
      const response = await cp.request('POST', `/api/v1/tenants/${tenantId}/config/rollback`, {
        body: { to_position: position.toString(), dry_run },
      });
      expect(response.status, `dry_run ${dry_run}`).toBe(400);
      expect(response.body).toEqual({
        error: {
          code: 'origin_address_blocked',
          message: expect.stringContaining('origins.0.targets.0.url'),
          details: [{ field: 'to_position', issue: expect.stringContaining('127.0.0.0/8') }],
        },
      });
    }
    expect((await cp.allEvents()).length).toBe(before);
  });

  it('still applies a document that keeps an address recorded before, unchanged', async () => {
    const created = await cp.request('POST', '/api/v1/origins', {
      body: { tenant_id: tenantId, name: 'kept', url: 'https://kept.example.com' },
    });
    expect(created.status).toBe(201);
    const originId = json(created)['id'] as string;
    await recordTargetsAsAnEarlierReleaseDid(originId, 'kept', 'http://127.0.0.1:8002');
    const body = document([{ id: originId, name: 'kept', targets: [{ url: 'http://127.0.0.1:8002' }] }]);
    expect((await cp.request('POST', config('plan'), { body })).status).toBe(200);
    const applied = await cp.request('POST', config('apply'), { body });
    expect(applied.status, JSON.stringify(applied.body)).toBe(200);
  });
});

describe('the control plane’s own listener with loopback origins allowed', () => {
  let cp: ControlPlaneHarness;

  beforeAll(async () => {
    cp = await startControlPlane(); // the harness allows loopback origins
  });
  afterAll(async () => {
    await cp?.close();
  });

  it('refuses its own address:port whatever the setting, and accepts other local ports', async () => {
    const tenantId = await createTenant(cp, 'own');
    const own = await cp.request('POST', '/api/v1/origins', {
      body: { tenant_id: tenantId, name: 'o', url: `${cp.baseUrl}/api/v1/tenants` },
    });
    expectBlocked(own, 'url', "platform's own listeners");
    const local = await cp.request('POST', '/api/v1/origins', {
      body: { tenant_id: tenantId, name: 'o', url: 'http://127.0.0.1:9' },
    });
    expect(local.status).toBe(201);
  });
});
