import { randomUUID } from 'node:crypto';
import { routeConfig, tenantSettings } from '@vantageedge/shared/domain/gateway-config';
import { describe, expect, it } from 'vitest';
import { type ConfigContent, diffConfigs, fieldChanges, sameJson } from './config-diff.js';

const tenant = {
  id: randomUUID(),
  name: 'Acme',
  subdomain: 'acme',
  clerk_org_id: null,
  settings: tenantSettings.parse({}),
};
const origin = {
  id: randomUUID(),
  name: 'users-api',
  targets: [{ url: 'http://127.0.0.1:9/', weight: 1 }],
  health_check_path: '/health',
  timeout_seconds: 30,
  load_balancing: { algorithm: 'round_robin' as const, hash_on: 'client_ip' as const },
  health_check: {
    active: {
      enabled: true,
      interval_seconds: 10,
      timeout_seconds: 2,
      healthy_threshold: 2,
      unhealthy_threshold: 3,
    },
    passive: { enabled: true, unhealthy_threshold: 5 },
  },
  circuit_breaker: {
    enabled: true,
    consecutive_failures: 5,
    error_rate_threshold: 0.5,
    window_requests: 20,
    open_seconds: 30,
    half_open_requests: 1,
  },
  tls: {
    verify: true,
    ca_certificates: null,
    server_name: null,
    verify_depth: null,
    client_certificate_id: null,
  },
  tags: [],
};
const route = (overrides: Record<string, unknown> = {}) =>
  routeConfig.parse({
    id: randomUUID(),
    origin_id: origin.id,
    path_pattern: '/users/*',
    methods: ['GET'],
    auth_mode: 'public',
    ...overrides,
  });
const limit = {
  algorithm: 'token_bucket' as const,
  requests_per_second: 5,
  scope: 'route' as const,
  accuracy: 'exact' as const,
  on_store_failure: 'open' as const,
};

describe('config diff', () => {
  it('is empty for equal configs, whatever the order of the routes', () => {
    const a = route();
    const b = route({ path_pattern: '/posts/*' });
    const before: ConfigContent = { tenant, origins: [origin], routes: [a, b] };
    expect(diffConfigs(before, { tenant, origins: [origin], routes: [b, a] })).toEqual([]);
  });

  it('shows an origin’s new client certificate as the change of tls.client_certificate_id', () => {
    const certificateId = randomUUID();
    const presenting = { ...origin, tls: { ...origin.tls, client_certificate_id: certificateId } };
    const [change] = diffConfigs(
      { tenant, origins: [origin], routes: [] },
      { tenant, origins: [presenting], routes: [] },
    );
    expect(change?.fields).toEqual([{ field: 'tls.client_certificate_id', from: null, to: certificateId }]);
  });

  it('names added, removed and changed resources with the changed fields as dotted paths', () => {
    const kept = route();
    const removed = route({ path_pattern: '/old/*', methods: [] });
    const added = route({ path_pattern: '/new/*' });
    const limited = { ...kept, rate_limit: { ...limit } };
    const changes = diffConfigs(
      { tenant, origins: [origin], routes: [kept, removed] },
      {
        tenant: { ...tenant, name: 'Acme Inc' },
        origins: [{ ...origin, timeout_seconds: 10 }],
        routes: [limited, added],
      },
    );
    expect(changes.map((change) => [change.resource, change.change, change.name])).toEqual([
      ['tenant', 'changed', 'Acme Inc'],
      ['origin', 'changed', 'users-api'],
      ['route', 'changed', 'GET /users/*'],
      ['route', 'added', 'GET /new/*'],
      ['route', 'removed', 'ANY /old/*'],
    ]);
    expect(changes[0]?.fields).toEqual([{ field: 'name', from: 'Acme', to: 'Acme Inc' }]);
    expect(changes[1]?.fields).toEqual([{ field: 'timeout_seconds', from: 30, to: 10 }]);
    expect(changes[2]?.fields).toEqual([{ field: 'rate_limit', from: null, to: limit }]);
    expect(changes[3]).toMatchObject({ before: null, after: added, fields: [] });
    expect(changes[4]).toMatchObject({ before: removed, after: null });
  });

  it('walks into nested objects and compares arrays whole', () => {
    expect(
      fieldChanges(
        { rate_limit: limit, methods: ['GET'] },
        { rate_limit: { ...limit, requests_per_second: 50 }, methods: ['GET', 'POST'] },
      ),
    ).toEqual([
      { field: 'rate_limit.requests_per_second', from: 5, to: 50 },
      { field: 'methods', from: ['GET'], to: ['GET', 'POST'] },
    ]);
  });

  it('shows a map entry named like a member every object has (valueOf, toString) as absent on the side without it', () => {
    const plain = route();
    const withParams = route({
      id: plain.id,
      query: { set: { valueOf: '1' }, add: {}, remove: ['toString'] },
    });
    const withOtherParams = route({ id: plain.id, query: { set: { toString: '2' }, add: {}, remove: [] } });
    const diff = (from: typeof plain, to: typeof plain) =>
      diffConfigs(
        { tenant, origins: [origin], routes: [from] },
        { tenant, origins: [origin], routes: [to] },
      )[0]?.fields;
    expect(diff(plain, withParams)).toEqual([
      { field: 'query', from: null, to: { set: { valueOf: '1' }, add: {}, remove: ['toString'] } },
    ]);
    expect(diff(withParams, withOtherParams)).toEqual([
      { field: 'query.set.valueOf', from: '1', to: null },
      { field: 'query.set.toString', from: null, to: '2' },
      { field: 'query.remove', from: ['toString'], to: [] },
    ]);
  });

  it('compares custom domains by name and users by id when both sides list them', () => {
    const base = { tenant, origins: [], routes: [] };
    const user = { id: randomUUID(), clerk_user_id: 'user_ann' };
    const changes = diffConfigs(
      { ...base, custom_domains: [{ domain: 'old.acme.test', verified_position: '3' }], users: [] },
      { ...base, custom_domains: [{ domain: 'api.acme.test', verified_position: '9' }], users: [user] },
    );
    expect(changes.map((change) => [change.resource, change.change, change.name])).toEqual([
      ['custom_domain', 'added', 'api.acme.test'],
      ['custom_domain', 'removed', 'old.acme.test'],
      ['user', 'added', 'user_ann'],
    ]);
  });

  it('compares API keys only when both sides list them', () => {
    const key = { id: randomUUID(), name: 'ci', scopes: [], expires_at: null, quota: null };
    const base = { tenant, origins: [], routes: [] };
    expect(diffConfigs({ ...base, api_keys: [key] }, { ...base, api_keys: [] })).toMatchObject([
      { resource: 'api_key', change: 'removed', name: 'ci' },
    ]);
    expect(diffConfigs({ ...base, api_keys: [key] }, base)).toEqual([]);
  });

  it('treats JSON values structurally', () => {
    expect(sameJson({ a: [1, { b: null }] }, { a: [1, { b: null }] })).toBe(true);
    expect(sameJson({ a: 1 }, { a: 1, b: 2 })).toBe(false);
    expect(sameJson([1, 2], [2, 1])).toBe(false);
    expect(sameJson(null, {})).toBe(false);
  });
});
