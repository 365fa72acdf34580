import { randomUUID } from 'node:crypto';
import { originConfig, routeConfig, tenantSettings } from '@vantageedge/shared/domain/gateway-config';
import { describe, expect, it } from 'vitest';
import { DomainError } from '../domain/decision.js';
import { configDocument } from '../schemas/config-document.js';
import { diffConfigs } from './config-diff.js';
import { documentOf } from './config-document-of.js';
import { type DeletedResources, planConfig } from './config-plan.js';
import { REDACTED_VALUE, redactedChanges, redactedConfig } from './redact-credentials.js';
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
        place: 'routes.0',
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
        place: `routes.${document.routes.length - 1}`,
        id: deleted.id,
        origin: { id: origin.id },
        route: expect.objectContaining({ path_pattern: '/gone/*', methods: ['GET'] }),
      },
    ]);
    expect(result.changes).toMatchObject([{ id: deleted.id, change: 'restored', name: 'GET /gone/*' }]);
  });

  it('changes the tenant’s own fields; absent clerk_org_id and settings stay as they are', () => {
    const result = plan({ ...handWritten(), tenant: { name: 'Acme Inc', subdomain: 'acme' } });
    expect(result.steps).toEqual([
      { action: 'update_tenant', place: 'tenant', changes: { name: 'Acme Inc' } },
    ]);
    const reset = plan({
      ...handWritten(),
      tenant: { name: 'Acme', subdomain: 'acme', settings: { oidc: OIDC } },
    });
    expect(reset.steps).toEqual([
      {
        action: 'update_tenant',
        place: 'tenant',
        changes: {
          settings: {
            rate_limit: null,
            oidc: OIDC,
            authorized_parties: null,
            service_accounts: [],
            ip_rules: null,
          },
        },
      },
    ]);
  });

  // Regression: a route that answers itself has origin_id null, and a document carrying one was refused
  // as "points at an origin this document does not keep", so a dump of such a tenant could not be applied.
  it('plans a route without origin (maintenance answer) like any other, and its dump applies as a no-op', () => {
    const maintenance = {
      origin_id: null,
      path_pattern: '/status',
      auth_mode: 'public',
      fixed_response: { status: 503, headers: { 'retry-after': '600' }, body: 'back soon' },
    };
    const document = handWritten();
    document.routes.push(maintenance);
    const added = plan(document);
    expect(added.steps).toEqual([
      {
        action: 'create_route',
        place: `routes.${document.routes.length - 1}`,
        origin: { none: true },
        route: expect.objectContaining({ path_pattern: '/status' }),
      },
    ]);
    const withRoute: TenantConfig = {
      ...current,
      routes: [...current.routes, routeConfig.parse({ id: randomUUID(), ...maintenance })],
    };
    expect(planConfig(withRoute, parse(documentOf(withRoute)), NOTHING_DELETED)).toEqual({
      changes: [],
      steps: [],
    });
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

  // Regression: each route entry without an id scanned every live route (sorting its methods each time),
  // so a plan of a tenant's 2,000 routes against a document of 2,000 new ones held the control plane's
  // event loop for seconds — and plan needs only read access.
  it('matches entries to live resources in linear time, whatever the number of routes', () => {
    const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'];
    const many = (prefix: string) =>
      Array.from({ length: 2000 }, (_, i) => ({ path_pattern: `/${prefix}${i}/*`, methods: METHODS }));
    // Counts the reads of live routes: the planner's work, without a clock.
    let routeReads = 0;
    const liveRoutes = many('live').map((route) =>
      routeConfig.parse({ id: randomUUID(), origin_id: origin.id, auth_mode: 'public', ...route }),
    );
    const counted = new Proxy(liveRoutes, {
      get(target, property, receiver) {
        if (typeof property === 'string' && /^\d+$/.test(property)) routeReads += 1;
        return Reflect.get(target, property, receiver);
      },
    });
    const live: TenantConfig = { ...current, routes: counted };
    const document = parse({
      ...handWritten(),
      routes: many('new').map((route) => ({ origin: 'users-api', auth_mode: 'public', ...route })),
    });
    const result = planConfig(live, document, NOTHING_DELETED);
    expect(result.steps).toHaveLength(4000);
    // A few passes over the 2,000 live routes; one per entry would be 4,000,000 reads.
    expect(routeReads).toBeLessThan(20 * liveRoutes.length);
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

describe('config plan: credential request headers (write-only values)', () => {
  const SECRET = 'Bearer origin-secret-0123';
  const guarded = {
    ...users,
    request_headers: {
      set: { Authorization: SECRET, 'x-tenant': 'acme' },
      add: { 'x-api-key': 'k-0123' },
      remove: [],
    },
  };
  const withGuarded: TenantConfig = { ...current, routes: [guarded, posts] };
  const dumped = () =>
    documentOf(redactedConfig(withGuarded)) as unknown as { routes: Array<Record<string, unknown>> };
  const planOf = (document: unknown, deleted = NOTHING_DELETED) =>
    planConfig(withGuarded, parse(document), deleted);

  it('a redacted dump shows the placeholder and plans nothing (the placeholder keeps the stored value)', () => {
    const document = dumped();
    expect(JSON.stringify(document)).not.toContain(SECRET);
    expect(document.routes.find((route) => route['id'] === users.id)?.['request_headers']).toEqual({
      set: { Authorization: REDACTED_VALUE, 'x-tenant': 'acme' },
      add: { 'x-api-key': REDACTED_VALUE },
      remove: [],
    });
    expect(planOf(document)).toEqual({ changes: [], steps: [] });
  });

  it('an edit beside a placeholder updates with the stored value; the change names only the edited header', () => {
    const document = dumped();
    const route = document.routes.find((entry) => entry['id'] === users.id) as Record<string, unknown>;
    route['request_headers'] = {
      set: { Authorization: REDACTED_VALUE, 'x-tenant': 'globex' },
      add: { 'x-api-key': REDACTED_VALUE },
      remove: [],
    };
    const result = planOf(document);
    expect(result.steps).toEqual([
      expect.objectContaining({
        action: 'update_route',
        id: users.id,
        changes: {
          request_headers: {
            set: { Authorization: SECRET, 'x-tenant': 'globex' },
            add: { 'x-api-key': 'k-0123' },
            remove: [],
          },
        },
      }),
    ]);
    expect(result.changes.map((change) => change.fields)).toEqual([
      [{ field: 'request_headers.set.x-tenant', from: 'acme', to: 'globex' }],
    ]);
  });

  it('the placeholder with no stored value is invalid, naming the field', () => {
    const newRoute = dumped();
    newRoute.routes.push({
      origin: 'users-api',
      path_pattern: '/orders/*',
      auth_mode: 'public',
      request_headers: { set: { 'x-auth-token': REDACTED_VALUE } },
    });
    expect(() => planOf(newRoute)).toThrow(
      expect.objectContaining({ kind: 'invalid', field: 'routes.2.request_headers.set.x-auth-token' }),
    );
    const notStored = dumped();
    const route = notStored.routes.find((entry) => entry['id'] === users.id) as Record<string, unknown>;
    route['request_headers'] = { add: { 'proxy-secret': REDACTED_VALUE } };
    const index = notStored.routes.indexOf(route);
    expect(() => planOf(notStored)).toThrow(
      expect.objectContaining({ kind: 'invalid', field: `routes.${index}.request_headers.add.proxy-secret` }),
    );
  });

  it('a deleted route brought back by its id takes the value it had', () => {
    const document = dumped();
    const gone: TenantConfig = { ...withGuarded, routes: [posts] };
    const deleted: DeletedResources = {
      origins: new Set(),
      routes: new Set([users.id]),
      routeHeaders: new Map([[users.id, guarded.request_headers]]),
    };
    const result = planConfig(gone, parse(document), deleted);
    expect(result.steps).toEqual([
      expect.objectContaining({
        action: 'restore_route',
        id: users.id,
        route: expect.objectContaining({ request_headers: guarded.request_headers }),
      }),
    ]);
    expect(JSON.stringify(redactedChanges(result.changes))).not.toContain(SECRET);
  });

  it('a value given outright is planned as written whether or not it is the stored one; the step carries it', () => {
    const withAuthorization = (value: string) => {
      const document = dumped();
      const route = document.routes.find((entry) => entry['id'] === users.id) as Record<string, unknown>;
      const headers = route['request_headers'] as { set: Record<string, string> };
      route['request_headers'] = { ...headers, set: { ...headers.set, Authorization: value } };
      return document;
    };
    const right = planOf(withAuthorization(SECRET));
    const wrong = planOf(withAuthorization('Bearer a-guess'));
    expect(redactedChanges(right.changes)).toEqual(redactedChanges(wrong.changes));
    expect(redactedChanges(right.changes).map((change) => change.fields)).toEqual([
      [{ field: 'request_headers.set.Authorization', from: REDACTED_VALUE, to: REDACTED_VALUE }],
    ]);
    expect(right.steps).toEqual([
      expect.objectContaining({
        action: 'update_route',
        changes: { request_headers: guarded.request_headers },
      }),
    ]);
    // A rollback's document is the recorded config: its values are compared as they are.
    const recorded = documentOf(withGuarded, { originNames: false });
    expect(planConfig(withGuarded, parse(recorded), NOTHING_DELETED, { placeholders: 'literal' })).toEqual({
      changes: [],
      steps: [],
    });
  });

  it('a plan and a diff show no secret, a change of one as <redacted> → <redacted>', () => {
    const rotated: TenantConfig = {
      ...withGuarded,
      routes: [
        { ...guarded, request_headers: { ...guarded.request_headers, set: { Authorization: 'Bearer new' } } },
        posts,
      ],
    };
    const changes = redactedChanges(diffConfigs(withGuarded, rotated));
    expect(JSON.stringify(changes)).not.toContain(SECRET);
    expect(JSON.stringify(changes)).not.toContain('Bearer new');
    expect(changes[0]?.fields).toContainEqual({
      field: 'request_headers.set.Authorization',
      from: REDACTED_VALUE,
      to: REDACTED_VALUE,
    });
    const whole = redactedChanges(diffConfigs({ ...withGuarded, routes: [users, posts] }, withGuarded));
    expect(JSON.stringify(whole)).not.toContain(SECRET);
  });
});

describe('config plan: credential query parameters (write-only values)', () => {
  const KEY = 'origin-query-key-0123';
  const TOKEN = 'origin-query-token-4567';
  const guarded = {
    ...users,
    query: { set: { api_key: KEY, format: 'json' }, add: { access_token: TOKEN }, remove: [] },
  };
  const withGuarded: TenantConfig = { ...current, routes: [guarded, posts] };
  const dumped = () =>
    documentOf(redactedConfig(withGuarded)) as unknown as { routes: Array<Record<string, unknown>> };
  const planOf = (document: unknown, deleted = NOTHING_DELETED) =>
    planConfig(withGuarded, parse(document), deleted);
  const guardedEntry = (document: { routes: Array<Record<string, unknown>> }) =>
    document.routes.find((route) => route['id'] === users.id) as Record<string, unknown>;

  it('a redacted dump shows the placeholder and plans nothing (the placeholder keeps the stored value)', () => {
    const document = dumped();
    expect(JSON.stringify(document)).not.toContain(KEY);
    expect(JSON.stringify(document)).not.toContain(TOKEN);
    expect(guardedEntry(document)['query']).toEqual({
      set: { api_key: REDACTED_VALUE, format: 'json' },
      add: { access_token: REDACTED_VALUE },
      remove: [],
    });
    expect(planOf(document)).toEqual({ changes: [], steps: [] });
  });

  it('an edit beside a placeholder updates with the stored value; the change names only the edited parameter', () => {
    const document = dumped();
    guardedEntry(document)['query'] = {
      set: { api_key: REDACTED_VALUE, format: 'xml' },
      add: { access_token: REDACTED_VALUE },
      remove: [],
    };
    const result = planOf(document);
    expect(result.steps).toEqual([
      expect.objectContaining({
        action: 'update_route',
        id: users.id,
        changes: {
          query: { set: { api_key: KEY, format: 'xml' }, add: { access_token: TOKEN }, remove: [] },
        },
      }),
    ]);
    expect(result.changes.map((change) => change.fields)).toEqual([
      [{ field: 'query.set.format', from: 'json', to: 'xml' }],
    ]);
    expect(JSON.stringify(redactedChanges(result.changes))).not.toContain(KEY);
  });

  it('query parameter names are compared exactly: the placeholder of another spelling keeps nothing', () => {
    const document = dumped();
    guardedEntry(document)['query'] = { set: { API_KEY: REDACTED_VALUE } };
    const index = document.routes.indexOf(guardedEntry(document));
    expect(() => planOf(document)).toThrow(
      expect.objectContaining({ kind: 'invalid', field: `routes.${index}.query.set.API_KEY` }),
    );
  });

  it('the placeholder with no stored value is invalid, naming the field', () => {
    const newRoute = dumped();
    newRoute.routes.push({
      origin: 'users-api',
      path_pattern: '/orders/*',
      auth_mode: 'public',
      query: { set: { sig: REDACTED_VALUE } },
    });
    expect(() => planOf(newRoute)).toThrow(
      expect.objectContaining({ kind: 'invalid', field: 'routes.2.query.set.sig' }),
    );
    const notStored = dumped();
    guardedEntry(notStored)['query'] = { add: { client_secret: REDACTED_VALUE } };
    const index = notStored.routes.indexOf(guardedEntry(notStored));
    expect(() => planOf(notStored)).toThrow(
      expect.objectContaining({ kind: 'invalid', field: `routes.${index}.query.add.client_secret` }),
    );
  });

  it('the placeholder as the value of an ordinary parameter is an ordinary value', () => {
    const document = dumped();
    guardedEntry(document)['query'] = {
      set: { api_key: REDACTED_VALUE, format: REDACTED_VALUE },
      add: { access_token: REDACTED_VALUE },
    };
    const [step] = planOf(document).steps;
    expect(step).toMatchObject({
      action: 'update_route',
      changes: { query: { set: { api_key: KEY, format: REDACTED_VALUE }, add: { access_token: TOKEN } } },
    });
  });

  it('a deleted route brought back by its id takes the value it had', () => {
    const document = dumped();
    const gone: TenantConfig = { ...withGuarded, routes: [posts] };
    const deleted: DeletedResources = {
      origins: new Set(),
      routes: new Set([users.id]),
      routeQueries: new Map([[users.id, guarded.query]]),
    };
    const result = planConfig(gone, parse(document), deleted);
    expect(result.steps).toEqual([
      expect.objectContaining({
        action: 'restore_route',
        id: users.id,
        route: expect.objectContaining({ query: guarded.query }),
      }),
    ]);
    expect(JSON.stringify(redactedChanges(result.changes))).not.toContain(KEY);
  });

  it('a rollback’s document (placeholders literal) keeps its values as they are', () => {
    const document = documentOf(withGuarded);
    const result = planConfig({ ...withGuarded, routes: [users, posts] }, parse(document), NOTHING_DELETED, {
      placeholders: 'literal',
    });
    expect(result.steps).toEqual([
      expect.objectContaining({ action: 'update_route', changes: { query: guarded.query } }),
    ]);
  });

  it('a plan and a diff show no secret, a change of one as <redacted> → <redacted>', () => {
    const rotated: TenantConfig = {
      ...withGuarded,
      routes: [{ ...guarded, query: { ...guarded.query, set: { api_key: 'rotated-key' } } }, posts],
    };
    const changes = redactedChanges(diffConfigs(withGuarded, rotated));
    for (const secret of [KEY, TOKEN, 'rotated-key']) expect(JSON.stringify(changes)).not.toContain(secret);
    expect(changes[0]?.fields).toContainEqual({
      field: 'query.set.api_key',
      from: REDACTED_VALUE,
      to: REDACTED_VALUE,
    });
    const whole = redactedChanges(diffConfigs({ ...withGuarded, routes: [users, posts] }, withGuarded));
    for (const secret of [KEY, TOKEN]) expect(JSON.stringify(whole)).not.toContain(secret);
  });
});

describe('a plan of select_tags', () => {
  it('refuses to remove an origin of the share that a route outside it splits its traffic to, naming it', () => {
    const canary = originConfig.parse({
      id: randomUUID(),
      name: 'canary',
      targets: [{ url: 'http://127.0.0.1:9/' }],
      tags: ['team-a'],
    });
    const split = routeConfig.parse({
      id: randomUUID(),
      origin_id: origin.id,
      path_pattern: '/split/*',
      auth_mode: 'public',
      traffic_split: {
        origins: [
          { origin_id: origin.id, weight: 90 },
          { origin_id: canary.id, weight: 10 },
        ],
      },
      tags: ['team-b'],
    });
    const tenant = { ...current, origins: [origin, canary], routes: [split] };
    const share = {
      select_tags: ['team-a'],
      tenant: { name: 'Acme', subdomain: 'acme' },
      origins: [],
      routes: [],
    };
    const refusal = (() => {
      try {
        planConfig(tenant, parse(share), NOTHING_DELETED);
      } catch (error) {
        return error;
      }
    })();
    expect(refusal).toBeInstanceOf(DomainError);
    expect(refusal).toMatchObject({
      kind: 'invalid',
      issues: [{ field: 'origins', issue: expect.stringContaining(split.id) }],
    });
  });
});
