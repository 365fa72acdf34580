import { randomBytes } from 'node:crypto';
import { createTestCa, issueTestCertificate } from '@vantageedge/shared/testing/test-certificates';
import { keyRing } from '@vantageedge/shared/tls/private-key-envelope';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ApiResponse,
  type ControlPlaneHarness,
  json,
  startControlPlane,
} from '../testing/control-plane-harness.js';

/**
 * Regression tests: the counted tenant limits were checked against the read models, outside any lock,
 * so creates sent at once (or while the read-model projector lagged) each saw the count before the
 * others: 20 route creates at TENANT_MAX_ROUTES − 1 all succeeded, and with the projector behind a
 * tenant admin could create without bound. A create over a limit must be a 422 that appends nothing,
 * however many are in flight.
 */
describe('counted tenant limits under concurrency', () => {
  let cp: ControlPlaneHarness;
  const LIMITS = {
    routes: 3,
    origins: 3,
    targetsPerOrigin: 3,
    targets: 6,
    apiKeys: 3,
    members: 3,
    customDomains: 3,
    certificates: 2,
    stringLength: 200,
    settingsBytes: 2048,
    routeBytes: 4096,
    matchConditions: 500,
    cacheBytes: 64 * 1024,
  };

  const post = (path: string, body: unknown) => cp.request('POST', path, { body });
  const idOf = (response: ApiResponse) => json(response)['id'] as string;
  let tenants = 0;
  /** Where each tenant was created: its reads wait until the read models (which find it) are there. */
  const createdAt = new Map<string, string>();
  const newTenant = async () => {
    tenants += 1;
    const created = await post('/api/v1/tenants', { name: `race ${tenants}`, subdomain: `race-${tenants}` });
    createdAt.set(idOf(created), created.headers.get('x-event-position') ?? '');
    return idOf(created);
  };
  const newOrigin = async (tenant: string, name = 'o') => {
    const created = await post('/api/v1/origins', {
      tenant_id: tenant,
      name,
      url: `https://${name}.example.com`,
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    return idOf(created);
  };
  const route = (tenant: string, origin: string, pattern: string) =>
    post('/api/v1/routes', {
      tenant_id: tenant,
      origin_id: origin,
      path_pattern: pattern,
      auth_mode: 'public',
    });

  /** The tenant's config as the event store has it (not the read models). */
  const config = async (tenant: string) =>
    json(
      await cp.request('GET', `/api/v1/tenants/${tenant}/config`, {
        headers: { 'x-min-position': createdAt.get(tenant) ?? '' },
      }),
    ) as {
      origins: Array<{ targets: unknown[] }>;
      routes: unknown[];
      api_keys: unknown[];
      certificates: unknown[];
    };

  function expectOnlyLimitExceeded(answers: ApiResponse[], field: string, created: number): void {
    const statuses = answers.map((answer) => answer.status);
    expect(statuses.filter((status) => status === 201).length, JSON.stringify(statuses)).toBe(created);
    for (const answer of answers.filter((a) => a.status !== 201)) {
      expect(answer.status, JSON.stringify(answer.body)).toBe(422);
      const error = json(answer)['error'] as { code: string; details: Array<{ field: string }> };
      expect(error.code).toBe('limit_exceeded');
      expect(error.details.map((detail) => detail.field)).toEqual([field]);
    }
  }

  beforeAll(async () => {
    cp = await startControlPlane({
      withReadSide: true,
      tenantLimits: LIMITS,
      certificateKeyRing: keyRing(randomBytes(32).toString('base64')),
    });
  });
  afterAll(async () => {
    await cp?.close();
  });

  it('creates one route of 20 sent at once at TENANT_MAX_ROUTES − 1', async () => {
    const tenant = await newTenant();
    const origin = await newOrigin(tenant);
    for (const pattern of ['/a/*', '/b/*']) expect((await route(tenant, origin, pattern)).status).toBe(201);
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => route(tenant, origin, `/race-${i}/*`)),
    );
    expect((await config(tenant)).routes.length).toBe(LIMITS.routes);
    expectOnlyLimitExceeded(answers, 'routes', 1);
  });

  it('creates one origin of 10 sent at once at TENANT_MAX_ORIGINS − 1, and keeps TENANT_MAX_TARGETS', async () => {
    const tenant = await newTenant();
    await newOrigin(tenant, 'a');
    await newOrigin(tenant, 'b');
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => newOriginAnswer(tenant, `r${i}`)));
    expect((await config(tenant)).origins.length).toBe(LIMITS.origins);
    expectOnlyLimitExceeded(answers, 'origins', 1);

    // Targets: 3 origins of 1 target; 10 updates to 3 targets each at once: only 6 targets in all fit.
    const headers = { 'x-min-position': (await cp.store.headPosition()).toString() };
    const { data } = (await cp.request('GET', `/api/v1/origins?tenant_id=${tenant}`, { headers })).body as {
      data: Array<{ id: string }>;
    };
    expect(data).toHaveLength(LIMITS.origins);
    const targets = (name: string) =>
      Array.from({ length: 3 }, (_, i) => ({ url: `https://${name}${i}.example.com` }));
    await Promise.all(
      data.flatMap((origin) =>
        [0, 1, 2].map((n) =>
          cp.request('PATCH', `/api/v1/origins/${origin.id}`, { body: { targets: targets(`t${n}`) } }),
        ),
      ),
    );
    const all = (await config(tenant)).origins.flatMap((origin) => origin.targets);
    expect(all.length).toBeLessThanOrEqual(LIMITS.targets);
  });

  const newOriginAnswer = (tenant: string, name: string) =>
    post('/api/v1/origins', { tenant_id: tenant, name, url: `https://${name}.example.com` });

  it('issues one API key of 20 sent at once at TENANT_MAX_API_KEYS − 1', async () => {
    const tenant = await newTenant();
    for (const name of ['k1', 'k2']) {
      expect((await post('/api/v1/api-keys', { tenant_id: tenant, name })).status).toBe(201);
    }
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        post('/api/v1/api-keys', { tenant_id: tenant, name: `race-${i}` }),
      ),
    );
    expect((await config(tenant)).api_keys.length).toBe(LIMITS.apiKeys);
    expectOnlyLimitExceeded(answers, 'api_keys', 1);
  });

  it('rotates one API key of 2 rotated at once at TENANT_MAX_API_KEYS − 1', async () => {
    const tenant = await newTenant();
    const keys = [];
    for (const name of ['k1', 'k2']) {
      const issued = await post('/api/v1/api-keys', { tenant_id: tenant, name });
      expect(issued.status).toBe(201);
      keys.push(idOf(issued));
    }
    const answers = await Promise.all(keys.map((id) => post(`/api/v1/api-keys/${id}/rotate`, {})));
    expect((await config(tenant)).api_keys.length).toBe(LIMITS.apiKeys);
    expectOnlyLimitExceeded(answers, 'api_keys', 1);
  });

  it('adds one member of 10 sent at once at TENANT_MAX_MEMBERS − 1', async () => {
    const tenant = await newTenant();
    const member = (name: string) =>
      post('/api/v1/users', {
        tenant_id: tenant,
        clerk_user_id: `user_race_${name}`,
        email: `${name}@example.com`,
        role: 'member',
      });
    for (const name of ['m1', 'm2']) expect((await member(`${tenant.slice(0, 8)}_${name}`)).status).toBe(201);
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) => member(`${tenant.slice(0, 8)}_race_${i}`)),
    );
    expectOnlyLimitExceeded(answers, 'members', 1);
  });

  it('claims custom domains sent at once one after another, up to TENANT_MAX_CUSTOM_DOMAINS', async () => {
    for (let round = 0; round < 3; round++) {
      const tenant = await newTenant();
      // Claims share the tenant's stream: raced on its revision, most of them lost with 409 conflict.
      const answers = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          post(`/api/v1/tenants/${tenant}/domains`, { domain: `d${i}.race-${tenants}.test` }),
        ),
      );
      expectOnlyLimitExceeded(answers, 'custom_domains', LIMITS.customDomains);
    }
  });

  it('uploads one certificate of 6 sent at once at TENANT_MAX_CERTIFICATES − 1', async () => {
    const tenant = await newTenant();
    const domain = `tls-${tenant.slice(0, 8)}.certs.test`;
    const claimed = await post(`/api/v1/tenants/${tenant}/domains`, { domain, verified: true });
    expect(claimed.status).toBe(201);
    const certificate = await issueTestCertificate(await createTestCa(), { dnsNames: [domain] });
    const upload = () =>
      post('/api/v1/certificates', {
        tenant_id: tenant,
        domains: [domain],
        certificate_pem: certificate.chainPem,
        private_key_pem: certificate.privateKeyPem,
      });
    expect((await upload()).status).toBe(201);
    const answers = await Promise.all(Array.from({ length: 6 }, () => upload()));
    expect((await config(tenant)).certificates.length).toBe(LIMITS.certificates);
    expectOnlyLimitExceeded(answers, 'certificates', 1);
  });

  it('counts a route created next to a config apply with the apply’s routes', async () => {
    const tenant = await newTenant();
    const document = {
      tenant: { name: 'apply', subdomain: `race-${tenants}` },
      origins: [{ name: 'o', url: 'https://o.example.com' }],
      routes: ['/x/*', '/y/*', '/z/*'].map((pattern) => ({
        origin: 'o',
        path_pattern: pattern,
        auth_mode: 'public',
      })),
    };
    const origin = await newOrigin(tenant);
    const applied = post(`/api/v1/tenants/${tenant}/config/apply`, document);
    const creates = Array.from({ length: 5 }, (_, i) => route(tenant, origin, `/single-${i}/*`));
    const answers = await Promise.all([applied, ...creates]);
    expect(answers[0]!.status, JSON.stringify(answers[0]!.body)).toBe(200);
    expect((await config(tenant)).routes.length).toBeLessThanOrEqual(LIMITS.routes);
  });

  // Last: it stops the read-model projector.
  it('counts from the event log, not from read models that lag behind it', async () => {
    const tenant = await newTenant();
    const origin = await newOrigin(tenant);
    // The config read finds the tenant in the read models; what they lag behind is the routes.
    await cp.readModelsCaughtUp();
    await cp.projector!.stop();
    const answers: ApiResponse[] = [];
    for (let i = 0; i < 6; i++) answers.push(await route(tenant, origin, `/lag-${i}/*`));
    expect((await config(tenant)).routes.length).toBe(LIMITS.routes);
    expectOnlyLimitExceeded(answers, 'routes', LIMITS.routes);
  });
});
