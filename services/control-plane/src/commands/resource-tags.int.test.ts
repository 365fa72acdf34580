import { randomBytes } from 'node:crypto';
import { MAX_DECODED_SNAPSHOT_BYTES } from '@vantageedge/shared/snapshot-bus/codec';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';
import { expectRefusedNamingField, expectTagFiltersRefused } from '../testing/refused-commands.js';
import { DEFAULT_TENANT_LIMITS } from './tenant-limits.js';

/**
 * Tags on origins and routes through the real admin API: validated by the commands, returned by reads,
 * filtered by `?tags=`, carried by the config document, kept by rollbacks, and `select_tags` documents
 * that manage one team's share of a tenant without touching the others'.
 */

let h: ControlPlaneHarness;

const head = async () => (await h.store.headPosition()).toString();

async function createTenant(subdomain: string): Promise<string> {
  const response = await h.request('POST', '/api/v1/tenants', { body: { name: subdomain, subdomain } });
  expect(response.status).toBe(201);
  return json(response)['id'] as string;
}

async function createOrigin(tenantId: string, name: string, tags?: string[]): Promise<string> {
  const response = await h.request('POST', '/api/v1/origins', {
    body: { tenant_id: tenantId, name, url: 'http://127.0.0.1:9/', ...(tags ? { tags } : {}) },
  });
  expect(response.status).toBe(201);
  return json(response)['id'] as string;
}

async function createRoute(tenantId: string, originId: string, path: string, tags?: string[]) {
  const response = await h.request('POST', '/api/v1/routes', {
    body: {
      tenant_id: tenantId,
      origin_id: originId,
      path_pattern: path,
      auth_mode: 'public',
      ...(tags ? { tags } : {}),
    },
  });
  expect(response.status).toBe(201);
  return { id: json(response)['id'] as string, position: response.headers.get('x-event-position') ?? '' };
}

async function listed(path: string): Promise<string[]> {
  await h.readModelsCaughtUp();
  const response = await h.request('GET', path);
  expect(response.status).toBe(200);
  return (json(response)['data'] as Array<{ id: string }>).map((item) => item.id);
}

async function liveConfig(tenantId: string) {
  const response = await h.request('GET', `/api/v1/tenants/${tenantId}/config`);
  expect(response.status).toBe(200);
  return json(response) as {
    origins: Array<{ id: string; name: string; tags: string[] }>;
    routes: Array<{ id: string; path_pattern: string; tags: string[]; priority: number }>;
  };
}

beforeAll(async () => {
  h = await startControlPlane({ withReadSide: true });
}, 60_000);

afterAll(async () => {
  await h?.close();
});

