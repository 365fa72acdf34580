import { randomUUID } from 'node:crypto';
import { applyUsageBatch } from '@vantageedge/projections/usage/usage-flusher';
import { createTestRedis, type TestRedis } from '@vantageedge/shared/testing/redis';
import { RedisQuotaStore } from '@vantageedge/shared/usage/quota-store';
import { quotaWindows } from '@vantageedge/shared/usage/quota-windows';
import { encodeUsageCell, OVERFLOW_ID, type UsageCell } from '@vantageedge/shared/usage/usage-cells';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';
import { createApiKeyQuotaReader } from './api-key-quota.js';

/**
 * GET /api/v1/usage over counts the usage flusher added, and API-key quotas: set on create and with
 * PATCH, and what is left of them (the gateways' counters in the real Redis) in the key's GET.
 */

let cp: ControlPlaneHarness;
let redis: TestRedis;
let quotas: RedisQuotaStore;
let tenantId: string;
let otherTenantId: string;
let keyId: string;
let otherKeyId: string;
const routeId = randomUUID();

async function created(path: string, body: unknown): Promise<Record<string, unknown>> {
  const response = await cp.request('POST', path, { body });
  expect(response.status, JSON.stringify(response.body)).toBe(201);
  return { ...json(response), position: response.headers.get('x-event-position') };
}

async function read(path: string, position?: unknown) {
  return cp.request('GET', path, position ? { headers: { 'X-Min-Position': String(position) } } : {});
}

const at = (iso: string) => Date.parse(iso) / 1000;

beforeAll(async () => {
  redis = createTestRedis('usage-api');
  quotas = new RedisQuotaStore(redis.client);
  cp = await startControlPlane({
    withReadSide: true,
    apiKeyQuota: createApiKeyQuotaReader(quotas, redis.prefix),
  });
  tenantId = String(
    (await created('/api/v1/tenants', { name: 'Usage Co', subdomain: `usage-${Date.now()}` })).id,
  );
  otherTenantId = String(
    (await created('/api/v1/tenants', { name: 'Other Co', subdomain: `other-${Date.now()}` })).id,
  );
  keyId = String(
    (
      await created('/api/v1/api-keys', {
        tenant_id: tenantId,
        name: 'metered',
        quota: { requests_per_day: 100, requests_per_month: 1000 },
      })
    ).id,
  );
  const otherKey = await created('/api/v1/api-keys', { tenant_id: otherTenantId, name: 'theirs' });
  otherKeyId = String(otherKey.id);
  // Reads by api_key_id look the key up in the read models: wait until they hold both keys (a loaded
  // machine's projector may lag the commands).
  const projected = await read(`/api/v1/api-keys/${otherKeyId}`, otherKey.position);
  expect(projected.status, JSON.stringify(projected.body)).toBe(200);

  const cell = (overrides: Partial<UsageCell>): string =>
    encodeUsageCell({
      tenantId,
      routeId,
      apiKeyId: '',
      userId: '',
      statusClass: '2xx',
      hour: 0,
      ...overrides,
    });
  await applyUsageBatch(
    cp.db.pool,
    `gw-a:${randomUUID()}`,
    new Map([
      [cell({ hour: at('2026-11-26T23:00:00Z'), apiKeyId: keyId }), 4],
      [cell({ hour: at('2026-11-27T09:00:00Z'), apiKeyId: keyId }), 10],
      [cell({ hour: at('2026-11-27T09:00:00Z'), apiKeyId: keyId, statusClass: '4xx' }), 2],
      [cell({ hour: at('2026-11-27T10:00:00Z'), userId: 'user_ann' }), 7],
    ]),
  );
  await applyUsageBatch(
    cp.db.pool,
    `gw-b:${randomUUID()}`,
    new Map([
      [cell({ hour: at('2026-11-27T09:00:00Z'), apiKeyId: keyId }), 5],
      [
        encodeUsageCell({
          tenantId: otherTenantId,
          routeId: '',
          apiKeyId: '',
          userId: '',
          statusClass: '2xx',
          hour: at('2026-11-27T09:00:00Z'),
        }),
        99,
      ],
    ]),
  );
});

afterAll(async () => {
  await cp?.close();
  await redis?.cleanup();
});

