import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * `settings.authorized_parties` (the origins of the tenant's own apps, the only azp its jwt routes take
 * on a Clerk session token) through the admin API: kept as sent when every entry is an origin as
 * browsers send it; anything else is a 400 naming the entry and changes nothing. Explain decides as
 * the gateways do; the config document, its diff and its history carry the list.
 */
const OWN_APP = 'https://app.beta.example';
const OTHER_TENANTS_APP = 'https://app.alpha.example';

let cp: ControlPlaneHarness;
let tenantId = '';

const position = (response: { headers: Headers }) => response.headers.get('x-event-position') ?? '';
const eventCount = async () => (await cp.allEvents()).length;
const patch = (authorizedParties: unknown) =>
  cp.request('PATCH', `/api/v1/tenants/${tenantId}`, {
    body: { settings: { authorized_parties: authorizedParties } },
  });

beforeAll(async () => {
  cp = await startControlPlane({ withReadSide: true });
  const tenant = await cp.request('POST', '/api/v1/tenants', {
    body: { name: 'Beta', subdomain: 'azp-beta' },
  });
  expect(tenant.status, JSON.stringify(tenant.body)).toBe(201);
  tenantId = json(tenant)['id'] as string;
}, 60_000);
afterAll(async () => {
  await cp?.close();
});

describe('settings.authorized_parties', () => {
  it.each([
    ['with a trailing slash', ['https://app.beta.example/'], 'settings.authorized_parties.0'],
    ['with a path', [OWN_APP, 'https://app.beta.example/login'], 'settings.authorized_parties.1'],
    ['in upper case', ['https://App.Beta.example'], 'settings.authorized_parties.0'],
    ['with its default port', ['https://app.beta.example:443'], 'settings.authorized_parties.0'],
    ['without a scheme', ['app.beta.example'], 'settings.authorized_parties.0'],
    ['as a wildcard', ['*'], 'settings.authorized_parties.0'],
    ['as a comma-separated string', `${OWN_APP},${OTHER_TENANTS_APP}`, 'settings.authorized_parties'],
    ['empty', [], 'settings.authorized_parties'],
    ['not a string', [42], 'settings.authorized_parties.0'],
    ['too long', [`https://${'a'.repeat(400)}.example`], 'settings.authorized_parties.0'],
    [
      'of too many apps',
      Array.from({ length: 51 }, (_, i) => `https://app${i}.example`),
      'settings.authorized_parties',
    ],
  ])('refuses a list %s with a 400 naming the field, changing nothing', async (_case, parties, field) => {
    const before = await eventCount();
    const bad = await patch(parties);
    expect(bad.status, JSON.stringify(bad.body)).toBe(400);
    const error = (bad.body as { error: { code: string; details: Array<{ field: string }> } }).error;
    expect(error.code).toBe('validation_failed');
    expect(error.details.map((detail) => detail.field)).toContain(field);
    expect(await eventCount()).toBe(before);
  });

  it('keeps a list of origins; explain refuses, as the gateways do, a token minted for another app', async () => {
    const origin = await cp.request('POST', '/api/v1/origins', {
      body: { tenant_id: tenantId, name: 'app-api', url: 'http://127.0.0.1:9/' },
    });
    const route = await cp.request('POST', '/api/v1/routes', {
      body: {
        tenant_id: tenantId,
        origin_id: json(origin)['id'],
        path_pattern: '/me/*',
        auth_mode: 'jwt_required',
        allow_any_authenticated_user: true,
      },
    });
    expect(route.status, JSON.stringify(route.body)).toBe(201);
    const withoutList = position(route);
    const set = await patch([OWN_APP, 'http://localhost:5173']);
    expect(set.status, JSON.stringify(set.body)).toBe(200);
    expect(json(set)['settings']).toMatchObject({ authorized_parties: [OWN_APP, 'http://localhost:5173'] });

    const decisionFor = async (azp: string | undefined, at: string) => {
      const token = await cp.token({ userId: 'user_visitor', ...(azp === undefined ? {} : { azp }) });
      const answer = await cp.request('POST', `/api/v1/tenants/${tenantId}/explain`, {
        body: {
          method: 'GET',
          host: 'azp-beta.vantageedge.dev',
          path: '/me/x',
          headers: { authorization: `Bearer ${token}` },
          at_position: at,
        },
      });
      expect(answer.status, JSON.stringify(answer.body)).toBe(200);
      return json(answer)['decision'] as { stage: string; status: number | null; code: string | null };
    };
    const withList = position(set);
    expect(await decisionFor(OTHER_TENANTS_APP, withoutList)).toMatchObject({ stage: 'origin' });
    expect(await decisionFor(OTHER_TENANTS_APP, withList)).toMatchObject({
      stage: 'auth',
      status: 401,
      code: 'invalid_token',
    });
    expect(await decisionFor(undefined, withList)).toMatchObject({ stage: 'auth', status: 401 });
    expect(await decisionFor(OWN_APP, withList)).toMatchObject({ stage: 'origin', status: null });

    const headers = { 'x-min-position': withList };
    const document = await cp.request('GET', `/api/v1/tenants/${tenantId}/config/document`, { headers });
    expect(json(document)['document']).toMatchObject({
      tenant: { settings: { authorized_parties: [OWN_APP, 'http://localhost:5173'] } },
    });
    const diff = await cp.request(
      'GET',
      `/api/v1/tenants/${tenantId}/config/diff?from=${withoutList}&to=${withList}`,
      { headers },
    );
    expect(diff.status, JSON.stringify(diff.body)).toBe(200);
    expect(json(diff)['changes']).toEqual([
      expect.objectContaining({
        resource: 'tenant',
        fields: [
          { field: 'settings.authorized_parties', from: null, to: [OWN_APP, 'http://localhost:5173'] },
        ],
      }),
    ]);
  });

  it('takes the list back to the gateways’ own with null', async () => {
    const cleared = await patch(null);
    expect(cleared.status, JSON.stringify(cleared.body)).toBe(200);
    expect(json(cleared)['settings']).toMatchObject({ authorized_parties: null });
  });
});