describe('tags on origins and routes', () => {
  it('refuses a tag with a separator, a space or too many characters, and too many tags, naming the field; nothing is appended', async () => {
    const tenantId = await createTenant('tags-rules');
    const originId = await createOrigin(tenantId, 'api');
    const routeId = (await createRoute(tenantId, originId, '/a/*')).id;
    await expectRefusedNamingField(h, [
      [
        'POST',
        '/api/v1/origins',
        { tenant_id: tenantId, name: 'b', url: 'http://127.0.0.1:9/', tags: ['team,a'] },
        'tags.0',
      ],
      [
        'POST',
        '/api/v1/origins',
        { tenant_id: tenantId, name: 'b', url: 'http://127.0.0.1:9/', tags: ['ok', 'a/b'] },
        'tags.1',
      ],
      ['PATCH', `/api/v1/origins/${originId}`, { tags: ['two words'] }, 'tags.0'],
      ['PATCH', `/api/v1/routes/${routeId}`, { tags: ['x'.repeat(65)] }, 'tags.0'],
      ['PATCH', `/api/v1/routes/${routeId}`, { tags: ['é'] }, 'tags.0'],
      ['PATCH', `/api/v1/routes/${routeId}`, { tags: [''] }, 'tags.0'],
      ['PATCH', `/api/v1/routes/${routeId}`, { tags: ['same', 'same'] }, 'tags'],
      ['PATCH', `/api/v1/routes/${routeId}`, { tags: Array.from({ length: 17 }, (_, i) => `t${i}`) }, 'tags'],
    ]);
  });

  it('keeps the tags a create or an update gives, and reads them back', async () => {
    const tenantId = await createTenant('tags-reads');
    const originId = await createOrigin(tenantId, 'api', ['team-a', 'prod']);
    const route = await createRoute(tenantId, originId, '/a/*', ['team-a']);
    await h.readModelsCaughtUp();
    expect(json(await h.request('GET', `/api/v1/origins/${originId}`))['tags']).toEqual(['team-a', 'prod']);
    const patched = await h.request('PATCH', `/api/v1/routes/${route.id}`, { body: { tags: ['team-b'] } });
    expect(patched.status).toBe(200);
    expect(json(patched)['tags']).toEqual(['team-b']);
    await h.readModelsCaughtUp();
    expect(json(await h.request('GET', `/api/v1/routes/${route.id}`))['tags']).toEqual(['team-b']);
    const untagged = await createRoute(tenantId, originId, '/b/*');
    await h.readModelsCaughtUp();
    expect(json(await h.request('GET', `/api/v1/routes/${untagged.id}`))['tags']).toEqual([]);
    const config = await liveConfig(tenantId);
    expect(config.origins[0]?.tags).toEqual(['team-a', 'prod']);
  });

  it('lists the origins and routes carrying every tag of a,b or any tag of a/b, and refuses a filter it cannot read', async () => {
    const tenantId = await createTenant('tags-lists');
    const originId = await createOrigin(tenantId, 'api', ['team-a']);
    const both = (await createRoute(tenantId, originId, '/both/*', ['team-a', 'prod'])).id;
    const teamA = (await createRoute(tenantId, originId, '/a/*', ['team-a'])).id;
    const teamB = (await createRoute(tenantId, originId, '/b/*', ['team-b'])).id;
    await createRoute(tenantId, originId, '/none/*');
    const routes = `/api/v1/routes?tenant_id=${tenantId}`;
    expect(await listed(`${routes}&tags=team-a`)).toEqual([both, teamA]);
    expect(await listed(`${routes}&tags=team-a,prod`)).toEqual([both]);
    expect(await listed(`${routes}&tags=prod/team-b`)).toEqual([both, teamB]);
    expect(await listed(`${routes}&tags=nobody`)).toEqual([]);
    expect(await listed(`/api/v1/origins?tenant_id=${tenantId}&tags=team-a`)).toEqual([originId]);
    expect(await listed(`/api/v1/origins?tenant_id=${tenantId}&tags=team-b`)).toEqual([]);

    await expectTagFiltersRefused(h, routes);
    const users = await h.request('GET', `/api/v1/users?tenant_id=${tenantId}&tags=team-a`);
    expect(users.status).toBe(400);
    expect(json(users)['error']).toMatchObject({ details: [expect.objectContaining({ field: 'tags' })] });
  });
});

