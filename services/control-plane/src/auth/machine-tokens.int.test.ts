import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { type ControlPlaneHarness, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * Regression: @clerk/express's middleware accepts every Clerk token type and Clerk's browser handshake,
 * so a bearer value shaped like a Clerk machine token (`ak_…`, `mt_…`, `oat_…`), or a request with no
 * bearer token and `?__clerk_handshake_nonce=…`, was sent to Clerk's Backend API — with CLERK_SECRET_KEY,
 * or a placeholder — before it was refused: any unauthenticated client made the control plane call out
 * once per request, ahead of every rate limit, although it verifies session tokens networklessly.
 */
let cp: ControlPlaneHarness;
beforeAll(async () => {
  cp = await startControlPlane();
});
afterAll(async () => {
  await cp?.close();
});
afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
});

/** The URLs the control plane fetched that are not its own (the test's requests to it pass through). */
function outboundCalls(): string[] {
  const realFetch = globalThis.fetch;
  const outbound: string[] = [];
  vi.spyOn(globalThis, 'fetch').mockImplementation((input, init) => {
    const url = input instanceof Request ? input.url : String(input);
    if (url.startsWith(cp.baseUrl)) return realFetch(input, init);
    outbound.push(url);
    return Promise.reject(new Error('no network in this test'));
  });
  return outbound;
}

const createTenant = { name: 'Machine', subdomain: 'machine-token' };

describe('credentials only Clerk’s Backend API could check', () => {
  it.each([
    ['Bearer ak_0123456789abcdef'],
    ['Bearer mt_0123456789abcdef'],
    ['Bearer oat_0123456789abcdef'],
    ['ak_0123456789abcdef'],
  ])('Authorization: %s is refused 401 without a call to Clerk', async (authorization) => {
    const outbound = outboundCalls();
    const answer = await cp.request('POST', '/api/v1/tenants', {
      token: null,
      headers: { authorization },
      body: createTenant,
    });
    expect(answer.status).toBe(401);
    expect((answer.body as { error: { code: string } }).error.code).toBe('unauthenticated');
    expect(outbound).toEqual([]);
  });

  it.each([[undefined], ['Basic dXNlcjpwYXNz']])(
    'a handshake nonce in the query (Authorization: %s) is refused 401 without a call to Clerk',
    async (authorization) => {
      // Clerk's own client takes the secret key from the environment (set where the gateways fetch
      // Clerk's JWKS with it).
      vi.stubEnv('CLERK_SECRET_KEY', 'sk_live_0123456789abcdef0123456789abcdef');
      const outbound = outboundCalls();
      const answer = await cp.request('POST', '/api/v1/tenants?__clerk_handshake_nonce=0123456789', {
        token: null,
        headers: authorization === undefined ? {} : { authorization },
        body: createTenant,
      });
      expect(answer.status).toBe(401);
      expect(outbound).toEqual([]);
    },
  );
});
