import { startTestDnsServer, type TestDnsServer } from '@vantageedge/shared/testing/dns-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTxtLookup } from '../commands/dns-txt.js';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * A name goes to the first tenant that proves it controls its DNS: a pending claim, which anyone may
 * make, keeps it from nobody. A squatter that claimed a name, and removed and claimed it again before
 * each claim's verification window ended, kept it from its owner for as long as it liked.
 */
const DAY_MS = 24 * 60 * 60 * 1000;
let cp: ControlPlaneHarness;
let dns: TestDnsServer;
let now = Date.now();
let squatter = '';
let owner = '';
let squatterAdmin = '';
let ownerAdmin = '';

async function tenantWithAdmin(subdomain: string, adminUserId: string): Promise<[string, string]> {
  const created = await cp.request('POST', '/api/v1/tenants', { body: { name: subdomain, subdomain } });
  expect(created.status).toBe(201);
  const tenantId = json(created)['id'] as string;
  const admin = await cp.request('POST', '/api/v1/users', {
    body: {
      tenant_id: tenantId,
      clerk_user_id: adminUserId,
      email: `${subdomain}@example.test`,
      role: 'admin',
    },
  });
  expect(admin.status).toBe(201);
  return [tenantId, await cp.token({ userId: adminUserId, expiresInSeconds: 3600 })];
}

const claim = (tenantId: string, token: string, domain: string) =>
  cp.request('POST', `/api/v1/tenants/${tenantId}/domains`, { token, body: { domain } });

beforeAll(async () => {
  dns = await startTestDnsServer();
  cp = await startControlPlane({
    withReadSide: true,
    customDomains: { baseDomains: ['vantageedge.dev'], lookupTxt: createTxtLookup([dns.address]) },
    clock: () => new Date(now),
  });
  [squatter, squatterAdmin] = await tenantWithAdmin('squatter', 'user_squatter_admin');
  [owner, ownerAdmin] = await tenantWithAdmin('rightful', 'user_rightful_admin');
});
afterAll(async () => {
  await cp?.close();
  await dns?.close();
});

describe("a pending claim of another tenant's name", () => {
  it('keeps the name from nobody: its owner claims it, proves it and serves it', async () => {
    const name = 'shop.rightful.example';
    expect((await claim(squatter, squatterAdmin, name)).status).toBe(201);
    // Renewed every few days, the squatter's claim never reaches the end of a verification window.
    for (let renewal = 0; renewal < 3; renewal++) {
      now += 6 * DAY_MS;
      const removed = await cp.request('DELETE', `/api/v1/tenants/${squatter}/domains/${name}`, {
        token: squatterAdmin,
      });
      expect(removed.status).toBe(204);
      expect((await claim(squatter, squatterAdmin, name)).status).toBe(201);
    }

    const claimed = await claim(owner, ownerAdmin, name);
    expect(claimed.status, JSON.stringify(claimed.body)).toBe(201);
    expect(json(claimed)).toMatchObject({ tenant_id: owner, domain: name, status: 'pending' });
    const verification = json(claimed)['verification'] as { name: string; value: string };
    dns.setTxt(verification.name, [verification.value]);
    const verified = await cp.request('POST', `/api/v1/tenants/${owner}/domains/${name}/verify`, {
      token: ownerAdmin,
    });
    expect(verified.status, JSON.stringify(verified.body)).toBe(200);
    expect(json(verified)).toMatchObject({ tenant_id: owner, status: 'verified' });

    // Now the name is the owner's: the squatter's claim can no longer be verified, nor made again.
    const squatterValue = (
      await cp.request('GET', `/api/v1/tenants/${squatter}/domains/${name}`, {
        token: squatterAdmin,
        headers: { 'X-Min-Position': verified.headers.get('x-event-position') ?? '0' },
      })
    ).body as { verification: { value: string } };
    dns.setTxt(verification.name, [verification.value, squatterValue.verification.value]);
    const stolen = await cp.request('POST', `/api/v1/tenants/${squatter}/domains/${name}/verify`, {
      token: squatterAdmin,
    });
    expect(stolen.status, JSON.stringify(stolen.body)).toBe(409);
    expect(json(stolen)).toMatchObject({
      error: { code: 'conflict', details: [{ field: 'domain', issue: 'already claimed by another tenant' }] },
    });
    await cp.request('DELETE', `/api/v1/tenants/${squatter}/domains/${name}`, { token: squatterAdmin });
    const again = await claim(squatter, squatterAdmin, name);
    expect(again.status, JSON.stringify(again.body)).toBe(409);
  });
});
