import { streamName } from '@vantageedge/shared/domain/events';
import type { EventStore } from '@vantageedge/shared/event-store/port';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * A command's cost does not grow with its streams' history. Every command used to read and fold the
 * whole stream of the resource it changes and its tenant's stream (authorization, the tenant is live,
 * a route's hosts), on the event loop every tenant's admin requests share: a tenant admin who updated
 * one route or the tenant's name 20,000 times (a little over half an hour at the default command rate)
 * made each later command of its own cost ~1 s of that loop, and ten of them sent at once held every
 * other tenant's requests for seconds. Now a stream is folded whole once per process and then on from
 * the revision kept.
 */

const HISTORY = 2_000;

/** The events each stream's reads returned. */
function countingReads(eventsRead: Map<string, number>) {
  return (store: EventStore): EventStore =>
    new Proxy(store, {
      get(target, property, receiver) {
        if (property !== 'readStream') return Reflect.get(target, property, receiver);
        return async (stream: string, options?: Parameters<EventStore['readStream']>[1]) => {
          const events = await target.readStream(stream, options);
          eventsRead.set(stream, (eventsRead.get(stream) ?? 0) + events.length);
          return events;
        };
      },
    });
}

/** Appends `count` copies of the stream's last event (the shape the API wrote), as an admin repeating it would. */
async function lengthen(store: EventStore, stream: string, count: number): Promise<void> {
  const last = (await store.readStream(stream)).at(-1);
  if (last === undefined) throw new Error(`${stream} is empty`);
  let revision = last.revision;
  for (let appended = 0; appended < count; appended += 500) {
    const events = Array.from({ length: Math.min(500, count - appended) }, () => ({
      type: last.type,
      data: last.data,
      metadata: last.metadata,
    }));
    revision = (await store.appendToStream(stream, events, { expectedRevision: revision }))
      .nextExpectedRevision;
  }
}

