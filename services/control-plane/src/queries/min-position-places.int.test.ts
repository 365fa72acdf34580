import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readersShareOf } from '../admin-rate-limit/in-flight-counter.js';
import {
  type ApiResponse,
  type ControlPlaneHarness,
  json,
  startControlPlane,
} from '../testing/control-plane-harness.js';

/**
 * X-Min-Position makes a request wait (up to 2 s) for the read models. The wait is part of the
 * request's work on the tenant: it runs only once the caller's token is verified and its access to the
 * tenant granted, and it holds one of the tenant's places (CONTROL_PLANE_TENANT_REQUESTS_IN_FLIGHT) as
 * the endpoint's reads do (the members here read only: their share of them). Anyone else is answered at
 * once and holds none of them.
 */

const TENANT_IN_FLIGHT = 4;
const READERS_IN_FLIGHT = readersShareOf(TENANT_IN_FLIGHT);

let cp: ControlPlaneHarness;
let tenantA = '';
let membersOfA: string[] = [];
let adminOfB = '';
let stranger = '';
/** The position of a write the stopped projector has not reached. */
let unprojected = '';

async function tenant(name: string, org: string): Promise<string> {
  const created = await cp.request('POST', '/api/v1/tenants', {
    body: { name, subdomain: `${name}-${Date.now()}`, clerk_org_id: org },
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  return String(json(created)['id']);
}

const errorCode = (response: ApiResponse) => (json(response)['error'] as { code: string }).code;

beforeAll(async () => {
  // The app's wait: these tests see it run out while the projector is stopped.
  cp = await startControlPlane({
    withReadSide: true,
    tenantRequestsInFlight: TENANT_IN_FLIGHT,
    minPositionWaitMs: 2_000,
  });
  tenantA = await tenant('rywplaces-a', 'org_rywplaces_a');
  const tenantB = await tenant('rywplaces-b', 'org_rywplaces_b');
  membersOfA = await Promise.all(
    Array.from({ length: READERS_IN_FLIGHT + 1 }, (_, n) => `user_rywplaces_a${n + 1}`).map((userId) =>
      cp.token({ userId, orgId: 'org_rywplaces_a', orgRole: 'org:member' }),
    ),
  );
  adminOfB = await cp.token({ userId: 'user_rywplaces_b', orgId: 'org_rywplaces_b', orgRole: 'org:admin' });
  stranger = await cp.token({ userId: 'user_rywplaces_nobody' });
  for (const [token, tenantId] of [
    [membersOfA[0] as string, tenantA],
    [adminOfB, tenantB],
  ] as const) {
    // The read models show the org's tenant once the projector has caught up.
    while ((await cp.request('GET', `/api/v1/routes?tenant_id=${tenantId}`, { token })).status !== 200) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  await cp.projector?.stop();
  const renamed = await cp.request('PATCH', `/api/v1/tenants/${tenantA}`, { body: { name: 'renamed' } });
  expect(renamed.status, JSON.stringify(renamed.body)).toBe(200);
  unprojected = renamed.headers.get('x-event-position') ?? '';
}, 60_000);

afterAll(async () => {
  await cp?.close();
});

const waitFor = (token: string | null) =>
  cp.request('GET', `/api/v1/routes?tenant_id=${tenantA}`, {
    token,
    headers: { 'x-min-position': unprojected },
  });

describe('read-your-writes waits on a tenant', () => {
  it('regression: the members’ waits hold the tenant’s places — past them a wait is refused 429 at once', async () => {
    const answers = await Promise.all(membersOfA.map((token) => waitFor(token)));
    const codes = answers.map(errorCode).sort();
    expect(codes).toEqual(['admin_rate_limited', ...Array(READERS_IN_FLIGHT).fill('not_caught_up')]);
    const refused = answers.find((answer) => answer.status === 429) as ApiResponse;
    expect(json(refused)['error']).toMatchObject({
      details: [{ field: 'tenant_requests_in_flight' }],
    });
  });

  it('anonymous, forged, foreign and stranger requests are answered before the members’ waits end, and take none of their places', async () => {
    let waitsEnded = false;
    const waits = Promise.all(membersOfA.slice(0, READERS_IN_FLIGHT).map((token) => waitFor(token))).finally(
      () => {
        waitsEnded = true;
      },
    );
    const forged = `${(membersOfA[0] as string).slice(0, -4)}AAAA`;
    const others = await Promise.all([waitFor(null), waitFor(forged), waitFor(adminOfB), waitFor(stranger)]);
    expect(waitsEnded, 'the others were held for the whole wait').toBe(false);
    expect(others.map((answer) => [answer.status, errorCode(answer)])).toEqual([
      [401, 'unauthenticated'],
      [401, 'unauthenticated'],
      [404, 'not_found'],
      [404, 'not_found'],
    ]);
    for (const waited of await waits) expect(errorCode(waited)).toBe('not_caught_up');
  });
});
