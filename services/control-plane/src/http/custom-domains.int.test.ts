import { startTestDnsServer, type TestDnsServer } from '@vantageedge/shared/testing/dns-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTxtLookup } from '../commands/dns-txt.js';
import {
  type ApiResponse,
  type ControlPlaneHarness,
  json,
  startControlPlane,
} from '../testing/control-plane-harness.js';

/**
 * Regression tests for host takeover: `settings.custom_domains` took any string, unchecked and
 * unowned. Now a host name belongs to at most one tenant platform-wide (reserved once verified),
 * has a strict syntax, may not be a platform host, and serves only once its ownership is proven by a
 * DNS TXT record (looked up through a test DNS server here) or a platform admin assigns it.
 */
let cp: ControlPlaneHarness;
let dns: TestDnsServer;
let acme = '';
let globex = '';
let globexAdmin = '';
/** The verification value of Acme's claim of api.acme.example. */
let acmeValue = '';

async function tenant(name: string, subdomain: string): Promise<string> {
  const response = await cp.request('POST', '/api/v1/tenants', { body: { name, subdomain } });
  expect(response.status).toBe(201);
  return json(response)['id'] as string;
}

function errorOf(response: ApiResponse): {
  code: string;
  message: string;
  details: Array<{ field: string; issue: string }>;
} {
  return json(response)['error'] as never;
}

async function eventCount(): Promise<number> {
  return (await cp.allEvents()).length;
}

beforeAll(async () => {
  dns = await startTestDnsServer();
  cp = await startControlPlane({
    withReadSide: true,
    customDomains: {
      baseDomains: ['vantageedge.dev', 'localhost'],
      lookupTxt: createTxtLookup([dns.address]),
    },
  });
  acme = await tenant('Acme', 'acme');
  globex = await tenant('Globex', 'globex');
  // Globex's own admin: a tenant writer, not a platform admin.
  const added = await cp.request('POST', '/api/v1/users', {
    body: { tenant_id: globex, clerk_user_id: 'user_globex_admin', email: 'g@globex.example', role: 'admin' },
  });
  expect(added.status).toBe(201);
  globexAdmin = await cp.token({ userId: 'user_globex_admin' });
});
afterAll(async () => {
  await cp?.close();
  await dns?.close();
});

