import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ApiResponse,
  type ControlPlaneHarness,
  json,
  startControlPlane,
} from '../testing/control-plane-harness.js';

/**
 * Regression: commands kept an id as the request spelled it, and event streams are named by it
 * (`route-<id>`), so an existing route, tenant or origin named in upper case was a stream no one had
 * written: PATCH and DELETE answered 404, and a create naming its tenant in upper case was refused. An
 * id in a command's path or body is now read in its one spelling, lower case, as the reads do.
 */

/** The id with its hex letters in upper case: the same uuid, another spelling. */
const shouted = (id: string) => id.toUpperCase();

const created = (response: ApiResponse): string => {
  expect(response.status, JSON.stringify(response.body)).toBe(201);
  return json(response)['id'] as string;
};

async function newTenant(cp: ControlPlaneHarness, subdomain: string, org: string): Promise<string> {
  return created(
    await cp.request('POST', '/api/v1/tenants', { body: { name: subdomain, subdomain, clerk_org_id: org } }),
  );
}

describe('an id spelled in upper case in a command', () => {
  let cp: ControlPlaneHarness;
  let tenantId = '';
  let originId = '';
  let admin = '';

  beforeAll(async () => {
    cp = await startControlPlane({ withReadSide: true });
    tenantId = await newTenant(cp, 'cmd-id-case', 'org_cmd_id_case');
    admin = await cp.token({ userId: 'user_cmd_id_case', orgId: 'org_cmd_id_case', orgRole: 'admin' });
    await cp.readModelsCaughtUp();
    originId = created(
      await cp.request('POST', '/api/v1/origins', {
        token: admin,
        body: { tenant_id: tenantId, name: 'a', url: 'https://a.example.com' },
      }),
    );
  }, 60_000);
  afterAll(async () => {
    await cp?.close();
  });

  it("creates, changes and deletes a route of the tenant's own streams", async () => {
    const origin = await cp.request('POST', '/api/v1/origins', {
      token: admin,
      body: { tenant_id: shouted(tenantId), name: 'loud', url: 'https://loud.example.com' },
    });
    created(origin);
    expect(json(origin)['tenant_id']).toBe(tenantId);
    const create = await cp.request('POST', '/api/v1/routes', {
      token: admin,
      body: {
        tenant_id: shouted(tenantId),
        origin_id: shouted(originId),
        path_pattern: '/case/*',
        auth_mode: 'public',
      },
    });
    const routeId = created(create);
    expect(json(create)).toMatchObject({ tenant_id: tenantId, origin_id: originId });
    const listed = await cp.request('GET', `/api/v1/routes?tenant_id=${tenantId}`, {
      token: admin,
      headers: { 'x-min-position': create.headers.get('x-event-position') ?? '' },
    });
    expect(listed.status, JSON.stringify(listed.body)).toBe(200);
    expect((json(listed)['data'] as Array<{ id: string }>).map((route) => route.id)).toEqual([routeId]);

    const patched = await cp.request('PATCH', `/api/v1/routes/${shouted(routeId)}`, {
      token: admin,
      body: { path_pattern: '/loud/*' },
    });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    expect(json(patched)).toMatchObject({ id: routeId, path_pattern: '/loud/*' });

    const deleted = await cp.request('DELETE', `/api/v1/routes/${shouted(routeId)}`, { token: admin });
    expect(deleted.status, JSON.stringify(deleted.body)).toBe(204);
    const read = await cp.request('GET', `/api/v1/routes/${routeId}`, {
      token: admin,
      headers: { 'x-min-position': deleted.headers.get('x-event-position') ?? '' },
    });
    expect(read.status, JSON.stringify(read.body)).toBe(404);

    // Never a second stream, nor a tenant spelled otherwise, for the same resource.
    const events = await cp.allEvents();
    for (const event of events) {
      expect(event.stream).toBe(event.stream.toLowerCase());
      expect(event.metadata.tenant_id ?? '').toBe((event.metadata.tenant_id ?? '').toLowerCase());
    }
    expect(events.filter((event) => event.stream === `route-${routeId}`).map((event) => event.type)).toEqual([
      'RouteCreated',
      'RouteUpdated',
      'RouteDeleted',
    ]);
  });

  it('names traffic split origins in any case, as the same origins', async () => {
    const second = created(
      await cp.request('POST', '/api/v1/origins', {
        token: admin,
        body: { tenant_id: tenantId, name: 'b', url: 'https://b.example.com' },
      }),
    );
    const split = await cp.request('POST', '/api/v1/routes', {
      token: admin,
      body: {
        tenant_id: tenantId,
        origin_id: originId,
        path_pattern: '/split/*',
        auth_mode: 'public',
        traffic_split: {
          origins: [
            { origin_id: shouted(originId), weight: 1 },
            { origin_id: shouted(second), weight: 1 },
          ],
        },
      },
    });
    created(split);
    expect(json(split)['traffic_split']).toMatchObject({
      origins: [{ origin_id: originId }, { origin_id: second }],
    });
    // One origin named twice in two spellings is the same origin named twice.
    const twice = await cp.request('POST', '/api/v1/routes', {
      token: admin,
      body: {
        tenant_id: tenantId,
        origin_id: originId,
        path_pattern: '/twice/*',
        auth_mode: 'public',
        traffic_split: {
          origins: [
            { origin_id: originId, weight: 1 },
            { origin_id: shouted(originId), weight: 1 },
          ],
        },
      },
    });
    expect(twice.status, JSON.stringify(twice.body)).toBe(400);
  });

  it("reads a config document's ids in any case as the tenant's own resources", async () => {
    const read = await cp.request('GET', `/api/v1/tenants/${tenantId}/config/document`, { token: admin });
    expect(read.status, JSON.stringify(read.body)).toBe(200);
    const shoutedIds = JSON.parse(
      JSON.stringify(json(read)['document']).replace(/[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}/g, shouted),
    ) as { origins: Array<{ id?: string }> };
    expect(shoutedIds.origins[0]?.id).toBe(shouted(originId));
    for (const step of ['plan', 'apply']) {
      const answer = await cp.request('POST', `/api/v1/tenants/${shouted(tenantId)}/config/${step}`, {
        token: admin,
        body: shoutedIds,
      });
      expect(answer.status, JSON.stringify(answer.body)).toBe(200);
      expect(json(answer)['changes']).toEqual([]);
    }
  });

  it('replays an Idempotency-Key retry that spells the id otherwise', async () => {
    const key = created(
      await cp.request('POST', '/api/v1/api-keys', {
        token: admin,
        body: { tenant_id: tenantId, name: 'k' },
      }),
    );
    const rotate = (id: string) =>
      cp.request('POST', `/api/v1/api-keys/${id}/rotate`, {
        token: admin,
        body: {},
        headers: { 'idempotency-key': 'rotate-case-1' },
      });
    const first = await rotate(shouted(key));
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    const retry = await rotate(key);
    expect(retry.status, JSON.stringify(retry.body)).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(json(retry)['id']).toBe(json(first)['id']);
    const rotations = (await cp.allEvents()).filter((event) => event.type === 'ApiKeyRotated');
    expect(rotations).toHaveLength(1);
  });
});