describe('GET /api/v1/usage', () => {
  it('answers a tenant’s requests per hour by status class, with every hour of the range and the breakdowns', async () => {
    const response = await read(
      `/api/v1/usage?tenant_id=${tenantId}&granularity=hour&from=2026-11-27T08:30:00Z&to=2026-11-27T11:00:00Z`,
    );
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    const report = json(response);
    expect(report['from']).toBe('2026-11-27T08:00:00.000Z');
    expect(report['to']).toBe('2026-11-27T11:00:00.000Z');
    expect(report['requests']).toBe(24);
    expect(
      (report['data'] as Array<{ start: string; requests: number }>).map((p) => [p.start, p.requests]),
    ).toEqual([
      ['2026-11-27T08:00:00.000Z', 0],
      ['2026-11-27T09:00:00.000Z', 17],
      ['2026-11-27T10:00:00.000Z', 7],
    ]);
    expect(report['by_status_class']).toEqual({ '1xx': 0, '2xx': 22, '3xx': 0, '4xx': 2, '5xx': 0 });
    expect(report['by_api_key']).toEqual([
      {
        id: keyId,
        overflow: false,
        requests: 17,
        by_status_class: { '1xx': 0, '2xx': 15, '3xx': 0, '4xx': 2, '5xx': 0 },
      },
      {
        id: null,
        overflow: false,
        requests: 7,
        by_status_class: { '1xx': 0, '2xx': 7, '3xx': 0, '4xx': 0, '5xx': 0 },
      },
    ]);
    expect((report['by_user'] as Array<{ id: string | null }>).map((u) => u.id)).toEqual([null, 'user_ann']);
  });

  it('sums UTC days, and narrows to one API key (its tenant implied)', async () => {
    const response = await read(
      `/api/v1/usage?api_key_id=${keyId}&granularity=day&from=2026-11-26T00:00:00Z&to=2026-11-28T00:00:00Z`,
    );
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    const days = json(response);
    expect(days['tenant_id']).toBe(tenantId);
    expect((days['data'] as Array<{ requests: number }>).map((p) => p.requests)).toEqual([4, 17]);
  });

  it('shows what the gateways counted past their limits as id * with overflow: true, never as a user', async () => {
    const hour = at('2026-11-20T12:00:00Z');
    const cell = (routeId: string, apiKeyId: string, userId: string): string =>
      encodeUsageCell({ tenantId, routeId, apiKeyId, userId, statusClass: '2xx', hour });
    await applyUsageBatch(
      cp.db.pool,
      `gw-a:${randomUUID()}`,
      new Map([
        [cell(routeId, '', 'user_ann'), 3],
        [cell(routeId, '', OVERFLOW_ID), 50], // users past GATEWAY_USAGE_MAX_USERS_PER_TENANT
        [cell(OVERFLOW_ID, OVERFLOW_ID, OVERFLOW_ID), 8], // cells past the tenant's share
      ]),
    );
    const range = 'from=2026-11-20T00:00:00Z&to=2026-11-21T00:00:00Z&granularity=day';
    const report = json(await read(`/api/v1/usage?tenant_id=${tenantId}&${range}`));
    expect(report['requests']).toBe(61);
    const entries = (key: string) =>
      (report[key] as Array<{ id: string | null; overflow: boolean; requests: number }>).map((e) => [
        e.id,
        e.overflow,
        e.requests,
      ]);
    expect(entries('by_user')).toEqual([
      ['*', true, 58],
      ['user_ann', false, 3],
    ]);
    expect(entries('by_route')).toEqual([
      [routeId, false, 53],
      ['*', true, 8],
    ]);
    expect(entries('by_api_key')).toEqual([
      [null, false, 53],
      ['*', true, 8],
    ]);
    const overflowOnly = json(await read(`/api/v1/usage?tenant_id=${tenantId}&user_id=*&${range}`));
    expect(overflowOnly['user_id']).toBe('*');
    expect(overflowOnly['requests']).toBe(58);
  });

  it('regression: filters by any user id its breakdown shows, such as OIDC subjects with | or + or spaces', async () => {
    const hour = at('2026-11-18T12:00:00Z');
    const users = [
      'oidc:Ab-Cd_EfGhIjKlMn:auth0|5f1a2b3c',
      'oidc:Ab-Cd_EfGhIjKlMn:ann+work@example.com',
      'oidc:Ab-Cd_EfGhIjKlMn:Ann Smith (é)',
    ];
    await applyUsageBatch(
      cp.db.pool,
      `gw-a:${randomUUID()}`,
      new Map(
        users.map((userId, index) => [
          encodeUsageCell({ tenantId, routeId, apiKeyId: '', userId, statusClass: '2xx', hour }),
          index + 1,
        ]),
      ),
    );
    const range = 'from=2026-11-18T00:00:00Z&to=2026-11-19T00:00:00Z&granularity=day';
    const report = json(await read(`/api/v1/usage?tenant_id=${tenantId}&${range}`));
    const shown = (report['by_user'] as Array<{ id: string }>).map((entry) => entry.id);
    expect(shown.sort()).toEqual([...users].sort());
    for (const [index, userId] of users.entries()) {
      const response = await read(
        `/api/v1/usage?tenant_id=${tenantId}&user_id=${encodeURIComponent(userId)}&${range}`,
      );
      expect(response.status, `${userId}: ${JSON.stringify(response.body)}`).toBe(200);
      expect(json(response)['requests'], userId).toBe(index + 1);
    }
    // An id no gateway counts as itself is still refused, naming the parameter.
    const control = await read(`/api/v1/usage?tenant_id=${tenantId}&user_id=a%01b&${range}`);
    expect(control.status).toBe(400);
    expect(json(control)['error']).toMatchObject({
      details: [expect.objectContaining({ field: 'user_id' })],
    });
  });

  it('refuses what it cannot answer with 400 naming the parameter, and hides other tenants’ keys', async () => {
    const cases: Array<[string, number, string]> = [
      ['/api/v1/usage', 400, 'tenant_id'],
      [`/api/v1/usage?tenant_id=${tenantId}&granularity=week`, 400, 'granularity'],
      [`/api/v1/usage?tenant_id=${tenantId}&from=yesterday`, 400, 'from'],
      [`/api/v1/usage?tenant_id=${tenantId}&from=2026-11-27T10:00:00Z&to=2026-11-27T09:00:00Z`, 400, 'to'],
      [`/api/v1/usage?tenant_id=${tenantId}&from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z`, 400, 'from'],
      [`/api/v1/usage?tenant_id=${tenantId}&bogus=1`, 400, 'bogus'],
      [`/api/v1/usage?tenant_id=${tenantId}&api_key_id=${otherKeyId}`, 404, 'api_key_id'],
    ];
    for (const [path, status, field] of cases) {
      const response = await read(path);
      expect(response.status, path).toBe(status);
      const details = (json(response)['error'] as { details: Array<{ field: string }> }).details;
      expect(
        details.map((d) => d.field),
        path,
      ).toContain(field);
    }
  });

  it('reads a revoked and a rotated key’s usage under its own id; the replacement counts on its own', async () => {
    const issue = async (name: string) =>
      String((await created('/api/v1/api-keys', { tenant_id: tenantId, name })).id);
    const [revoked, rotated] = [await issue('revoked'), await issue('rotated')];
    const hour = at('2026-11-15T12:00:00Z');
    const cell = (apiKeyId: string) =>
      encodeUsageCell({ tenantId, routeId, apiKeyId, userId: '', statusClass: '2xx', hour });
    await applyUsageBatch(
      cp.db.pool,
      `gw-a:${randomUUID()}`,
      new Map([
        [cell(revoked), 3],
        [cell(rotated), 4],
      ]),
    );
    const revoke = await cp.request('POST', `/api/v1/api-keys/${revoked}/revoke`, { body: {} });
    expect(revoke.status, JSON.stringify(revoke.body)).toBe(200);
    const rotate = await cp.request('POST', `/api/v1/api-keys/${rotated}/rotate`, { body: {} });
    expect(rotate.status, JSON.stringify(rotate.body)).toBe(201);
    const replacement = String(json(rotate)['id']);
    expect(replacement).not.toBe(rotated);
    // The usage endpoint finds keys in the read models but takes no X-Min-Position: wait on the key's
    // GET until they hold the rotation (and the revocation before it).
    const projected = await read(`/api/v1/api-keys/${replacement}`, rotate.headers.get('x-event-position'));
    expect(projected.status, JSON.stringify(projected.body)).toBe(200);
    const range = 'from=2026-11-15T00:00:00Z&to=2026-11-16T00:00:00Z&granularity=day';
    const requestsOf = async (keyId: string) => {
      const response = await read(`/api/v1/usage?api_key_id=${keyId}&${range}`);
      expect(response.status, `${keyId}: ${JSON.stringify(response.body)}`).toBe(200);
      return json(response)['requests'];
    };
    expect(await requestsOf(revoked)).toBe(3);
    expect(await requestsOf(rotated)).toBe(4);
    expect(await requestsOf(replacement)).toBe(0);
  });

  // Regression: the order of from and to was checked only after rounding them to whole periods, so a
  // `to` before `from` in the same hour (or day) answered 200 with that period's requests.
  it('answers 400 naming to when to is not after from, also within one period', async () => {
    const cases = [
      'from=2026-11-27T09:45:00Z&to=2026-11-27T09:15:00Z',
      'from=2026-11-27T09:30:00Z&to=2026-11-27T09:30:00Z',
      'from=2026-11-27T18:00:00Z&to=2026-11-27T06:00:00Z&granularity=day',
      // The same instants with offsets: 10:45+01:00 is 09:45Z, after 09:15Z.
      'from=2026-11-27T10:45:00%2B01:00&to=2026-11-27T09:15:00Z',
    ];
    for (const query of cases) {
      const response = await read(`/api/v1/usage?tenant_id=${tenantId}&${query}`);
      expect(response.status, `${query}: ${JSON.stringify(response.body)}`).toBe(400);
      expect(json(response)['error'], query).toMatchObject({
        code: 'validation_failed',
        details: [{ field: 'to', issue: 'must be after from' }],
      });
    }
    // Without `to` (now), a `from` after now is the field at fault.
    const future = await read(`/api/v1/usage?tenant_id=${tenantId}&from=2999-01-01T00:00:00Z`);
    expect(future.status, JSON.stringify(future.body)).toBe(400);
    expect(json(future)['error']).toMatchObject({ details: [{ field: 'from' }] });
    // A range within one period is that whole period, as before.
    const within = await read(
      `/api/v1/usage?tenant_id=${tenantId}&from=2026-11-27T09:15:00Z&to=2026-11-27T10:45:00%2B01:00`,
    );
    expect(within.status, JSON.stringify(within.body)).toBe(200);
    expect(json(within)).toMatchObject({
      from: '2026-11-27T09:00:00.000Z',
      to: '2026-11-27T10:00:00.000Z',
      requests: 17,
    });
  });

  // Regression: well-formed dates at the ends of the 4-digit years answered 500: `to` rounded up past
  // 9999 (not a date PostgreSQL reads), `from` in year 0 (which PostgreSQL has not).
  it('answers 400 naming from or to for dates outside the range it accepts, never 500', async () => {
    const cases: Array<[string, string]> = [
      ['to=9999-12-31T23:00:01Z', 'to'],
      ['to=9999-12-31T23:59:59Z&granularity=day', 'to'],
      ['from=0000-01-01T00:00:00Z&to=0000-01-02T00:00:00Z', 'from'],
      ['from=1969-12-31T23:00:00Z&to=1970-01-01T01:00:00Z', 'from'],
    ];
    for (const [query, field] of cases) {
      const response = await read(`/api/v1/usage?tenant_id=${tenantId}&${query}`);
      expect(response.status, query).toBe(400);
      expect(json(response)['error'], query).toMatchObject({
        code: 'validation_failed',
        details: expect.arrayContaining([expect.objectContaining({ field })]),
      });
    }
    const edges = await read(
      `/api/v1/usage?tenant_id=${tenantId}&granularity=day&from=9998-12-01T00:00:00Z&to=9998-12-31T23:59:59Z`,
    );
    expect(edges.status, JSON.stringify(edges.body)).toBe(200);
  });

  it('shows a tenant’s usage only to who may read the tenant', async () => {
    const stranger = await cp.token({ userId: 'user_stranger', orgId: 'org_stranger', orgRole: 'org:admin' });
    const response = await cp.request('GET', `/api/v1/usage?tenant_id=${tenantId}`, { token: stranger });
    expect(response.status).toBe(404);
    // Regression: asked by key, another tenant's key answered "tenant not found" and an unknown one
    // "api key not found", which told a stranger which key ids exist.
    const byKey = (id: string) => cp.request('GET', `/api/v1/usage?api_key_id=${id}`, { token: stranger });
    const [theirs, unknown] = await Promise.all([byKey(keyId), byKey(randomUUID())]);
    expect([theirs.status, unknown.status]).toEqual([404, 404]);
    expect(theirs.body).toEqual(unknown.body);
  });
});

