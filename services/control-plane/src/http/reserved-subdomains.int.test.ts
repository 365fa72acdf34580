import { reservation, streamName } from '@vantageedge/shared/domain/events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * Regression: a tenant could take any free DNS label as its subdomain, `login`, `www`, `status` or
 * `admin` included, and serve a page on `login.vantageedge.dev` that visitors take for the platform's
 * own; or an `xn--` label that browsers show in Unicode, looking like another tenant's name. Nothing was
 * refused on create, on rename, or through a config apply or rollback.
 */

let h: ControlPlaneHarness;
const head = async () => (await h.store.headPosition()).toString();

beforeAll(async () => {
  h = await startControlPlane({ withReadSide: true });
}, 60_000);

afterAll(async () => {
  await h?.close();
});

async function createTenant(subdomain: string): Promise<string> {
  const created = await h.request('POST', '/api/v1/tenants', { body: { name: subdomain, subdomain } });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  return json(created)['id'] as string;
}

const reservedAnswer = {
  error: { code: 'conflict', details: [{ field: 'subdomain', issue: 'reserved by the platform' }] },
};
/** The same refused in a config document (apply, plan, rollback): named where the document has it. */
const reservedInDocument = {
  error: { code: 'conflict', details: [{ field: 'tenant.subdomain', issue: 'reserved by the platform' }] },
};

/** Gives the tenant `subdomain` as a release before reserved names did (a rename it no longer could make). */
async function renameAsEarlierRelease(tenantId: string, subdomain: string): Promise<string> {
  const stream = streamName.tenant(tenantId);
  const events = await h.store.readStream(stream);
  const created = events.find((event) => event.type === 'TenantCreated');
  const last = events.at(-1);
  if (!created || !last) throw new Error(`no tenant ${tenantId}`);
  const before = created.data as { subdomain: string };
  const { position } = await h.store.appendToStream(
    stream,
    [
      {
        type: 'TenantUpdated',
        data: { ...before, subdomain, changed_fields: ['subdomain'] },
        metadata: { ...last.metadata, occurred_at: new Date().toISOString() },
      },
    ],
    {
      expectedRevision: last.revision,
      reservations: {
        claim: [reservation.subdomain(subdomain)],
        release: [reservation.subdomain(before.subdomain)],
      },
    },
  );
  await h.readModelsCaughtUp();
  return position.toString();
}

describe('reserved subdomains', () => {
  it('refuses the platform’s own names on create: 409 at subdomain, nothing appended', async () => {
    const start = await head();
    for (const subdomain of ['www', 'api', 'admin', 'console', 'status', 'login', 'auth', 'docs', 'mail']) {
      const refused = await h.request('POST', '/api/v1/tenants', { body: { name: 'Phish', subdomain } });
      expect(refused.status, subdomain).toBe(409);
      expect(json(refused), subdomain).toMatchObject(reservedAnswer);
    }
    expect(await head()).toBe(start);
  });

  it('refuses xn-- labels (IDN lookalikes of another tenant’s name) and other labels with -- at 3–4', async () => {
    const start = await head();
    // xn--80ak6aa92e is "аррӏе" in Cyrillic: a browser shows it as "apple".
    for (const subdomain of ['xn--80ak6aa92e', 'xn--acme-9qa', 'ab--cd']) {
      const refused = await h.request('POST', '/api/v1/tenants', { body: { name: 'Lookalike', subdomain } });
      expect(refused.status, subdomain).toBe(400);
      expect(json(refused), subdomain).toMatchObject({
        error: { code: 'validation_failed', details: [{ field: 'subdomain' }] },
      });
    }
    expect(await head()).toBe(start);
  });

  it('still takes names that merely contain or start like a reserved one', async () => {
    for (const subdomain of ['acme-api', 'wwwidgets', 'status-page-co', 'x-n--a'])
      await createTenant(subdomain);
  });

  it('refuses a rename to a reserved name and keeps the tenant as it was', async () => {
    const tenantId = await createTenant('renamer');
    const start = await head();
    const refused = await h.request('PATCH', `/api/v1/tenants/${tenantId}`, { body: { subdomain: 'login' } });
    expect(refused.status).toBe(409);
    expect(json(refused)).toMatchObject(reservedAnswer);
    const idn = await h.request('PATCH', `/api/v1/tenants/${tenantId}`, {
      body: { subdomain: 'xn--rnamer-3ya' },
    });
    expect(idn.status).toBe(400);
    expect(json(idn)).toMatchObject({
      error: { code: 'validation_failed', details: [{ field: 'subdomain' }] },
    });
    expect(await head()).toBe(start);
    const tenant = await h.request('GET', `/api/v1/tenants/${tenantId}`, {
      headers: { 'x-min-position': start },
    });
    expect(json(tenant)['subdomain']).toBe('renamer');
  });

  it('refuses a reserved name in a config apply, and its plan says so; nothing appended', async () => {
    const tenantId = await createTenant('applier');
    const start = await head();
    const document = { tenant: { name: 'Applier', subdomain: 'admin' } };
    const plan = await h.request('POST', `/api/v1/tenants/${tenantId}/config/plan`, { body: document });
    expect(plan.status, JSON.stringify(plan.body)).toBe(409);
    expect(json(plan)).toMatchObject(reservedInDocument);
    const apply = await h.request('POST', `/api/v1/tenants/${tenantId}/config/apply`, { body: document });
    expect(apply.status, JSON.stringify(apply.body)).toBe(409);
    expect(json(apply)).toMatchObject(reservedInDocument);
    expect(await head()).toBe(start);
  });

  it('lets a tenant keep a name reserved since it took it, and rename away; never back', async () => {
    const tenantId = await createTenant('keeper');
    const heldAt = await renameAsEarlierRelease(tenantId, 'status');

    const renamed = await h.request('PATCH', `/api/v1/tenants/${tenantId}`, { body: { name: 'Keeper Inc' } });
    expect(renamed.status, JSON.stringify(renamed.body)).toBe(200);
    expect(json(renamed)['subdomain']).toBe('status');
    const unchanged = await h.request('PATCH', `/api/v1/tenants/${tenantId}`, {
      body: { subdomain: 'status' },
    });
    expect(unchanged.status, JSON.stringify(unchanged.body)).toBe(200);
    const applied = await h.request('POST', `/api/v1/tenants/${tenantId}/config/apply`, {
      body: { tenant: { name: 'Keeper Ltd', subdomain: 'status' } },
    });
    expect(applied.status, JSON.stringify(applied.body)).toBe(200);

    const away = await h.request('PATCH', `/api/v1/tenants/${tenantId}`, {
      body: { subdomain: 'keeper-status' },
    });
    expect(away.status, JSON.stringify(away.body)).toBe(200);
    expect(json(away)['subdomain']).toBe('keeper-status');

    const start = await head();
    const back = await h.request('PATCH', `/api/v1/tenants/${tenantId}`, { body: { subdomain: 'status' } });
    expect(back.status).toBe(409);
    expect(json(back)).toMatchObject(reservedAnswer);
    const rollback = await h.request('POST', `/api/v1/tenants/${tenantId}/config/rollback`, {
      body: { to_position: heldAt },
    });
    expect(rollback.status, JSON.stringify(rollback.body)).toBe(409);
    expect(json(rollback)).toMatchObject(reservedInDocument);
    expect(await head()).toBe(start);
  });
});