describe('commands on long streams', () => {
  const eventsRead = new Map<string, number>();
  let cp: ControlPlaneHarness;
  const ids = { a: '', b: '', routeA: '', routeB: '', viewerA: '' };
  const tokens = { ownerA: '', memberAdminA: '', adminB: '' };

  async function tenantWithRoute(name: string): Promise<[string, string]> {
    const tenant = await cp.request('POST', '/api/v1/tenants', {
      body: { name, subdomain: name, clerk_org_id: `org_${name.replaceAll('-', '_')}` },
    });
    expect(tenant.status, JSON.stringify(tenant.body)).toBe(201);
    const tenantId = json(tenant)['id'] as string;
    const origin = await cp.request('POST', '/api/v1/origins', {
      body: { tenant_id: tenantId, name: 'api', url: `https://${name}.example.com` },
    });
    const route = await cp.request('POST', '/api/v1/routes', {
      body: {
        tenant_id: tenantId,
        origin_id: json(origin)['id'],
        path_pattern: '/v1/*',
        auth_mode: 'public',
      },
    });
    expect(route.status, JSON.stringify(route.body)).toBe(201);
    return [tenantId, json(route)['id'] as string];
  }

  const renameRoute = (token: string, routeId: string, n: number) =>
    cp.request('PATCH', `/api/v1/routes/${routeId}`, { token, body: { path_pattern: `/v${n}/*` } });
  const renameTenant = (token: string, tenantId: string, n: number) =>
    cp.request('PATCH', `/api/v1/tenants/${tenantId}`, { token, body: { name: `renamed-${n}` } });

  beforeAll(async () => {
    cp = await startControlPlane({
      withReadSide: true,
      wrapStore: countingReads(eventsRead),
      adminRateLimits: { limits: { tenantCommands: null, userRequests: null, tenantEventBytes: null } },
    });
    [ids.a, ids.routeA] = await tenantWithRoute('long-history-a');
    [ids.b, ids.routeB] = await tenantWithRoute('long-history-b');
    tokens.ownerA = await cp.token({ userId: 'user_long_a', orgId: 'org_long_history_a', orgRole: 'admin' });
    tokens.adminB = await cp.token({ userId: 'user_long_b', orgId: 'org_long_history_b', orgRole: 'admin' });
    // An admin by the tenant's member list (not by the Clerk org): authorized from the tenant stream.
    const member = await cp.request('POST', '/api/v1/users', {
      token: tokens.ownerA,
      body: { tenant_id: ids.a, clerk_user_id: 'user_long_member', email: 'm@example.com', role: 'admin' },
    });
    expect(member.status, JSON.stringify(member.body)).toBe(201);
    tokens.memberAdminA = await cp.token({ userId: 'user_long_member' });
    const viewer = await cp.request('POST', '/api/v1/users', {
      token: tokens.ownerA,
      body: { tenant_id: ids.a, clerk_user_id: 'user_long_viewer', email: 'v@example.com', role: 'viewer' },
    });
    expect(viewer.status, JSON.stringify(viewer.body)).toBe(201);
    ids.viewerA = json(viewer)['id'] as string;
    // The API writes the events the history is made of.
    expect((await renameRoute(tokens.ownerA, ids.routeA, 1)).status).toBe(200);
    expect((await renameTenant(tokens.ownerA, ids.a, 1)).status).toBe(200);
    await lengthen(cp.store, streamName.route(ids.routeA), HISTORY);
    await lengthen(cp.store, streamName.tenant(ids.a), HISTORY);
  }, 120_000);
  afterAll(async () => {
    await cp?.close();
  });

  it('after a first command, the next ones of the tenant read only what was appended since', async () => {
    const routeStream = streamName.route(ids.routeA);
    const tenantStream = streamName.tenant(ids.a);
    expect((await renameRoute(tokens.memberAdminA, ids.routeA, 2)).status).toBe(200);
    expect((await renameTenant(tokens.memberAdminA, ids.a, 2)).status).toBe(200);
    eventsRead.clear();

    let lastRoutePosition = '';
    for (let n = 3; n < 8; n++) {
      const route = await renameRoute(tokens.memberAdminA, ids.routeA, n);
      expect(route.status, JSON.stringify(route.body)).toBe(200);
      lastRoutePosition = route.headers.get('x-event-position') ?? '';
      const tenant = await renameTenant(tokens.memberAdminA, ids.a, n);
      expect(tenant.status, JSON.stringify(tenant.body)).toBe(200);
      const user = await cp.request('PATCH', `/api/v1/users/${ids.viewerA}`, {
        token: tokens.memberAdminA,
        body: { role: n % 2 === 0 ? 'viewer' : 'member' },
      });
      expect(user.status, JSON.stringify(user.body)).toBe(200);
    }
    // Five commands of each kind on streams of over 2,000 events: fewer events read than one of them holds.
    expect.soft(eventsRead.get(routeStream) ?? 0, routeStream).toBeLessThan(HISTORY);
    expect.soft(eventsRead.get(tenantStream) ?? 0, tenantStream).toBeLessThan(HISTORY);

    // What was folded is current: the API answers with the latest state, and tenant B is unaffected.
    // The read side is eventually consistent: read at least at the last rename's position.
    const route = await cp.request('GET', `/api/v1/routes/${ids.routeA}`, {
      token: tokens.ownerA,
      headers: { 'x-min-position': lastRoutePosition },
    });
    expect(route.status, JSON.stringify(route.body)).toBe(200);
    expect(json(route)['path_pattern']).toBe('/v7/*');
    expect((await renameRoute(tokens.adminB, ids.routeB, 9)).status).toBe(200);
    expect((await renameRoute(tokens.adminB, ids.routeA, 9)).status).toBe(404);
  });

  it('a change appended by another writer (another replica) is seen by the next command', async () => {
    const routeStream = streamName.route(ids.routeA);
    const current = (await cp.store.readStream(routeStream)).at(-1)!;
    // Another control-plane replica sets the route's path; this process's next If-Match must see it.
    await cp.store.appendToStream(
      routeStream,
      [
        {
          type: current.type,
          data: { ...(current.data as object), path_pattern: '/elsewhere/*' },
          metadata: current.metadata,
        },
      ],
      { expectedRevision: current.revision },
    );
    const stale = await cp.request('PATCH', `/api/v1/routes/${ids.routeA}`, {
      token: tokens.memberAdminA,
      headers: { 'if-match': `"${current.revision}"` },
      body: { path_pattern: '/v10/*' },
    });
    expect(stale.status, JSON.stringify(stale.body)).toBe(412);
    const noop = await cp.request('PATCH', `/api/v1/routes/${ids.routeA}`, {
      token: tokens.memberAdminA,
      body: { path_pattern: '/elsewhere/*' },
    });
    expect(noop.status).toBe(200);
    expect(noop.headers.get('etag')).toBe(`"${current.revision + 1n}"`);
  });
});