describe('API key quotas', () => {
  it('shows the quota and what is left of it in the key’s GET, from the gateways’ counters', async () => {
    const now = Date.now();
    const windows = quotaWindows(
      redis.prefix,
      tenantId,
      { kind: 'api_key', id: keyId },
      { requests_per_day: 100, requests_per_month: 1000 },
      now,
    );
    for (let i = 0; i < 3; i++) expect((await quotas.consume(windows)).allowed).toBe(true);
    const key = json(await read(`/api/v1/api-keys/${keyId}`));
    expect(key['quota']).toEqual({ requests_per_day: 100, requests_per_month: 1000 });
    const usage = key['quota_usage'] as Array<Record<string, unknown>>;
    expect(usage.map((w) => [w['period'], w['limit'], w['used'], w['remaining']])).toEqual([
      ['day', 100, 3, 97],
      ['month', 1000, 3, 997],
    ]);
    expect(Date.parse(String(usage[0]?.['resets_at']))).toBeGreaterThan(now);
  });

  // The key's counters move with traffic, not with its revision: a client revalidating with the ETag it
  // has (a browser does) gets today's counts, not a 304.
  it('answers a revalidated key GET with the counts of now, never 304', async () => {
    const first = await cp.request('GET', `/api/v1/api-keys/${keyId}`);
    expect(first.status).toBe(200);
    const etag = first.headers.get('etag') ?? '';
    expect(etag).not.toBe('');
    const before = (json(first)['quota_usage'] as Array<Record<string, number>>)[0]?.['used'] ?? -1;
    const windows = quotaWindows(
      redis.prefix,
      tenantId,
      { kind: 'api_key', id: keyId },
      { requests_per_day: 100, requests_per_month: 1000 },
      Date.now(),
    );
    expect((await quotas.consume(windows)).allowed).toBe(true);
    const again = await cp.request('GET', `/api/v1/api-keys/${keyId}`, {
      headers: { 'if-none-match': etag },
    });
    expect(again.status).toBe(200);
    expect((json(again)['quota_usage'] as Array<Record<string, number>>)[0]?.['used']).toBe(before + 1);
  });

  it('changes or removes the quota with PATCH; a bad quota is a 400 that changes nothing', async () => {
    const bad = await cp.request('PATCH', `/api/v1/api-keys/${keyId}`, {
      body: { quota: { requests_per_day: 0 } },
    });
    expect(bad.status).toBe(400);
    expect((json(bad)['error'] as { details: Array<{ field: string }> }).details[0]?.field).toBe(
      'quota.requests_per_day',
    );
    const empty = await cp.request('PATCH', `/api/v1/api-keys/${keyId}`, { body: { quota: {} } });
    expect(empty.status).toBe(400);

    const changed = await cp.request('PATCH', `/api/v1/api-keys/${keyId}`, {
      body: { quota: { requests_per_day: 2 } },
    });
    expect(changed.status).toBe(200);
    expect(json(changed)['quota']).toEqual({ requests_per_day: 2 });
    const after = json(await read(`/api/v1/api-keys/${keyId}`, changed.headers.get('x-event-position')));
    expect(
      (after['quota_usage'] as Array<Record<string, unknown>>).map((w) => [w['period'], w['remaining']]),
    ).toEqual([['day', 0]]);

    const removed = await cp.request('PATCH', `/api/v1/api-keys/${keyId}`, { body: { quota: null } });
    const gone = json(await read(`/api/v1/api-keys/${keyId}`, removed.headers.get('x-event-position')));
    expect(gone['quota']).toBeNull();
    expect(gone['quota_usage']).toBeNull();

    const events = (await cp.allEvents()).filter((e) => e.type === 'ApiKeyQuotaChanged');
    expect(events).toHaveLength(2);
    const unchanged = await cp.request('PATCH', `/api/v1/api-keys/${keyId}`, { body: {} });
    expect(unchanged.status).toBe(200);
    expect((await cp.allEvents()).filter((e) => e.type === 'ApiKeyQuotaChanged')).toHaveLength(2);
  });
});
