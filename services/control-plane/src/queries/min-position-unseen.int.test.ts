import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ApiResponse,
  type ControlPlaneHarness,
  json,
  startControlPlane,
} from '../testing/control-plane-harness.js';

/**
 * With X-Min-Position ahead of the read models, a resource the read models hold for a tenant the caller
 * cannot see is answered as an id no tenant has (it may be the caller's own fresh write): both wait for
 * the projector, so whether a request waits never tells an admin of one tenant which ids another has.
 */

let cp: ControlPlaneHarness;
let attacker: string;
const hidden = { tenant: '', route: '', origin: '', key: '', user: '' };
let position = '';

beforeAll(async () => {
  // The wait runs out soon: the projector is stopped while the requests are made.
  cp = await startControlPlane({ withReadSide: true, minPositionWaitMs: 300 });
  const post = async (path: string, body: unknown) => {
    const response = await cp.request('POST', path, { body });
    expect(response.status, JSON.stringify(response.body)).toBe(201);
    return json(response)['id'] as string;
  };
  const tenantA = await post('/api/v1/tenants', {
    name: 'A',
    subdomain: 'rw-unseen-a',
    clerk_org_id: 'org_rw_a',
  });
  hidden.tenant = await post('/api/v1/tenants', { name: 'B', subdomain: 'rw-unseen-b' });
  hidden.origin = await post('/api/v1/origins', {
    tenant_id: hidden.tenant,
    name: 'b',
    url: 'https://b.example.com',
  });
  hidden.route = await post('/api/v1/routes', {
    tenant_id: hidden.tenant,
    origin_id: hidden.origin,
    path_pattern: '/b/*',
    auth_mode: 'public',
  });
  hidden.key = await post('/api/v1/api-keys', { tenant_id: hidden.tenant, name: 'b-key' });
  hidden.user = await post('/api/v1/users', {
    tenant_id: hidden.tenant,
    clerk_user_id: 'user_rw_b_owner',
    email: 'owner@b.example.com',
    role: 'owner',
  });
  await cp.readModelsCaughtUp();
  attacker = await cp.token({ userId: 'user_rw_a_admin', orgId: 'org_rw_a', orgRole: 'org:admin' });
  // The attacker's own write, which the read models do not hold: its position is ahead of them.
  await cp.projector?.stop();
  const written = await cp.request('POST', '/api/v1/origins', {
    token: attacker,
    body: { tenant_id: tenantA, name: 'a', url: 'https://a.example.com' },
  });
  expect(written.status, JSON.stringify(written.body)).toBe(201);
  position = written.headers.get('x-event-position') ?? '';
});
afterAll(async () => {
  await cp?.close();
});

const answer = (response: ApiResponse) => ({ status: response.status, body: response.body });

describe('X-Min-Position ahead of the read models', () => {
  it("another tenant's resources answer as ids no tenant has", async () => {
    const read = (path: string) =>
      cp.request('GET', path, { token: attacker, headers: { 'x-min-position': position } });
    const paths: Array<[string, (id: string) => string]> = [
      [hidden.tenant, (id) => `/api/v1/tenants/${id}`],
      [hidden.origin, (id) => `/api/v1/origins/${id}`],
      [hidden.route, (id) => `/api/v1/routes/${id}`],
      [hidden.key, (id) => `/api/v1/api-keys/${id}`],
      [hidden.user, (id) => `/api/v1/users/${id}`],
    ];
    for (const [id, path] of paths) {
      const unknown = await read(path(randomUUID()));
      expect(unknown.status, JSON.stringify(unknown.body)).toBe(503);
      expect(answer(await read(path(id))), path('<hidden>')).toEqual(answer(unknown));
    }
  });
});