describe('reserved subdomains set by the operator', () => {
  let own: ControlPlaneHarness;
  beforeAll(async () => {
    own = await startControlPlane({ reservedSubdomains: ['shop', 'billing'] });
  }, 60_000);
  afterAll(async () => {
    await own?.close();
  });

  it('refuses the operator’s names and takes the defaults it left out', async () => {
    const shop = await own.request('POST', '/api/v1/tenants', { body: { name: 'Shop', subdomain: 'shop' } });
    expect(shop.status).toBe(409);
    expect(json(shop)).toMatchObject(reservedAnswer);
    const www = await own.request('POST', '/api/v1/tenants', { body: { name: 'WWW', subdomain: 'www' } });
    expect(www.status, JSON.stringify(www.body)).toBe(201);
    const idn = await own.request('POST', '/api/v1/tenants', {
      body: { name: 'Lookalike', subdomain: 'xn--80ak6aa92e' },
    });
    expect(idn.status).toBe(400);
  });
});

describe('a base domain one label under another (PLATFORM_BASE_DOMAINS=vantageedge.dev,eu.vantageedge.dev)', () => {
  let nested: ControlPlaneHarness;
  beforeAll(async () => {
    nested = await startControlPlane({
      customDomains: {
        baseDomains: ['vantageedge.dev', 'eu.vantageedge.dev'],
        lookupTxt: async () => [],
      },
    });
  }, 60_000);
  afterAll(async () => {
    await nested?.close();
  });

  it('refuses the label naming the nested base domain, on create and on rename', async () => {
    const start = (await nested.store.headPosition()).toString();
    const eu = await nested.request('POST', '/api/v1/tenants', { body: { name: 'EU', subdomain: 'eu' } });
    expect(eu.status, JSON.stringify(eu.body)).toBe(409);
    expect(json(eu)).toMatchObject(reservedAnswer);
    expect((await nested.store.headPosition()).toString()).toBe(start);

    const created = await nested.request('POST', '/api/v1/tenants', {
      body: { name: 'Acme', subdomain: 'acme' },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const renamed = await nested.request('PATCH', `/api/v1/tenants/${json(created)['id']}`, {
      body: { subdomain: 'eu' },
    });
    expect(renamed.status).toBe(409);
    expect(json(renamed)).toMatchObject(reservedAnswer);
  });
});

describe('a base domain nested deeper (PLATFORM_BASE_DOMAINS=vantageedge.dev,apps.eu.vantageedge.dev)', () => {
  let nested: ControlPlaneHarness;
  beforeAll(async () => {
    nested = await startControlPlane({
      customDomains: {
        baseDomains: ['vantageedge.dev', 'apps.eu.vantageedge.dev'],
        lookupTxt: async () => [],
      },
    });
  }, 60_000);
  afterAll(async () => {
    await nested?.close();
  });

  it("refuses the label whose host is the nested base domain's parent, and takes the others", async () => {
    const start = (await nested.store.headPosition()).toString();
    const eu = await nested.request('POST', '/api/v1/tenants', { body: { name: 'EU', subdomain: 'eu' } });
    expect(eu.status, JSON.stringify(eu.body)).toBe(409);
    expect(json(eu)).toMatchObject(reservedAnswer);
    expect((await nested.store.headPosition()).toString()).toBe(start);

    const apps = await nested.request('POST', '/api/v1/tenants', {
      body: { name: 'Apps', subdomain: 'apps' },
    });
    expect(apps.status, JSON.stringify(apps.body)).toBe(201);
  });
});