describe('tags in the config document', () => {
  it('dumps them, and a rollback brings back the tags a resource had', async () => {
    const tenantId = await createTenant('tags-rollback');
    const originId = await createOrigin(tenantId, 'api', ['team-a']);
    const route = await createRoute(tenantId, originId, '/a/*', ['team-a', 'prod']);
    const removed = await createRoute(tenantId, originId, '/gone/*', ['team-a']);
    const dumped = json(await h.request('GET', `/api/v1/tenants/${tenantId}/config/document`))[
      'document'
    ] as {
      origins: Array<{ tags: string[] }>;
      routes: Array<{ path_pattern: string; tags: string[] }>;
    };
    expect(dumped.origins[0]?.tags).toEqual(['team-a']);
    expect(dumped.routes.map((entry) => [entry.path_pattern, entry.tags])).toEqual([
      ['/a/*', ['team-a', 'prod']],
      ['/gone/*', ['team-a']],
    ]);

    expect((await h.request('PATCH', `/api/v1/routes/${route.id}`, { body: { tags: [] } })).status).toBe(200);
    expect((await h.request('DELETE', `/api/v1/routes/${removed.id}`)).status).toBe(204);
    const rolledBack = await h.request('POST', `/api/v1/tenants/${tenantId}/config/rollback`, {
      body: { to_position: removed.position },
    });
    expect(rolledBack.status).toBe(200);
    const config = await liveConfig(tenantId);
    expect(config.routes.map((entry) => [entry.id, entry.tags])).toEqual([
      [route.id, ['team-a', 'prod']],
      [removed.id, ['team-a']],
    ]);
    await h.readModelsCaughtUp();
    expect(json(await h.request('GET', `/api/v1/routes/${removed.id}`))['tags']).toEqual(['team-a']);
  });

  it('with select_tags, plans and applies only the resources carrying those tags and tags the ones it creates', async () => {
    const tenantId = await createTenant('tags-select');
    const sharedOrigin = await createOrigin(tenantId, 'shared');
    const teamAOrigin = await createOrigin(tenantId, 'a-api', ['team-a']);
    const teamARoute = (await createRoute(tenantId, teamAOrigin, '/a/*', ['team-a'])).id;
    const teamAOld = (await createRoute(tenantId, teamAOrigin, '/a-old/*', ['team-a'])).id;
    const teamBRoute = (await createRoute(tenantId, sharedOrigin, '/b/*', ['team-b'])).id;
    const untagged = (await createRoute(tenantId, sharedOrigin, '/open/*')).id;
    const before = await liveConfig(tenantId);
    const othersBefore = before.routes.filter((entry) => entry.id === teamBRoute || entry.id === untagged);

    // Team A's file: its origin, its /a/* route changed, /a-old/* gone, a new route on the shared
    // origin; the tenant entry (another name) is not applied.
    const document = {
      select_tags: ['team-a'],
      tenant: { name: 'renamed by team a', subdomain: 'tags-select' },
      origins: [{ name: 'a-api', url: 'http://127.0.0.1:9/' }],
      routes: [
        { origin: 'a-api', path_pattern: '/a/*', auth_mode: 'public', priority: 5 },
        { origin_id: sharedOrigin, path_pattern: '/a-new/*', auth_mode: 'public', tags: ['canary'] },
      ],
    };
    const plan = await h.request('POST', `/api/v1/tenants/${tenantId}/config/plan`, { body: document });
    expect(plan.status).toBe(200);
    expect(
      (json(plan)['changes'] as Array<Record<string, unknown>>).map((c) => [
        c['resource'],
        c['change'],
        c['id'],
      ]),
    ).toEqual([
      ['route', 'changed', teamARoute],
      ['route', 'added', null],
      ['route', 'removed', teamAOld],
    ]);

    const applied = await h.request('POST', `/api/v1/tenants/${tenantId}/config/apply`, { body: document });
    expect(applied.status).toBe(200);
    const after = await liveConfig(tenantId);
    expect(after.routes.filter((entry) => entry.id === teamBRoute || entry.id === untagged)).toEqual(
      othersBefore,
    );
    expect(after.origins.map((entry) => entry.id).sort()).toEqual([sharedOrigin, teamAOrigin].sort());
    const created = after.routes.find((entry) => entry.path_pattern === '/a-new/*');
    expect(created?.tags).toEqual(['canary', 'team-a']);
    expect(after.routes.find((entry) => entry.id === teamARoute)).toMatchObject({
      priority: 5,
      tags: ['team-a'],
    });
    expect(after.routes.some((entry) => entry.id === teamAOld)).toBe(false);
    await h.readModelsCaughtUp();
    const tenant = json(await h.request('GET', `/api/v1/tenants/${tenantId}`));
    expect(tenant['name']).toBe('tags-select');

    // The share as a document (dump --select-tag): team A's resources only, planned back unchanged.
    const share = await h.request('GET', `/api/v1/tenants/${tenantId}/config/document?select_tags=team-a`);
    expect(share.status).toBe(200);
    const shareDocument = json(share)['document'] as {
      select_tags: string[];
      origins: Array<{ id: string }>;
      routes: Array<{ id: string }>;
    };
    expect(shareDocument.select_tags).toEqual(['team-a']);
    expect(shareDocument.origins.map((entry) => entry.id)).toEqual([teamAOrigin]);
    expect(shareDocument.routes.map((entry) => entry.id).sort()).toEqual(
      [teamARoute, created?.id ?? ''].sort(),
    );
    const replanned = await h.request('POST', `/api/v1/tenants/${tenantId}/config/plan`, {
      body: shareDocument,
    });
    expect(json(replanned)['changes']).toEqual([]);
    const badSelection = await h.request(
      'GET',
      `/api/v1/tenants/${tenantId}/config/document?select_tags=a/b`,
    );
    expect(badSelection.status).toBe(400);
    expect(json(badSelection)['error']).toMatchObject({
      details: [expect.objectContaining({ field: 'select_tags' })],
    });

    // Applied again, nothing changes; naming another team's route by id is refused, naming the field.
    const again = await h.request('POST', `/api/v1/tenants/${tenantId}/config/plan`, { body: document });
    expect(json(again)['changes']).toEqual([]);
    const start = await head();
    const trespass = await h.request('POST', `/api/v1/tenants/${tenantId}/config/apply`, {
      body: {
        ...document,
        routes: [
          ...document.routes,
          { id: teamBRoute, origin_id: sharedOrigin, path_pattern: '/b/*', auth_mode: 'public' },
        ],
      },
    });
    expect(trespass.status).toBe(400);
    expect(json(trespass)['error']).toMatchObject({
      details: [expect.objectContaining({ field: 'routes.2.id' })],
    });
    expect(await head()).toBe(start);
  });
  it("with select_tags, refuses to remove an origin another team's route still uses, naming it; nothing is appended", async () => {
    const tenantId = await createTenant('tags-select-origin');
    const teamAOrigin = await createOrigin(tenantId, 'a-api', ['team-a']);
    await createRoute(tenantId, teamAOrigin, '/a/*', ['team-a']);
    const teamBRoute = (await createRoute(tenantId, teamAOrigin, '/b/*', ['team-b'])).id;
    const start = await head();

    // Team A's file no longer lists its origin (nor its route), but team B's /b/* still proxies to it.
    const document = {
      select_tags: ['team-a'],
      tenant: { name: 'tags-select-origin', subdomain: 'tags-select-origin' },
      origins: [],
      routes: [],
    };
    for (const step of ['plan', 'apply']) {
      const refused = await h.request('POST', `/api/v1/tenants/${tenantId}/config/${step}`, {
        body: document,
      });
      expect(refused.status, `${step}: ${JSON.stringify(refused.body)}`).toBe(400);
      expect(json(refused)['error']).toMatchObject({
        code: 'validation_failed',
        details: [expect.objectContaining({ field: 'origins', issue: expect.stringContaining(teamBRoute) })],
      });
    }
    expect(await head()).toBe(start);
    const after = await liveConfig(tenantId);
    expect(after.origins.map((entry) => entry.id)).toEqual([teamAOrigin]);
  });
});

