import { createClerkTestKeys, signClerkToken } from '@vantageedge/shared/testing/clerk-tokens';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type ApiResponse,
  type ControlPlaneHarness,
  json,
  PLATFORM_ADMIN,
  startControlPlane,
} from '../testing/control-plane-harness.js';

/**
 * Regression: requests whose credential failed authentication had no bound per client address. Each
 * costs a signature check (and, with CLERK_SECRET_KEY, the signing-key gate), and one address could send
 * them for ever. Past CONTROL_PLANE_AUTH_FAILURES_PER_MINUTE the address gets 429 before any verification.
 */
let cp: ControlPlaneHarness | undefined;
afterEach(async () => {
  await cp?.close();
  cp = undefined;
});

/** A well-formed session token signed by a key that is not the instance's: its signature check fails. */
async function forgedToken(): Promise<string> {
  return signClerkToken(await createClerkTestKeys(), { userId: PLATFORM_ADMIN });
}

async function inBatches(count: number, send: () => Promise<ApiResponse>): Promise<ApiResponse[]> {
  const answers: ApiResponse[] = [];
  for (let sent = 0; sent < count; sent += 50)
    answers.push(...(await Promise.all(Array.from({ length: Math.min(50, count - sent) }, send))));
  return answers;
}

describe('rejected credentials per client address', () => {
  it('refuses an address past the default bound with 429 too_many_auth_failures before verifying', async () => {
    cp = await startControlPlane();
    const harness = cp;
    const forged = await forgedToken();
    const answers = await inBatches(500, () =>
      harness.request('POST', '/api/v1/tenants', { body: {}, token: forged }),
    );
    const statuses = answers.map((answer) => answer.status);
    expect(statuses.filter((status) => status === 401)).toHaveLength(60);
    expect(statuses.filter((status) => status === 429)).toHaveLength(440);
    const refused = answers.find((answer) => answer.status === 429)!;
    expect(json(refused)['error']).toMatchObject({
      code: 'too_many_auth_failures',
      details: [{ field: 'authorization' }],
    });
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(Number(refused.headers.get('retry-after'))).toBeLessThanOrEqual(60);
    // Health and readiness stay unlimited.
    expect((await harness.request('GET', '/healthz', { token: null })).status).toBe(200);
    expect((await harness.request('GET', '/readyz', { token: null })).status).toBe(200);
  });

  it('refuses even a valid token from the limited address until its minute ends, not other addresses', async () => {
    let now = 1_000_000;
    cp = await startControlPlane({
      authFailures: { perMinute: 5, trustedProxies: ['127.0.0.1/32'], now: () => now },
    });
    const forged = await forgedToken();
    const from = (client: string) => ({ 'x-forwarded-for': client });
    for (let i = 0; i < 5; i++) {
      const answer = await cp.request('POST', '/api/v1/tenants', {
        body: {},
        token: forged,
        headers: from('203.0.113.7'),
      });
      expect(answer.status).toBe(401);
    }
    const limited = await cp.request('POST', '/api/v1/tenants', {
      body: {},
      token: forged,
      headers: from('203.0.113.7'),
    });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('60');
    const validFromLimited = await cp.request('POST', '/api/v1/tenants', {
      body: {},
      headers: from('203.0.113.7'),
    });
    expect(validFromLimited.status).toBe(429);
    // Another client behind the same trusted proxy is counted apart.
    expect(
      (await cp.request('POST', '/api/v1/tenants', { body: {}, headers: from('203.0.113.8') })).status,
    ).toBe(400);
    // An IPv6 client is counted by its /64.
    for (let i = 0; i < 5; i++)
      await cp.request('POST', '/api/v1/tenants', {
        body: {},
        token: forged,
        headers: from('2001:db8:1:2::1'),
      });
    expect(
      (
        await cp.request('POST', '/api/v1/tenants', {
          body: {},
          token: forged,
          headers: from('2001:db8:1:2::ffff'),
        })
      ).status,
    ).toBe(429);

    now += 30_000;
    const later = await cp.request('POST', '/api/v1/tenants', { body: {}, headers: from('203.0.113.7') });
    expect(later.status).toBe(429);
    expect(later.headers.get('retry-after')).toBe('30');
    now += 30_000;
    expect(
      (await cp.request('POST', '/api/v1/tenants', { body: {}, headers: from('203.0.113.7') })).status,
    ).toBe(400);
  });

  it('counts an IPv6 client by the network of CONTROL_PLANE_CLIENT_IPV6_PREFIX: its /64s share one bound', async () => {
    cp = await startControlPlane({
      authFailures: { perMinute: 5, trustedProxies: ['127.0.0.1/32'], ipv6Prefix: 48 },
    });
    const forged = await forgedToken();
    const fromSubnet = (subnet: number) => ({ 'x-forwarded-for': `2001:db8:1:${subnet.toString(16)}::1` });
    // A client holding 2001:db8:1::/48 rotates through its /64s.
    for (let subnet = 0; subnet < 5; subnet++) {
      const answer = await cp.request('POST', '/api/v1/tenants', {
        body: {},
        token: forged,
        headers: fromSubnet(subnet),
      });
      expect(answer.status).toBe(401);
    }
    const limited = await cp.request('POST', '/api/v1/tenants', {
      body: {},
      token: forged,
      headers: fromSubnet(0xbeef),
    });
    expect(limited.status, JSON.stringify(json(limited))).toBe(429);
    expect(json(limited)['error']).toMatchObject({ code: 'too_many_auth_failures' });
    // Another /48 is another client.
    expect(
      (
        await cp.request('POST', '/api/v1/tenants', {
          body: {},
          token: forged,
          headers: { 'x-forwarded-for': '2001:db8:2::1' },
        })
      ).status,
    ).toBe(401);
  });

  it('valid tokens and requests without credentials spend nothing', async () => {
    cp = await startControlPlane({ authFailures: { perMinute: 2, trustedProxies: [] } });
    // A valid token with an invalid body is authenticated: 400, not 401.
    for (let i = 0; i < 10; i++)
      expect((await cp.request('POST', '/api/v1/tenants', { body: {} })).status).toBe(400);
    for (let i = 0; i < 10; i++)
      expect((await cp.request('POST', '/api/v1/tenants', { body: {}, token: null })).status).toBe(401);
    expect((await cp.request('POST', '/api/v1/tenants', { body: {} })).status).toBe(400);
  });

  it('believes X-Forwarded-For only from a trusted proxy', async () => {
    cp = await startControlPlane({ authFailures: { perMinute: 2, trustedProxies: [] } });
    const forged = await forgedToken();
    for (const client of ['203.0.113.1', '203.0.113.2'])
      await cp.request('POST', '/api/v1/tenants', {
        body: {},
        token: forged,
        headers: { 'x-forwarded-for': client },
      });
    const answer = await cp.request('POST', '/api/v1/tenants', {
      body: {},
      headers: { 'x-forwarded-for': '203.0.113.3' },
    });
    expect(answer.status).toBe(429);
  });
});