describe("a tenant's command budget", () => {
  let cp: ControlPlaneHarness;
  const clock = 1_000_000;

  beforeAll(async () => {
    cp = await startControlPlane({
      adminRateLimits: {
        limits: {
          tenantCommands: { perMinute: 60, burst: 2 },
          userRequests: { perMinute: 60_000, burst: 10_000 },
        },
        now: () => clock,
      },
    });
  }, 60_000);
  afterAll(async () => {
    await cp?.close();
  });

  it('is one budget whatever the spelling of the tenant id', async () => {
    const tenantId = await newTenant(cp, 'cmd-id-budget', 'org_cmd_id_budget');
    for (const [index, spelling] of [tenantId, shouted(tenantId)].entries()) {
      const renamed = await cp.request('PATCH', `/api/v1/tenants/${spelling}`, {
        body: { name: `n${index}` },
      });
      expect(renamed.status, JSON.stringify(renamed.body)).toBe(200);
    }
    const over = await cp.request('POST', '/api/v1/origins', {
      body: { tenant_id: shouted(tenantId), name: 'over', url: 'https://over.example.com' },
    });
    expect(over.status, JSON.stringify(over.body)).toBe(429);
    expect(json(over)['error']).toMatchObject({ code: 'admin_rate_limited' });
  });
});

describe('a config document command and the spelling of its path', () => {
  let cp: ControlPlaneHarness;
  let tenantId = '';

  beforeAll(async () => {
    cp = await startControlPlane({ withReadSide: true });
    tenantId = await newTenant(cp, 'cmd-doc-case', 'org_cmd_doc_case');
    await cp.readModelsCaughtUp();
  }, 60_000);
  afterAll(async () => {
    await cp?.close();
  });

  const document = { tenant: { name: 'cmd-doc-case', subdomain: 'cmd-doc-case' }, origins: [], routes: [] };

  // Regression: a document over the 64 KiB limit of other admin bodies was refused 413 when the path
  // was spelled otherwise than the documents' own body reading looked for it.
  it('plans a 100 KiB document', async () => {
    const padded = `${JSON.stringify(document).slice(0, -1)}${' '.repeat(100 * 1024)}}`;
    const answer = await cp.request('POST', `/api/v1/tenants/${tenantId}/config/plan`, {
      rawBody: padded,
      headers: { 'content-type': 'application/json' },
    });
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  });

  // Paths are matched exactly: another letter case is no endpoint.
  it.each(['CONFIG/PLAN', 'Config/Plan'])('answers …/%s as the 404 of an unknown path', async (tail) => {
    const answer = await cp.request('POST', `/api/v1/tenants/${tenantId}/${tail}`, { body: document });
    expect(answer.status, JSON.stringify(answer.body)).toBe(404);
    expect(json(answer)['error']).toMatchObject({ code: 'not_found' });
  });
});
