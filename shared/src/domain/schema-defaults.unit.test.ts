import { describe, expect, it } from 'vitest';
import { CONTROL_PLANE_UPCASTERS } from './event-upcasters.js';
import { routeConfig, tenantSettings } from './gateway-config.js';
import { withSchemaDefaults } from './schema-defaults.js';

const route = {
  route_id: '6f1c1a4e-8a55-4a51-9a57-3f8f0f3c2b11',
  tenant_id: '0b0f7a0e-3a2c-4c35-8a3c-7d9c0b7b6c21',
  origin_id: '3d7b8f1e-0a9c-4e55-b1f2-2c4a9e6d8f10',
  path_pattern: '/users/*',
  methods: [],
  priority: 0,
  auth_mode: 'public',
  required_scopes: [],
  require_tenant_org: true,
  strip_prefix: null,
  rate_limit: null,
  cache_policy: { enabled: true, ttl_seconds: 60 },
};

describe('withSchemaDefaults', () => {
  it('gives a route written before later fields their defaults, nested ones included, and keeps the rest', () => {
    const filled = withSchemaDefaults(routeConfig, route) as Record<string, unknown>;
    expect(filled).toMatchObject({ ...route, preserve_host: false, websocket_token: 'header', match: null });
    expect(filled['cache_policy']).toMatchObject({
      ttl_seconds: 60,
      mode: 'standard',
      keep_stale_seconds: 600,
    });
    expect(filled).not.toHaveProperty('id');
    expect(route).not.toHaveProperty('preserve_host');
  });

  it('returns a complete value as it is, and values of another shape unchanged, without throwing', () => {
    const complete = withSchemaDefaults(routeConfig, route);
    expect(withSchemaDefaults(routeConfig, complete)).toBe(complete);
    expect(withSchemaDefaults(routeConfig, 'not a route')).toBe('not a route');
    const odd = { ...route, cache_policy: 'yes', methods: 'GET' };
    expect(withSchemaDefaults(routeConfig, odd)).toMatchObject({ cache_policy: 'yes', methods: 'GET' });
    expect(
      withSchemaDefaults(tenantSettings, { service_accounts: [{ id: 'billing', keys: 7 }] }),
    ).toMatchObject({ service_accounts: [{ id: 'billing', keys: 7, scopes: [] }], oidc: null });
  });
});

describe('the control plane upcasters', () => {
  it('read an old tenant without its retired settings and with the settings added since', () => {
    const event = {
      id: '1b7f6c4e-1f0e-4a3e-9d55-0b3c1c2d4e5f',
      type: 'TenantCreated',
      stream: 'tenant-x',
      revision: 0n,
      position: 1n,
      storedBytes: 0,
      data: {
        tenant_id: 'x',
        settings: { rate_limit: null, oidc: null, service_jwks: [{}], custom_domains: ['a'] },
      },
      metadata: {
        actor: 'user_1',
        tenant_id: 'x',
        correlation_id: 'c',
        causation_id: null,
        occurred_at: '2026-11-27T00:00:00.000Z',
        schema_version: 1,
      },
    };
    const read = CONTROL_PLANE_UPCASTERS.apply(event);
    expect((read.data as { settings: unknown }).settings).toEqual(tenantSettings.parse({}));
    expect(read.metadata.schema_version).toBe(1);
    expect(CONTROL_PLANE_UPCASTERS.apply(read)).toBe(read);
  });
});
