import { expect } from 'vitest';
import { type ApiResponse, type ControlPlaneHarness, json } from './control-plane-harness.js';

/** A tenant with one origin and one route, and each change of the route's methods: where it is, what it set. */
export interface RouteHistory {
  id: string;
  subdomain: string;
  originId: string;
  routeId: string;
  changes: Array<{ position: string; methods: string[] }>;
}

const VERBS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];

/**
 * A tenant whose route changed `changes` times (its methods, in turn): a fold of its config reads more
 * than that many events. The reads find the tenant, and its events, through the read models: these hold
 * all of it when this returns, so what a fold takes from the log is the tenant's own events, not every
 * tenant's the read models lag behind.
 */
export async function tenantWithRouteHistory(
  h: ControlPlaneHarness,
  subdomain: string,
  changes = 30,
): Promise<RouteHistory> {
  const created = await h.request('POST', '/api/v1/tenants', { body: { name: subdomain, subdomain } });
  const id = json(created)['id'] as string;
  const origin = await h.request('POST', '/api/v1/origins', {
    body: { tenant_id: id, name: 'api', url: 'http://127.0.0.1:9/' },
  });
  const originId = json(origin)['id'] as string;
  const route = await h.request('POST', '/api/v1/routes', {
    body: {
      tenant_id: id,
      origin_id: originId,
      path_pattern: '/users/*',
      methods: ['GET'],
      auth_mode: 'public',
    },
  });
  const routeId = json(route)['id'] as string;
  const history: RouteHistory['changes'] = [];
  for (let n = 0; n < changes; n++) {
    const methods = [VERBS[n % VERBS.length] as string];
    const patched = await h.request('PATCH', `/api/v1/routes/${routeId}`, { body: { methods } });
    expect(patched.status).toBe(200);
    history.push({ position: patched.headers.get('x-event-position') ?? '', methods });
  }
  await h.readModelsCaughtUp();
  return { id, subdomain, originId, routeId, changes: history };
}

/** `send`, sent again after each 503 (at most 10 times), and the 503s it got. */
export async function resentAfter503(send: () => Promise<ApiResponse>) {
  const refusals: ApiResponse[] = [];
  let response = await send();
  while (response.status === 503 && refusals.length < 10) {
    refusals.push(response);
    response = await send();
  }
  return { response, refusals };
}