describe('select_tags and the rest of the tenant', () => {
  // A tenant of at most 3 routes: team B has 2 of them, team A's file manages the origin.
  let limited: ControlPlaneHarness;
  beforeAll(async () => {
    limited = await startControlPlane({ tenantLimits: { ...DEFAULT_TENANT_LIMITS, routes: 3 } });
  }, 60_000);
  afterAll(async () => {
    await limited?.close();
  });

  async function tenantWithTeamB(subdomain: string) {
    const created = await limited.request('POST', '/api/v1/tenants', {
      body: { name: subdomain, subdomain },
    });
    const tenantId = json(created)['id'] as string;
    const origin = await limited.request('POST', '/api/v1/origins', {
      body: { tenant_id: tenantId, name: 'api', url: 'http://127.0.0.1:9/', tags: ['team-a'] },
    });
    const teamBRoutes: string[] = [];
    for (const path of ['/b/*', '/b2/*']) {
      const route = await limited.request('POST', '/api/v1/routes', {
        body: {
          tenant_id: tenantId,
          origin_id: json(origin)['id'],
          path_pattern: path,
          auth_mode: 'public',
          tags: ['team-b'],
        },
      });
      expect(route.status).toBe(201);
      teamBRoutes.push(json(route)['id'] as string);
    }
    const shareOf = (routes: string[]) => ({
      select_tags: ['team-a'],
      tenant: { name: subdomain, subdomain },
      origins: [{ name: 'api', url: 'http://127.0.0.1:9/' }],
      routes: routes.map((path) => ({ origin: 'api', path_pattern: path, auth_mode: 'public' })),
    });
    return { tenantId, teamBRoutes, shareOf };
  }

  it("refuses a route matched as another team's, 409 duplicate_route naming it; nothing is appended", async () => {
    const { tenantId, teamBRoutes, shareOf } = await tenantWithTeamB('tags-select-duplicate');
    const start = (await limited.store.headPosition()).toString();
    const duplicate = await limited.request('POST', `/api/v1/tenants/${tenantId}/config/apply`, {
      body: shareOf(['/b/*']),
    });
    expect(duplicate.status, JSON.stringify(duplicate.body)).toBe(409);
    expect(json(duplicate)['error']).toMatchObject({
      code: 'duplicate_route',
      details: [
        expect.objectContaining({
          field: 'routes.0.path_pattern',
          issue: expect.stringContaining(teamBRoutes[0]!),
        }),
      ],
    });
    expect((await limited.store.headPosition()).toString()).toBe(start);
  });

  it("counts the other teams' routes against TENANT_MAX_ROUTES (422 limit_exceeded naming routes); nothing is appended", async () => {
    const { tenantId, shareOf } = await tenantWithTeamB('tags-select-limit');
    const start = (await limited.store.headPosition()).toString();
    const over = await limited.request('POST', `/api/v1/tenants/${tenantId}/config/apply`, {
      body: shareOf(['/a/*', '/a2/*']),
    });
    expect(over.status, JSON.stringify(over.body)).toBe(422);
    expect(json(over)['error']).toMatchObject({
      code: 'limit_exceeded',
      details: [expect.objectContaining({ field: 'routes' })],
    });
    expect((await limited.store.headPosition()).toString()).toBe(start);

    const fits = await limited.request('POST', `/api/v1/tenants/${tenantId}/config/apply`, {
      body: shareOf(['/a/*']),
    });
    expect(fits.status, JSON.stringify(fits.body)).toBe(200);
  });
});

