import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ApiResponse,
  type ControlPlaneHarness,
  json,
  startControlPlane,
} from '../testing/control-plane-harness.js';

/**
 * The part of the pool tenant admins share together (CONTROL_PLANE_REQUESTS_IN_FLIGHT) and an
 * organisation's part count requests that may hold a connection: not ones whose body has not arrived.
 * Any signed-in user, a member of no tenant, can announce a body and send none for the whole request
 * timeout; a few such users must not leave every tenant's admins refused.
 */

const USER_IN_FLIGHT = 1;
const REQUESTS_IN_FLIGHT = 4;
const STRANGERS = ['user_unsent_1', 'user_unsent_2', 'user_unsent_3', 'user_unsent_4'];

let cp: ControlPlaneHarness;
let tenantId: string;
let ownerToken: string;
const sockets: Socket[] = [];

const error = (response: ApiResponse) =>
  json(response)['error'] as { code: string; details: Array<{ field: string; issue: string }> };

/** A POST whose headers announce a body that never comes; `answered` once refused. */
function withholdBody(token: string): { answered: boolean } {
  const state = { answered: false };
  const url = new URL(cp.baseUrl);
  const socket = connect(Number(url.port), url.hostname);
  socket.on('error', () => {});
  socket.on('data', () => {
    state.answered = true;
  });
  socket.write(
    'POST /api/v1/tenants HTTP/1.1\r\n' +
      `Host: ${url.host}\r\n` +
      `Authorization: Bearer ${token}\r\n` +
      'Content-Type: application/json\r\n' +
      'Content-Length: 100\r\n\r\n{',
  );
  sockets.push(socket);
  return state;
}

beforeAll(async () => {
  cp = await startControlPlane({
    withReadSide: true,
    userRequestsInFlight: USER_IN_FLIGHT,
    orgRequestsInFlight: USER_IN_FLIGHT,
    requestsInFlight: REQUESTS_IN_FLIGHT,
  });
  const created = await cp.request('POST', '/api/v1/tenants', {
    body: { name: 'unsent-bodies', subdomain: `unsent-bodies-${Date.now()}` },
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  tenantId = String(json(created)['id']);
  const added = await cp.request('POST', '/api/v1/users', {
    body: {
      tenant_id: tenantId,
      clerk_user_id: 'user_unsent_owner',
      email: 'owner@example.com',
      role: 'owner',
    },
  });
  expect(added.status, JSON.stringify(added.body)).toBe(201);
  ownerToken = await cp.token({ userId: 'user_unsent_owner' });
  // The owner's membership reaches the read models.
  while (
    (await cp.request('GET', `/api/v1/routes?tenant_id=${tenantId}`, { token: ownerToken })).status !== 200
  ) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}, 60_000);

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await cp?.close();
});

describe('requests whose body has not arrived', () => {
  it('regression: users who send no body do not take the places tenant admins share', async () => {
    for (const userId of STRANGERS) {
      const token = await cp.token({ userId });
      let withheld = withholdBody(token);
      // Its withheld request is running: a second one is over the caller's own limit. (One that came
      // after the probe was refused: withhold another.)
      await expect
        .poll(
          async () => {
            if (withheld.answered) {
              withheld = withholdBody(token);
              return 'withheld again';
            }
            const probe = await cp.request('GET', '/api/v1/tenants', { token });
            return probe.status === 429 ? error(probe).details[0]?.field : probe.status;
          },
          { timeout: 10_000 },
        )
        .toBe('user_requests_in_flight');
    }

    const owner = await cp.request('GET', `/api/v1/routes?tenant_id=${tenantId}`, { token: ownerToken });
    expect(owner.status, JSON.stringify(owner.body)).toBe(200);
  }, 60_000);
});
