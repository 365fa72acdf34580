import { randomUUID } from 'node:crypto';
import { originConfig, routeConfig, tenantSettings } from '@vantageedge/shared/domain/gateway-config';
import { describe, expect, it } from 'vitest';
import { DomainError } from '../domain/decision.js';
import { configDocument } from '../schemas/config-document.js';
import { documentOf } from './config-document-of.js';
import { type DeletedResources, planConfig } from './config-plan.js';
import type { TenantConfig } from './tenant-config.js';

const tenantId = randomUUID();
const origin = originConfig.parse({
  id: randomUUID(),
  name: 'users-api',
  targets: [{ url: 'http://127.0.0.1:9/' }],
});
const users = routeConfig.parse({
  id: randomUUID(),
  origin_id: origin.id,
  path_pattern: '/users/*',
  methods: ['GET'],
  auth_mode: 'public',
});
const posts = routeConfig.parse({
  id: randomUUID(),
  origin_id: origin.id,
  path_pattern: '/posts/*',
  auth_mode: 'apikey_required',
});
const current: TenantConfig = {
  tenant_id: tenantId,
  version: '42',
  event_time: '2026-11-30T00:00:00.000Z',
  tenant: {
    id: tenantId,
    name: 'Acme',
    subdomain: 'acme',
    clerk_org_id: null,
    settings: tenantSettings.parse({}),
  },
  custom_domains: [],
  users: [],
  origins: [origin],
  routes: [users, posts],
  api_keys: [{ id: randomUUID(), name: 'ci', scopes: [], expires_at: null, quota: null }],
  certificates: [],
};
const OIDC = { issuer: 'https://login.acme.test', audience: 'api', jwks_url: 'https://login.acme.test/jwks' };
const NOTHING_DELETED: DeletedResources = { origins: new Set(), routes: new Set() };

const parse = (document: unknown) => configDocument.parse(document);
const plan = (document: unknown, deleted = NOTHING_DELETED) => planConfig(current, parse(document), deleted);

/** The current config as a person would write it: no ids, routes naming their origin. */
function handWritten(): { tenant: object; origins: object[]; routes: Array<Record<string, unknown>> } {
  return {
    tenant: { name: 'Acme', subdomain: 'acme' },
    origins: [{ name: 'users-api', url: 'http://127.0.0.1:9/' }],
    routes: [
      { origin: 'users-api', path_pattern: '/users/*', methods: ['GET'], auth_mode: 'public' },
      { origin: 'users-api', path_pattern: '/posts/*', auth_mode: 'apikey_required' },
    ],
  };
}