describe('claiming a custom domain', () => {
  it('answers 201 pending with the TXT record to create, and Location', async () => {
    const response = await cp.request('POST', `/api/v1/tenants/${acme}/domains`, {
      body: { domain: 'API.Acme.example' },
    });
    expect(response.status).toBe(201);
    const body = json(response);
    expect(body).toMatchObject({
      tenant_id: acme,
      domain: 'api.acme.example',
      status: 'pending',
      verified_at: null,
      verification: { type: 'dns-txt', name: '_vantageedge-challenge.api.acme.example' },
    });
    acmeValue = (body['verification'] as { value: string }).value;
    expect(acmeValue).toMatch(/^vantageedge-verify=[\w-]{32}$/);
    expect(response.headers.get('location')).toBe(`/api/v1/tenants/${acme}/domains/api.acme.example`);
    expect(response.headers.get('x-event-position')).toMatch(/^\d+$/);
  });

  it("refuses another tenant's verified host with 409, even to that tenant's own admin, changing nothing", async () => {
    dns.setTxt('_vantageedge-challenge.api.acme.example', [acmeValue]);
    const verified = await cp.request('POST', `/api/v1/tenants/${acme}/domains/api.acme.example/verify`);
    expect(verified.status, JSON.stringify(verified.body)).toBe(200);
    const before = await eventCount();
    for (const domain of ['api.acme.example', 'API.ACME.EXAMPLE']) {
      const response = await cp.request('POST', `/api/v1/tenants/${globex}/domains`, {
        token: globexAdmin,
        body: { domain },
      });
      expect(response.status).toBe(409);
      expect(errorOf(response)).toMatchObject({
        code: 'conflict',
        details: [{ field: 'domain', issue: 'already claimed by another tenant' }],
      });
    }
    // Not even a platform admin can assign a name another tenant holds.
    const assigned = await cp.request('POST', `/api/v1/tenants/${globex}/domains`, {
      body: { domain: 'api.acme.example', verified: true },
    });
    expect(assigned.status).toBe(409);
    const twice = await cp.request('POST', `/api/v1/tenants/${acme}/domains`, {
      body: { domain: 'api.acme.example' },
    });
    expect(twice.status).toBe(409);
    expect(await eventCount()).toBe(before);
  });

  it.each([
    ['acme.localhost', /platform host/],
    ['globex.vantageedge.dev', /platform host/],
    ['vantageedge.dev', /platform host/],
    ['new-tenant.localhost', /platform host/],
    ['api.example.com:8443', /port/],
    ['*.example.com', /wildcard/],
    ['api.example.com.', /dot/],
    ['https://api.example.com', /bare host name/],
    ['under_score.example.com', /letters, digits/],
    ['x'.repeat(64) + '.example.com', /63/],
    ['localhost', /two labels/],
  ])('refuses %s with 400 naming the domain, changing nothing', async (domain, issue) => {
    const before = await eventCount();
    const response = await cp.request('POST', `/api/v1/tenants/${globex}/domains`, {
      token: globexAdmin,
      body: { domain },
    });
    expect(response.status).toBe(400);
    expect(errorOf(response).details).toEqual([{ field: 'domain', issue: expect.stringMatching(issue) }]);
    expect(await eventCount()).toBe(before);
  });

  it('stores internationalised names in punycode', async () => {
    const response = await cp.request('POST', `/api/v1/tenants/${globex}/domains`, {
      token: globexAdmin,
      body: { domain: 'bücher.globex.example' },
    });
    expect(response.status).toBe(201);
    expect(json(response)['domain']).toBe('xn--bcher-kva.globex.example');
  });

  it('refuses the retired settings.custom_domains with 400 pointing to the domains endpoints', async () => {
    const before = await eventCount();
    const response = await cp.request('PATCH', `/api/v1/tenants/${globex}`, {
      token: globexAdmin,
      body: { settings: { custom_domains: ['api.acme.example'] } },
    });
    expect(response.status).toBe(400);
    expect(errorOf(response).details).toEqual([
      { field: 'settings.custom_domains', issue: expect.stringContaining('/api/v1/tenants/{id}/domains') },
    ]);
    const created = await cp.request('POST', '/api/v1/tenants', {
      body: { name: 'Initech', subdomain: 'initech', settings: { custom_domains: [] } },
    });
    expect(created.status).toBe(400);
    expect(await eventCount()).toBe(before);
  });

  it('lets only platform admins assign a domain without verification', async () => {
    const refused = await cp.request('POST', `/api/v1/tenants/${globex}/domains`, {
      token: globexAdmin,
      body: { domain: 'shop.globex.example', verified: true },
    });
    expect(refused.status).toBe(403);
    const assigned = await cp.request('POST', `/api/v1/tenants/${globex}/domains`, {
      body: { domain: 'shop.globex.example', verified: true },
    });
    expect(assigned.status).toBe(201);
    expect(json(assigned)).toMatchObject({ status: 'verified', verification_method: 'platform_admin' });
  });

  it('gives a tenant writer of another tenant the 404 of a missing tenant', async () => {
    const response = await cp.request('POST', `/api/v1/tenants/${acme}/domains`, {
      token: globexAdmin,
      body: { domain: 'evil.example' },
    });
    expect(response.status).toBe(404);
    const missing = await cp.request('POST', '/api/v1/tenants/00000000-0000-4000-8000-000000000000/domains', {
      token: globexAdmin,
      body: { domain: 'x.example' },
    });
    expect(missing.status).toBe(404);
    expect(json(response)).toEqual(json(missing));
  });

  // Regression test: "deleted" was looked at before access, so another tenant's admin could tell a
  // deleted tenant from a live one.
  it("gives another tenant's admin the same 404 for a deleted tenant", async () => {
    const gone = await tenant('Gone', 'gone-domains');
    expect((await cp.request('DELETE', `/api/v1/tenants/${gone}`)).status).toBe(204);
    const response = await cp.request('POST', `/api/v1/tenants/${gone}/domains`, {
      token: globexAdmin,
      body: { domain: 'gone.example' },
    });
    expect(response.status).toBe(404);
    expect(json(response)).toMatchObject({ error: { code: 'not_found', message: 'tenant not found' } });
  });
});