describe('tags and the snapshot budget', () => {
  it('spends none of it: tags the gateways would not be sent never refuse a command', async () => {
    // A 32 KiB bus (75 %: 23,808 bytes after gzip): 40 routes fit it easily, their 40 × 16 random
    // 64-character tags (about 31 KB after gzip) would not.
    const small = await startControlPlane({
      snapshotBudget: {
        maxMessageBytes: 32 * 1024,
        maxDecodedBytes: MAX_DECODED_SNAPSHOT_BYTES,
        percent: 75,
        maxJsonBytes: MAX_DECODED_SNAPSHOT_BYTES,
      },
    });
    try {
      const tenant = await small.request('POST', '/api/v1/tenants', {
        body: { name: 'budget', subdomain: 'tags-budget' },
      });
      const tenantId = json(tenant)['id'] as string;
      const origin = await small.request('POST', '/api/v1/origins', {
        body: { tenant_id: tenantId, name: 'api', url: 'http://127.0.0.1:9/' },
      });
      const originId = json(origin)['id'] as string;
      for (let index = 0; index < 40; index++) {
        const tags = Array.from({ length: 16 }, () => randomBytes(48).toString('base64url'));
        const route = await small.request('POST', '/api/v1/routes', {
          body: {
            tenant_id: tenantId,
            origin_id: originId,
            path_pattern: `/r${index}/*`,
            auth_mode: 'public',
            tags,
          },
        });
        expect(route.status, JSON.stringify(route.body)).toBe(201);
      }
    } finally {
      await small.close();
    }
  }, 120_000);
});