describe('config plan', () => {
  it('plans nothing for the document of the current config (a dump applies as a no-op)', () => {
    expect(plan(documentOf(current))).toEqual({ changes: [], steps: [] });
    expect(plan(documentOf(current, { originNames: false }))).toEqual({ changes: [], steps: [] });
  });

  it('matches entries without ids by origin name and by route pattern and methods', () => {
    expect(plan(handWritten())).toEqual({ changes: [], steps: [] });
  });

  it('updates only the fields that changed, and shows them as dotted paths', () => {
    const document = handWritten();
    document.routes[0] = { ...document.routes[0], rate_limit: { requests_per_second: 5 } };
    const result = plan(document);
    expect(result.steps).toEqual([
      {
        action: 'update_route',
        id: users.id,
        origin: { id: origin.id },
        changes: {
          rate_limit: {
            algorithm: 'token_bucket',
            requests_per_second: 5,
            scope: 'route',
            accuracy: 'exact',
            on_store_failure: 'open',
          },
        },
      },
    ]);
    expect(result.changes).toMatchObject([
      {
        resource: 'route',
        id: users.id,
        name: 'GET /users/*',
        change: 'changed',
        fields: [{ field: 'rate_limit', from: null }],
      },
    ]);
  });

  it('adds a new origin before the route that names it, deletes routes before removing origins', () => {
    const result = plan({
      tenant: { name: 'Acme', subdomain: 'acme' },
      origins: [{ name: 'posts-api', url: 'http://127.0.0.1:10/' }],
      routes: [{ origin: 'posts-api', path_pattern: '/posts/*', auth_mode: 'apikey_required' }],
    });
    expect(result.steps.map((step) => step.action)).toEqual([
      'add_origin',
      'update_route',
      'delete_route',
      'remove_origin',
    ]);
    expect(result.steps[1]).toMatchObject({ id: posts.id, origin: { added: 0 }, changes: {} });
    expect(result.steps[2]).toEqual({ action: 'delete_route', id: users.id });
    expect(result.steps[3]).toEqual({ action: 'remove_origin', id: origin.id });
    expect(result.changes.map((change) => [change.resource, change.change, change.name])).toEqual([
      ['origin', 'added', 'posts-api'],
      ['origin', 'removed', 'users-api'],
      ['route', 'changed', 'ANY /posts/*'],
      ['route', 'removed', 'GET /users/*'],
    ]);
  });

  it('re-creates a deleted route of the tenant under its own id', () => {
    const deleted = routeConfig.parse({ ...users, id: randomUUID(), path_pattern: '/gone/*' });
    const document = documentOf({ ...current, routes: [...current.routes, deleted] });
    const result = plan(document, { origins: new Set(), routes: new Set([deleted.id]) });
    expect(result.steps).toEqual([
      {
        action: 'restore_route',
        id: deleted.id,
        origin: { id: origin.id },
        route: expect.objectContaining({ path_pattern: '/gone/*', methods: ['GET'] }),
      },
    ]);
    expect(result.changes).toMatchObject([{ id: deleted.id, change: 'restored', name: 'GET /gone/*' }]);
  });

  it('changes the tenant’s own fields; absent clerk_org_id and settings stay as they are', () => {
    const result = plan({ ...handWritten(), tenant: { name: 'Acme Inc', subdomain: 'acme' } });
    expect(result.steps).toEqual([{ action: 'update_tenant', changes: { name: 'Acme Inc' } }]);
    const reset = plan({
      ...handWritten(),
      tenant: { name: 'Acme', subdomain: 'acme', settings: { oidc: OIDC } },
    });
    expect(reset.steps).toEqual([
      {
        action: 'update_tenant',
        changes: {
          settings: { rate_limit: null, oidc: OIDC, service_accounts: [] },
        },
      },
    ]);
  });

  it('refuses ids the tenant never had, another tenant’s document, and ambiguous matches', () => {
    const unknownRoute = { ...handWritten() };
    unknownRoute.routes = [
      { ...unknownRoute.routes[0]!, id: randomUUID() } as (typeof unknownRoute.routes)[0],
    ];
    expect(() => plan(unknownRoute)).toThrow(
      expect.objectContaining({ kind: 'invalid', field: 'routes.0.id' }),
    );
    expect(() =>
      plan({ ...handWritten(), tenant: { id: randomUUID(), name: 'Acme', subdomain: 'acme' } }),
    ).toThrow(DomainError);
    const twins = { ...current, origins: [origin, { ...origin, id: randomUUID() }] };
    expect(() => planConfig(twins, parse(handWritten()), NOTHING_DELETED)).toThrow(
      expect.objectContaining({ field: 'origins.0.id' }),
    );
  });

  it('validates documents with the create commands’ rules', () => {
    const result = configDocument.safeParse({
      tenant: { name: 'Acme', subdomain: 'Not A Label' },
      origins: [{ name: 'a', url: 'http://x.test', targets: [{ url: 'http://y.test' }] }],
      routes: [
        { origin: 'nope', path_pattern: '/a/*', auth_mode: 'public' },
        { path_pattern: '/b/*', auth_mode: 'public' },
      ],
    });
    expect(result.success).toBe(false);
    const paths = result.error?.issues.map((issue) => issue.path.join('.')).sort();
    expect(paths).toEqual(['origins.0.targets', 'routes.0.origin', 'routes.1.origin', 'tenant.subdomain']);
  });
});