describe('verifying ownership with a DNS TXT record', () => {
  let value = '';
  let claimPosition = '';

  beforeAll(async () => {
    const response = await cp.request('POST', `/api/v1/tenants/${globex}/domains`, {
      token: globexAdmin,
      body: { domain: 'api.globex.example' },
    });
    expect(response.status).toBe(201);
    value = (json(response)['verification'] as { value: string }).value;
    claimPosition = response.headers.get('x-event-position') ?? '';
  });

  it('answers 422 domain_verification_failed while the record is missing, changing nothing', async () => {
    const before = await eventCount();
    const response = await cp.request('POST', `/api/v1/tenants/${globex}/domains/api.globex.example/verify`, {
      token: globexAdmin,
    });
    expect(response.status).toBe(422);
    expect(errorOf(response)).toMatchObject({
      code: 'domain_verification_failed',
      message: 'no TXT record holds the verification value',
    });
    expect(dns.queries).toContain('_vantageedge-challenge.api.globex.example');
    expect(await eventCount()).toBe(before);
  });

  it("refuses a record holding another claim's token (issued for another tenant or domain)", async () => {
    const other = await cp.request('POST', `/api/v1/tenants/${acme}/domains`, {
      body: { domain: 'www.acme.example' },
    });
    const otherValue = (json(other)['verification'] as { value: string }).value;
    dns.setTxt('_vantageedge-challenge.api.globex.example', [otherValue]);
    const response = await cp.request('POST', `/api/v1/tenants/${globex}/domains/api.globex.example/verify`, {
      token: globexAdmin,
    });
    expect(response.status).toBe(422);
    expect(errorOf(response).message).toMatch(/does not hold the verification value/);
  });

  it('verifies once the record holds the issued value; verifying again changes nothing', async () => {
    dns.setTxt('_vantageedge-challenge.api.globex.example', ['v=unrelated', value]);
    const response = await cp.request('POST', `/api/v1/tenants/${globex}/domains/API.globex.example/verify`, {
      token: globexAdmin,
    });
    expect(response.status).toBe(200);
    expect(json(response)).toMatchObject({
      domain: 'api.globex.example',
      status: 'verified',
      verification_method: 'dns_txt',
    });
    const position = response.headers.get('x-event-position') ?? '';
    expect(BigInt(position)).toBeGreaterThan(BigInt(claimPosition));
    const before = await eventCount();
    const again = await cp.request('POST', `/api/v1/tenants/${globex}/domains/api.globex.example/verify`, {
      token: globexAdmin,
    });
    expect(again.status).toBe(200);
    expect(await eventCount()).toBe(before);

    // The read side lists the tenant's domains with their status.
    const list = await cp.request('GET', `/api/v1/tenants/${globex}/domains`, {
      token: globexAdmin,
      headers: { 'X-Min-Position': position },
    });
    expect(list.status).toBe(200);
    const domains = (json(list)['data'] as Array<Record<string, unknown>>).map((d) => [
      d['domain'],
      d['status'],
    ]);
    expect(domains).toEqual([
      ['xn--bcher-kva.globex.example', 'pending'],
      ['shop.globex.example', 'verified'],
      ['api.globex.example', 'verified'],
    ]);
    const one = await cp.request('GET', `/api/v1/tenants/${globex}/domains/api.globex.example`, {
      token: globexAdmin,
      headers: { 'X-Min-Position': position },
    });
    expect(json(one)).toMatchObject({ status: 'verified', verification: { value } });
    // Another tenant's admin does not even learn the tenant exists.
    const hidden = await cp.request('GET', `/api/v1/tenants/${acme}/domains`, { token: globexAdmin });
    expect(hidden.status).toBe(404);
  });

  it('answers 404 for verifying a domain the tenant does not have', async () => {
    const response = await cp.request('POST', `/api/v1/tenants/${globex}/domains/api.acme.example/verify`, {
      token: globexAdmin,
    });
    expect(response.status).toBe(404);
  });
});

