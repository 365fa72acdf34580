import { randomUUID } from 'node:crypto';
import { startTestDnsServer, type TestDnsServer } from '@vantageedge/shared/testing/dns-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTxtLookup } from '../commands/dns-txt.js';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * A pending claim's verification value proves it for 7 days (as Cloudflare's custom hostnames): a
 * record holding a value issued long ago — left in a zone the tenant has since lost — verifies nothing;
 * the claim is removed and claimed again for a new value.
 */
const DAY_MS = 24 * 60 * 60 * 1000;
let cp: ControlPlaneHarness;
let dns: TestDnsServer;
let tenantId = '';
let now = Date.now();

beforeAll(async () => {
  dns = await startTestDnsServer();
  cp = await startControlPlane({
    withReadSide: true,
    customDomains: { baseDomains: ['vantageedge.dev'], lookupTxt: createTxtLookup([dns.address]) },
    clock: () => new Date(now),
  });
  const tenant = await cp.request('POST', '/api/v1/tenants', {
    body: { name: 'Late', subdomain: 'late-verify' },
  });
  tenantId = json(tenant)['id'] as string;
});
afterAll(async () => {
  await cp?.close();
  await dns?.close();
});

describe('a pending custom domain claim', () => {
  it('refuses verification 8 days after the claim with 422 domain_verification_expired, changing nothing', async () => {
    const claimed = await cp.request('POST', `/api/v1/tenants/${tenantId}/domains`, {
      body: { domain: 'api.late-verify.example' },
    });
    expect(claimed.status, JSON.stringify(claimed.body)).toBe(201);
    const verification = json(claimed)['verification'] as { name: string; value: string; expires_at: string };
    expect(Date.parse(verification.expires_at)).toBe(now + 7 * DAY_MS);
    dns.setTxt(verification.name, [verification.value]);
    now += 8 * DAY_MS;
    const before = (await cp.allEvents()).length;
    const verify = await cp.request(
      'POST',
      `/api/v1/tenants/${tenantId}/domains/api.late-verify.example/verify`,
    );
    expect(verify.status, JSON.stringify(verify.body)).toBe(422);
    expect(json(verify)).toMatchObject({
      error: { code: 'domain_verification_expired', details: [{ field: 'domain' }] },
    });
    expect((await cp.allEvents()).length).toBe(before);

    // Claimed again, it gets a new value, which verifies.
    const removed = await cp.request('DELETE', `/api/v1/tenants/${tenantId}/domains/api.late-verify.example`);
    expect(removed.status).toBe(204);
    const again = await cp.request('POST', `/api/v1/tenants/${tenantId}/domains`, {
      body: { domain: 'api.late-verify.example' },
    });
    const fresh = json(again)['verification'] as { name: string; value: string };
    expect(fresh.value).not.toBe(verification.value);
    dns.setTxt(fresh.name, [fresh.value]);
    const verified = await cp.request(
      'POST',
      `/api/v1/tenants/${tenantId}/domains/api.late-verify.example/verify`,
    );
    expect(verified.status, JSON.stringify(verified.body)).toBe(200);
    expect(json(verified)).toMatchObject({ status: 'verified', verification: { expires_at: null } });
  });
});

/**
 * A pending claim as the control plane recorded it while pending claims reserved their names: the
 * claim's event with the name's reservation, in the tenant's stream.
 */
async function pendingClaimHoldingItsName(tenant: string, domain: string): Promise<void> {
  await cp.store.appendToStream(
    `tenant-${tenant}`,
    [
      {
        type: 'CustomDomainCreated',
        data: {
          tenant_id: tenant,
          custom_domain_id: randomUUID(),
          domain,
          verification_token: `vantageedge-verify=${randomUUID()}`,
        },
        metadata: {
          actor: 'user_earlier_admin',
          tenant_id: tenant,
          correlation_id: randomUUID(),
          causation_id: null,
          occurred_at: new Date(now).toISOString(),
          schema_version: 1,
        },
      },
    ],
    { reservations: { claim: [`custom_domain:${domain}`] } },
  );
}

async function newTenant(subdomain: string): Promise<string> {
  const created = await cp.request('POST', '/api/v1/tenants', { body: { name: subdomain, subdomain } });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  return json(created)['id'] as string;
}

describe('a pending claim recorded holding its name', () => {
  it("gives way to another tenant's proof, however young: removed by the platform, the name moves", async () => {
    const holder = await newTenant('squat-holder');
    const claimant = await newTenant('squat-owner');
    const name = 'shop.squatted-name.example';
    await pendingClaimHoldingItsName(holder, name);

    now += DAY_MS;
    const claimed = await cp.request('POST', `/api/v1/tenants/${claimant}/domains`, {
      body: { domain: name },
    });
    expect(claimed.status, JSON.stringify(claimed.body)).toBe(201);
    expect(json(claimed)).toMatchObject({ tenant_id: claimant, domain: name, status: 'pending' });
    const verification = json(claimed)['verification'] as { name: string; value: string };
    dns.setTxt(verification.name, [verification.value]);
    const verified = await cp.request('POST', `/api/v1/tenants/${claimant}/domains/${name}/verify`);
    expect(verified.status, JSON.stringify(verified.body)).toBe(200);
    expect(json(verified)).toMatchObject({ tenant_id: claimant, status: 'verified' });

    // The holder's claim is gone, released by the platform (its audit log says so), not by the claimant.
    const events = await cp.allEvents();
    const released = events.filter(
      (event) =>
        event.type === 'CustomDomainDeleted' &&
        (event.data as { tenant_id: string; domain: string }).tenant_id === holder &&
        (event.data as { domain: string }).domain === name,
    );
    expect(released).toHaveLength(1);
    expect(released[0]!.metadata.actor).toBe('platform');
    const holderDomains = await cp.request('GET', `/api/v1/tenants/${holder}/domains`, {
      headers: { 'x-min-position': String(events.at(-1)!.position) },
    });
    expect(holderDomains.status).toBe(200);
    expect(JSON.stringify(holderDomains.body)).not.toContain(name);
  });

  it("gives way to a platform admin's assignment", async () => {
    const holder = await newTenant('assign-holder');
    const assignee = await newTenant('assign-owner');
    const name = 'api.assigned-name.example';
    await pendingClaimHoldingItsName(holder, name);
    const assigned = await cp.request('POST', `/api/v1/tenants/${assignee}/domains`, {
      body: { domain: name, verified: true },
    });
    expect(assigned.status, JSON.stringify(assigned.body)).toBe(201);
    expect(json(assigned)).toMatchObject({ tenant_id: assignee, status: 'verified' });
  });

  it("leaves nothing of the claimant's request in the holder's audit log", async () => {
    const holder = await newTenant('quiet-holder');
    const claimant = await newTenant('loud-claimant');
    const name = 'www.released-quietly.example';
    await pendingClaimHoldingItsName(holder, name);
    const claimed = await cp.request('POST', `/api/v1/tenants/${claimant}/domains`, {
      body: { domain: name },
    });
    expect(claimed.status, JSON.stringify(claimed.body)).toBe(201);
    const verification = json(claimed)['verification'] as { name: string; value: string };
    dns.setTxt(verification.name, [verification.value]);
    const requestId = 'claimant-request-7f3a9c';
    const verified = await cp.request('POST', `/api/v1/tenants/${claimant}/domains/${name}/verify`, {
      headers: { 'X-Request-Id': requestId, 'Idempotency-Key': 'claimant-key-7f3a9c' },
    });
    expect(verified.status, JSON.stringify(verified.body)).toBe(200);
    expect(verified.headers.get('x-request-id')).toBe(requestId);

    const events = await cp.allEvents();
    const released = events.find(
      (event) =>
        event.type === 'CustomDomainDeleted' && (event.data as { tenant_id: string }).tenant_id === holder,
    );
    expect(released?.metadata).toMatchObject({ actor: 'platform', causation_id: null });
    expect(released?.metadata.correlation_id).not.toBe(requestId);
    expect(released?.metadata).not.toHaveProperty('idempotency_attempt');
    const audit = await cp.request('GET', `/api/v1/audit-log?tenant_id=${holder}`, {
      headers: { 'X-Min-Position': String(events.at(-1)!.position) },
    });
    expect(audit.status).toBe(200);
    expect(JSON.stringify(audit.body)).toContain('platform');
    expect(JSON.stringify(audit.body)).not.toContain(requestId);
    expect(JSON.stringify(audit.body)).not.toContain(claimant);
  });
});

describe("another tenant's claim of a verified name", () => {
  it('is refused 409 when the name is verified by another tenant, however old its claim', async () => {
    const holder = json(
      await cp.request('POST', '/api/v1/tenants', { body: { name: 'Holder', subdomain: 'verified-holder' } }),
    )['id'] as string;
    const claimant = json(
      await cp.request('POST', '/api/v1/tenants', { body: { name: 'Late', subdomain: 'verified-late' } }),
    )['id'] as string;
    const name = 'api.verified-name.example';
    const held = await cp.request('POST', `/api/v1/tenants/${holder}/domains`, {
      body: { domain: name, verified: true },
    });
    expect(held.status, JSON.stringify(held.body)).toBe(201);
    now += 30 * DAY_MS;
    const late = await cp.request('POST', `/api/v1/tenants/${claimant}/domains`, { body: { domain: name } });
    expect(late.status, JSON.stringify(late.body)).toBe(409);
  });
});