describe('releasing a custom domain', () => {
  it('frees the name on removal: another tenant can claim it', async () => {
    const claimed = await cp.request('POST', `/api/v1/tenants/${acme}/domains`, {
      body: { domain: 'moving.example', verified: true },
    });
    expect(claimed.status).toBe(201);
    const taken = await cp.request('POST', `/api/v1/tenants/${globex}/domains`, {
      token: globexAdmin,
      body: { domain: 'moving.example' },
    });
    expect(taken.status).toBe(409);
    const removed = await cp.request('DELETE', `/api/v1/tenants/${acme}/domains/moving.example`);
    expect(removed.status).toBe(204);
    const again = await cp.request('DELETE', `/api/v1/tenants/${acme}/domains/moving.example`);
    expect(again.status).toBe(404);
    const moved = await cp.request('POST', `/api/v1/tenants/${globex}/domains`, {
      token: globexAdmin,
      body: { domain: 'moving.example' },
    });
    expect(moved.status).toBe(201);
  });

  it('frees every domain of a deleted tenant', async () => {
    const doomed = await tenant('Doomed', 'doomed');
    const claimed = await cp.request('POST', `/api/v1/tenants/${doomed}/domains`, {
      body: { domain: 'doomed.example', verified: true },
    });
    expect(claimed.status).toBe(201);
    expect((await cp.request('DELETE', `/api/v1/tenants/${doomed}`)).status).toBe(204);
    const reclaimed = await cp.request('POST', `/api/v1/tenants/${globex}/domains`, {
      token: globexAdmin,
      body: { domain: 'doomed.example' },
    });
    expect(reclaimed.status).toBe(201);
    const types = (await cp.allEvents()).filter((e) => e.stream === `tenant-${doomed}`).map((e) => e.type);
    expect(types).toEqual([
      'TenantCreated',
      'CustomDomainCreated',
      'CustomDomainVerified',
      'CustomDomainDeleted',
      'TenantDeleted',
    ]);
  });
});

describe('acting on a domain as the list showed it', () => {
  /** The tenant's domains as listed once the read side holds `position`, by name. */
  async function listed(tenantId: string, position: string): Promise<Map<string, Record<string, unknown>>> {
    const list = await cp.request('GET', `/api/v1/tenants/${tenantId}/domains`, {
      headers: { 'X-Min-Position': position },
    });
    expect(list.status).toBe(200);
    const items = json(list)['data'] as Array<Record<string, unknown>>;
    return new Map(items.map((item) => [item['domain'] as string, item]));
  }
  const claim = (tenantId: string, domain: string) =>
    cp.request('POST', `/api/v1/tenants/${tenantId}/domains`, { body: { domain } });
  const positionOf = (response: ApiResponse) => response.headers.get('x-event-position') ?? '';

  it('lists each domain with the revision its own GET quotes as ETag', async () => {
    const claimed = await claim(acme, 'listed.acme.example');
    expect(claimed.status).toBe(201);
    const item = (await listed(acme, positionOf(claimed))).get('listed.acme.example');
    const one = await cp.request('GET', `/api/v1/tenants/${acme}/domains/listed.acme.example`, {
      headers: { 'X-Min-Position': positionOf(claimed) },
    });
    expect(item?.['revision']).toMatch(/^[0-9]+$/);
    expect(one.headers.get('etag')).toBe(`"${String(item?.['revision'])}"`);
  });

  it('refuses with 412 a removal or verification of a domain removed and claimed again since it was listed', async () => {
    const claimed = await claim(acme, 'readded.acme.example');
    const stale = (await listed(acme, positionOf(claimed))).get('readded.acme.example')!;
    expect((await cp.request('DELETE', `/api/v1/tenants/${acme}/domains/readded.acme.example`)).status).toBe(
      204,
    );
    expect((await claim(acme, 'readded.acme.example')).status).toBe(201);
    const before = await eventCount();
    const ifMatch = { 'If-Match': `"${String(stale['revision'])}"` };

    const removed = await cp.request('DELETE', `/api/v1/tenants/${acme}/domains/readded.acme.example`, {
      headers: ifMatch,
    });
    expect(removed.status).toBe(412);
    expect(errorOf(removed).code).toBe('precondition_failed');
    const verified = await cp.request('POST', `/api/v1/tenants/${acme}/domains/readded.acme.example/verify`, {
      headers: ifMatch,
    });
    expect(verified.status).toBe(412);
    expect(await eventCount()).toBe(before);
  });

  it("removes a domain as listed though the tenant's other domains changed since", async () => {
    const claimed = await claim(acme, 'kept-as-listed.acme.example');
    const item = (await listed(acme, positionOf(claimed))).get('kept-as-listed.acme.example')!;
    expect((await claim(acme, 'another.acme.example')).status).toBe(201);
    const removed = await cp.request(
      'DELETE',
      `/api/v1/tenants/${acme}/domains/kept-as-listed.acme.example`,
      {
        headers: { 'If-Match': `"${String(item['revision'])}"` },
      },
    );
    expect(removed.status).toBe(204);
  });
});
