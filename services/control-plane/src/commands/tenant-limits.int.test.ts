import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { createTestCa, issueTestCertificate } from '@vantageedge/shared/testing/test-certificates';
import { keyRing } from '@vantageedge/shared/tls/private-key-envelope';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { controlPlaneSettings } from '../settings.js';
import {
  type ApiResponse,
  type ControlPlaneHarness,
  json,
  startControlPlane,
} from '../testing/control-plane-harness.js';
import { DEFAULT_TENANT_LIMITS, tenantLimitsFromSettings } from './tenant-limits.js';

/**
 * Regression tests: a tenant admin could create any number of routes, origins, targets, API keys and
 * custom domains, strings of any length and health checks every 0.1 s — and every gateway replica
 * compiles (and probes) all of it. Each limit answers a clear 4xx naming the field and appends nothing.
 */
describe('per-tenant limits (control plane)', () => {
  let cp: ControlPlaneHarness;
  let tenant: string;
  let origin: string;

  const post = (path: string, body: unknown) => cp.request('POST', path, { body });
  const idOf = (response: ApiResponse) => json(response)['id'] as string;
  const route = (pattern: string) =>
    post('/api/v1/routes', {
      tenant_id: tenant,
      origin_id: origin,
      path_pattern: pattern,
      auth_mode: 'public',
    });

  /** The limits are counted from the read models: wait until the projector has caught up with a command. */
  async function caughtUp(response: ApiResponse): Promise<void> {
    const position = response.headers.get('x-event-position')!;
    const read = await cp.request('GET', `/api/v1/tenants/${tenant}`, {
      headers: { 'x-min-position': position },
    });
    expect(read.status).toBe(200);
  }

  /** A GET answered once the read models (where reads find the tenant) hold every write so far. */
  async function readAtHead(path: string): Promise<ApiResponse> {
    const headers = { 'x-min-position': (await cp.store.headPosition()).toString() };
    return cp.request('GET', path, { headers });
  }

  function expectLimitExceeded(response: ApiResponse, field: string): void {
    expect(response.status).toBe(422);
    const error = json(response)['error'] as { code: string; details: Array<{ field: string }> };
    expect(error.code).toBe('limit_exceeded');
    expect(error.details.map((d) => d.field)).toEqual([field]);
  }

  // One object the commands read: a test lowers a limit for a while (a tenant over it from before).
  const LIMITS = {
    routes: 2,
    origins: 2,
    targetsPerOrigin: 3,
    targets: 5,
    apiKeys: 2,
    members: 3,
    customDomains: 2,
    certificates: 2,
    stringLength: 200,
    settingsBytes: 2048,
    routeBytes: 4096,
    matchConditions: 500,
    cacheBytes: 64 * 1024,
  };

  beforeAll(async () => {
    cp = await startControlPlane({
      withReadSide: true,
      tenantLimits: LIMITS,
      certificateKeyRing: keyRing(randomBytes(32).toString('base64')),
    });
    tenant = idOf(await post('/api/v1/tenants', { name: 'limits', subdomain: 'limits' }));
    origin = idOf(
      await post('/api/v1/origins', { tenant_id: tenant, name: 'o', url: 'https://o.example.com' }),
    );
  });
  afterAll(async () => {
    await cp?.close();
  });

  it('refuses a route over TENANT_MAX_ROUTES with 422 limit_exceeded, appends nothing, and frees the slot on delete', async () => {
    const first = await route('/a/*');
    expect(first.status).toBe(201);
    const second = await route('/b/*');
    expect(second.status).toBe(201);
    await caughtUp(second);
    const events = (await cp.allEvents()).length;
    expectLimitExceeded(await route('/c/*'), 'routes');
    expect((await cp.allEvents()).length).toBe(events);

    const deleted = await cp.request('DELETE', `/api/v1/routes/${idOf(first)}`);
    expect(deleted.status).toBeLessThan(300);
    await caughtUp(deleted);
    expect((await route('/c/*')).status).toBe(201);
  });

  it('refuses an origin over TENANT_MAX_ORIGINS and targets over TENANT_MAX_TARGETS_PER_ORIGIN', async () => {
    const targets = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ url: `https://t${i}.example.com` }));
    expectLimitExceeded(
      await post('/api/v1/origins', { tenant_id: tenant, name: 'many', targets: targets(4) }),
      'targets',
    );
    expectLimitExceeded(
      await cp.request('PATCH', `/api/v1/origins/${origin}`, { body: { targets: targets(4) } }),
      'targets',
    );
    const second = await post('/api/v1/origins', { tenant_id: tenant, name: 'o2', targets: targets(3) });
    expect(second.status).toBe(201);
    await caughtUp(second);
    expectLimitExceeded(
      await post('/api/v1/origins', { tenant_id: tenant, name: 'o3', url: 'https://o3.example.com' }),
      'origins',
    );
  });

  // Regression: a tenant over TENANT_MAX_TARGETS (the limit lowered since) could not trim an origin:
  // every update naming targets was refused; and an apply swapping an origin for another, at the
  // targets or the origins limit, was refused halfway, its steps adding before they remove.
  it('applies a document within the origin and target limits whatever its steps pass through, and lets a tenant over TENANT_MAX_TARGETS trim', async () => {
    const owner = idOf(await post('/api/v1/tenants', { name: 'trim', subdomain: 'trim-targets' }));
    const targets = (n: number, name: string) =>
      Array.from({ length: n }, (_, i) => ({ url: `https://${name}${i}.example.com` }));
    const x = await post('/api/v1/origins', { tenant_id: owner, name: 'x', targets: targets(3, 'x') });
    expect(x.status).toBe(201);
    await caughtUp(x);

    // Swap x for y, 3 targets each: 3 of 5 at both ends, 6 between them.
    const read = await readAtHead(`/api/v1/tenants/${owner}/config/document`);
    const document = json(read)['document'] as { origins: Array<{ name: string; targets?: unknown }> };
    document.origins = [{ name: 'y', targets: targets(3, 'y') }];
    const swapped = await post(`/api/v1/tenants/${owner}/config/apply`, document);
    expect(swapped.status, JSON.stringify(swapped.body)).toBe(200);
    await caughtUp(swapped);
    const a = await post('/api/v1/origins', { tenant_id: owner, name: 'a', targets: targets(1, 'a') });
    expect(a.status).toBe(201);
    await caughtUp(a);
    // At TENANT_MAX_ORIGINS (2): swap a for b, 2 origins at both ends, 3 between them.
    const atLimit = await readAtHead(`/api/v1/tenants/${owner}/config/document`);
    const full = json(atLimit)['document'] as { origins: Array<{ name: string; targets?: unknown }> };
    full.origins = [
      ...full.origins.filter((entry) => entry.name !== 'a'),
      { name: 'b', targets: targets(1, 'b') },
    ];
    const replaced = await post(`/api/v1/tenants/${owner}/config/apply`, full);
    expect(replaced.status, JSON.stringify(replaced.body)).toBe(200);
    await caughtUp(replaced);
    // A document over a limit is refused before its first step, naming the limit; nothing changes.
    const events = (await cp.allEvents()).length;
    const over = await post(`/api/v1/tenants/${owner}/config/apply`, {
      ...full,
      origins: [...full.origins, { name: 'c', targets: targets(1, 'c') }],
    });
    expectLimitExceeded(over, 'origins');
    expect(JSON.stringify(over.body)).toContain('TENANT_MAX_ORIGINS');
    expect((await cp.allEvents()).length).toBe(events);
    const y = (await cp.request('GET', `/api/v1/origins?tenant_id=${owner}`)).body as {
      data: Array<{ id: string; name: string }>;
    };
    const yId = y.data.find((origin) => origin.name === 'y')!.id;

    LIMITS.targets = 2; // 4 targets now: over the limit
    try {
      const trimmed = await cp.request('PATCH', `/api/v1/origins/${yId}`, {
        body: { targets: targets(2, 't') },
      });
      expect(trimmed.status, JSON.stringify(trimmed.body)).toBe(200);
      await caughtUp(trimmed);
      expectLimitExceeded(
        await cp.request('PATCH', `/api/v1/origins/${yId}`, { body: { targets: targets(3, 'g') } }),
        'targets',
      );
    } finally {
      LIMITS.targets = 5;
    }
  });

  // Regression: simultaneous applies (and rollbacks) of one tenant were each counted against the config
  // before the others, and their steps skip the per-create checks (counted by the plan): five documents
  // of 2 origins, 2 routes and 3 targets left the tenant with 10, 10 and 15.
  it('keeps simultaneous applies and rollbacks of one tenant within TENANT_MAX_ORIGINS, _ROUTES and _TARGETS', async () => {
    const owner = idOf(await post('/api/v1/tenants', { name: 'race', subdomain: 'apply-race' }));
    const document = (name: string) => ({
      tenant: { name: 'race', subdomain: 'apply-race' },
      origins: [
        {
          name: `${name}1`,
          targets: [{ url: `https://${name}1a.example.com` }, { url: `https://${name}1b.example.com` }],
        },
        { name: `${name}2`, url: `https://${name}2.example.com` },
      ],
      routes: [
        { origin: `${name}1`, path_pattern: `/${name}/one/*`, auth_mode: 'public' },
        { origin: `${name}2`, path_pattern: `/${name}/two/*`, auth_mode: 'public' },
      ],
    });
    const config = `/api/v1/tenants/${owner}/config`;
    const first = await post(`${config}/apply`, document('a'));
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    const answers = await Promise.all([
      ...['b', 'c', 'd', 'e'].map((name) => post(`${config}/apply`, document(name))),
      post(`${config}/rollback`, { to_position: first.headers.get('x-event-position') }),
    ]);

    const now = json(await readAtHead(config)) as {
      origins: Array<{ targets: unknown[] }>;
      routes: unknown[];
    };
    expect(now.origins.length).toBeLessThanOrEqual(LIMITS.origins);
    expect(now.routes.length).toBeLessThanOrEqual(LIMITS.routes);
    expect(now.origins.flatMap((origin) => origin.targets).length).toBeLessThanOrEqual(LIMITS.targets);
    // One after the other, each replaces the config before it.
    for (const answer of answers) expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  });

  // Regression test: a plan (read access) read one event stream for each id its document named, however
  // many: 20,000 route ids cost 1.6 s of the control plane per request.
  it('refuses a plan whose document is over the limits with 422 naming them, as apply does', async () => {
    const routes = Array.from({ length: 3 }, (_, i) => ({
      id: randomUUID(),
      path_pattern: `/over-${i}/*`,
      origin: 'o',
      auth_mode: 'public',
    }));
    const current = await readAtHead(`/api/v1/tenants/${tenant}/config/document`);
    const document = json(current)['document'] as Record<string, unknown>;
    const planned = await post(`/api/v1/tenants/${tenant}/config/plan`, { ...document, routes });
    expectLimitExceeded(planned, 'routes');
  });

  // Regression test: plan (read access, not charged to the command budget) and apply validated every
  // entry of a document — up to 20,000 routes, 200–450 ms of the control plane's thread — before counting
  // them against TENANT_MAX_ROUTES. Entries that are all invalid show which came first: a document over
  // a limit must be refused by its counts, as apply refuses it, not by its entries' validation.
  it('refuses a document over the limits by its entry counts before validating its entries', async () => {
    const owner = idOf(await post('/api/v1/tenants', { name: 'counted', subdomain: 'counted-first' }));
    const config = `/api/v1/tenants/${owner}/config`;
    const tenantEntry = { name: 'counted', subdomain: 'counted-first' };
    const invalidEntries = (n: number) => Array.from({ length: n }, (_, i) => ({ not_a_field: i }));
    const events = (await cp.allEvents()).length;

    for (const action of ['plan', 'apply']) {
      const routes = await post(`${config}/${action}`, { tenant: tenantEntry, routes: invalidEntries(3) });
      expectLimitExceeded(routes, 'routes');
      expect(JSON.stringify(routes.body)).toContain('TENANT_MAX_ROUTES');
      const origins = await post(`${config}/${action}`, { tenant: tenantEntry, origins: invalidEntries(3) });
      expectLimitExceeded(origins, 'origins');
      expect(JSON.stringify(origins.body)).toContain('TENANT_MAX_ORIGINS');
      const targets = await post(`${config}/${action}`, {
        tenant: tenantEntry,
        origins: [{ targets: invalidEntries(3) }, { targets: invalidEntries(3) }],
      });
      expectLimitExceeded(targets, 'origins');
      expect(JSON.stringify(targets.body)).toContain('TENANT_MAX_TARGETS');
    }
    expect((await cp.allEvents()).length).toBe(events);

    // A tenant over a limit lowered since keeps what apply allows it: up to what it has.
    const o = idOf(
      await post('/api/v1/origins', { tenant_id: owner, name: 'o', url: 'https://o.example.com' }),
    );
    for (const pattern of ['/a/*', '/b/*']) {
      const created = await post('/api/v1/routes', {
        tenant_id: owner,
        origin_id: o,
        path_pattern: pattern,
        auth_mode: 'public',
      });
      expect(created.status).toBe(201);
    }
    LIMITS.routes = 1;
    try {
      const asMany = await post(`${config}/plan`, { tenant: tenantEntry, routes: invalidEntries(2) });
      expect(asMany.status).toBe(400);
      expect((json(asMany)['error'] as { code: string }).code).toBe('validation_failed');
      expectLimitExceeded(
        await post(`${config}/plan`, { tenant: tenantEntry, routes: invalidEntries(3) }),
        'routes',
      );
    } finally {
      LIMITS.routes = 2;
    }
  });

  it('refuses targets over TENANT_MAX_TARGETS across all of a tenant’s origins, on create, update and apply', async () => {
    // Regression: only targets per origin were bounded, so a tenant could have 100 origins × 100 targets,
    // and every replica built 10,000 pools and hash rings for it (3.3 s of CPU, 227 MB of heap).
    const owner = idOf(await post('/api/v1/tenants', { name: 'targets', subdomain: 'targets' }));
    const targets = (n: number, name: string) =>
      Array.from({ length: n }, (_, i) => ({ url: `https://${name}${i}.example.com` }));
    const first = await post('/api/v1/origins', { tenant_id: owner, name: 'a', targets: targets(3, 'a') });
    expect(first.status).toBe(201);
    await caughtUp(first);
    const events = (await cp.allEvents()).length;
    const refused = await post('/api/v1/origins', { tenant_id: owner, name: 'b', targets: targets(3, 'b') });
    expectLimitExceeded(refused, 'targets');
    expect((json(refused)['error'] as { message: string }).message).toContain('TENANT_MAX_TARGETS');
    expect((await cp.allEvents()).length).toBe(events);

    const second = await post('/api/v1/origins', { tenant_id: owner, name: 'b', targets: targets(2, 'b') });
    expect(second.status).toBe(201);
    await caughtUp(second);
    // An update counts the origin's new targets instead of its old ones.
    const same = await cp.request('PATCH', `/api/v1/origins/${idOf(first)}`, {
      body: { targets: targets(3, 'c') },
    });
    expect(same.status).toBe(200);
    expectLimitExceeded(
      await cp.request('PATCH', `/api/v1/origins/${idOf(second)}`, { body: { targets: targets(3, 'd') } }),
      'targets',
    );
    // A config document goes through the same commands.
    const read = await readAtHead(`/api/v1/tenants/${owner}/config/document`);
    expect(read.status).toBe(200);
    const document = json(read)['document'] as { origins: Array<{ name: string; targets: unknown }> };
    document.origins.find((entry) => entry.name === 'b')!.targets = targets(3, 'e');
    const applied = await post(`/api/v1/tenants/${owner}/config/apply`, document);
    expect(applied.status, JSON.stringify(applied.body)).toBe(422);
    expect(JSON.stringify(applied.body)).toContain('TENANT_MAX_TARGETS');
  });

  it('refuses an API key over TENANT_MAX_API_KEYS; a revoked key no longer counts', async () => {
    const first = await post('/api/v1/api-keys', { tenant_id: tenant, name: 'k1' });
    expect(first.status).toBe(201);
    const second = await post('/api/v1/api-keys', { tenant_id: tenant, name: 'k2' });
    expect(second.status).toBe(201);
    await caughtUp(second);
    expectLimitExceeded(await post('/api/v1/api-keys', { tenant_id: tenant, name: 'k3' }), 'api_keys');
    const revoked = await post(`/api/v1/api-keys/${idOf(first)}/revoke`, {});
    expect(revoked.status).toBeLessThan(300);
    await caughtUp(revoked);
    expect((await post('/api/v1/api-keys', { tenant_id: tenant, name: 'k3' })).status).toBe(201);
  });

  // Regression: a rotation issued its new key uncounted while the old one kept working for the grace
  // period, and the new key could be rotated at once: rotating in a loop kept any number of valid keys.
  it('counts a rotated key in its grace period against TENANT_MAX_API_KEYS; a rotation without grace is a swap', async () => {
    const owner = idOf(await post('/api/v1/tenants', { name: 'rotate', subdomain: 'rotate-keys' }));
    const keys = [];
    for (const name of ['k1', 'k2']) {
      const issued = await post('/api/v1/api-keys', { tenant_id: owner, name });
      expect(issued.status).toBe(201);
      keys.push(idOf(issued));
    }
    const events = (await cp.allEvents()).length;
    const refused = await post(`/api/v1/api-keys/${keys[0]}/rotate`, {});
    expectLimitExceeded(refused, 'api_keys');
    expect((json(refused)['error'] as { message: string }).message).toContain('grace_period_seconds');
    expect((await cp.allEvents()).length).toBe(events);

    const swapped = await post(`/api/v1/api-keys/${keys[0]}/rotate`, { grace_period_seconds: 0 });
    expect(swapped.status, JSON.stringify(swapped.body)).toBe(201);
    expectLimitExceeded(await post(`/api/v1/api-keys/${idOf(swapped)}/rotate`, {}), 'api_keys');
    const config = json(await readAtHead(`/api/v1/tenants/${owner}/config`)) as {
      api_keys: Array<{ expires_at: string | null }>;
    };
    const valid = config.api_keys.filter(
      (key) => key.expires_at === null || Date.parse(key.expires_at) > Date.now(),
    );
    expect(valid.length).toBe(LIMITS.apiKeys);
  });

  // Regression: only keys that still worked were counted, yet every expired key stayed in the tenant's
  // gateway snapshot until revoked: keys issued already expired, or rotated away without grace, piled
  // up past TENANT_MAX_API_KEYS in what every replica decodes and holds.
  it('keeps the keys the gateways hold within TENANT_MAX_API_KEYS: expired keys leave the snapshot', async () => {
    const owner = idOf(await post('/api/v1/tenants', { name: 'expired', subdomain: 'expired-keys' }));
    for (let index = 0; index < 4; index += 1) {
      const bornExpired = await post('/api/v1/api-keys', {
        tenant_id: owner,
        name: `old${index}`,
        expires_at: '2020-01-01T00:00:00Z',
      });
      expect(bornExpired.status).toBe(201);
    }
    let rotating = idOf(await post('/api/v1/api-keys', { tenant_id: owner, name: 'rotating' }));
    for (let index = 0; index < 3; index += 1) {
      const swapped = await post(`/api/v1/api-keys/${rotating}/rotate`, { grace_period_seconds: 0 });
      expect(swapped.status, JSON.stringify(swapped.body)).toBe(201);
      rotating = idOf(swapped);
    }
    const kept = await post('/api/v1/api-keys', { tenant_id: owner, name: 'kept' });
    expect(kept.status).toBe(201);

    const config = json(await readAtHead(`/api/v1/tenants/${owner}/config`)) as {
      api_keys: Array<{ id: string }>;
    };
    expect(config.api_keys.map((key) => key.id).sort()).toEqual([rotating, idOf(kept)].sort());
    expectLimitExceeded(await post('/api/v1/api-keys', { tenant_id: owner, name: 'extra' }), 'api_keys');
  });

  // Regression: a tenant admin could add members without bound (each one in the tenant's stream and
  // its read models, and every member check folds them all).
  it('refuses a member over TENANT_MAX_MEMBERS, appends nothing, and frees the slot on delete', async () => {
    const owner = idOf(await post('/api/v1/tenants', { name: 'members', subdomain: 'members' }));
    const member = (n: number) =>
      post('/api/v1/users', {
        tenant_id: owner,
        clerk_user_id: `user_limit_member_${n}`,
        email: `member${n}@example.com`,
        role: 'member',
      });
    const ids = [];
    for (let n = 0; n < LIMITS.members; n++) {
      const added = await member(n);
      expect(added.status, JSON.stringify(added.body)).toBe(201);
      ids.push(idOf(added));
    }
    const events = (await cp.allEvents()).length;
    const refused = await member(LIMITS.members);
    expectLimitExceeded(refused, 'members');
    expect((json(refused)['error'] as { message: string }).message).toContain('TENANT_MAX_MEMBERS');
    expect((await cp.allEvents()).length).toBe(events);

    expect((await cp.request('DELETE', `/api/v1/users/${ids[0]}`)).status).toBeLessThan(300);
    expect((await member(LIMITS.members)).status).toBe(201);
  });

  it('refuses custom domains, settings and strings over their limits, naming the field', async () => {
    const claim = (domain: string) => post(`/api/v1/tenants/${tenant}/domains`, { domain });
    expect((await claim('a.example.com')).status).toBe(201);
    expect((await claim('b.example.com')).status).toBe(201);
    const events = (await cp.allEvents()).length;
    expectLimitExceeded(await claim('c.example.com'), 'custom_domains');
    expect((await cp.allEvents()).length).toBe(events);

    const patchSettings = (settings: unknown) =>
      cp.request('PATCH', `/api/v1/tenants/${tenant}`, { body: { settings } });
    const jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
    const accounts = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ id: `svc-${i}`, keys: [{ ...jwk, kid: `key-${i}` }] }));
    expectLimitExceeded(await patchSettings({ service_accounts: accounts(20) }), 'settings');
    expectLimitExceeded(await route(`/${'p'.repeat(250)}/*`), 'path_pattern');
    expect((await patchSettings({ service_accounts: accounts(2) })).status).toBe(200);
  });

  it('refuses a certificate over TENANT_MAX_CERTIFICATES, appends nothing, and frees the slot on delete', async () => {
    // Regression: a tenant admin could upload the same certificate 1,100 times (every upload a 201) until
    // the tenant's snapshot was larger than any gateway decodes.
    const owner = idOf(await post('/api/v1/tenants', { name: 'certs', subdomain: 'certs' }));
    expect(
      (await post(`/api/v1/tenants/${owner}/domains`, { domain: 'tls.certs.test', verified: true })).status,
    ).toBe(201);
    const certificate = await issueTestCertificate(await createTestCa(), { dnsNames: ['tls.certs.test'] });
    const upload = () =>
      post('/api/v1/certificates', {
        tenant_id: owner,
        domains: ['tls.certs.test'],
        certificate_pem: certificate.chainPem,
        private_key_pem: certificate.privateKeyPem,
      });
    const first = await upload();
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    const second = await upload();
    expect(second.status).toBe(201);
    await caughtUp(second);
    const events = (await cp.allEvents()).length;
    const refused = await upload();
    expectLimitExceeded(refused, 'certificates');
    expect((json(refused)['error'] as { message: string }).message).toContain('TENANT_MAX_CERTIFICATES');
    expect((await cp.allEvents()).length).toBe(events);

    const deleted = await cp.request('DELETE', `/api/v1/certificates/${idOf(first)}`);
    expect(deleted.status).toBeLessThan(300);
    await caughtUp(deleted);
    expect((await upload()).status).toBe(201);
  });

  it('refuses a route whose policies are over TENANT_MAX_ROUTE_BYTES, on create and on update', async () => {
    const ranges = Array.from({ length: 200 }, (_, i) => `10.${i}.0.0/16`);
    const ipRules = { allow: ranges, deny: ranges.map((range) => range.replace('/16', '/24')) };
    const events = (await cp.allEvents()).length;
    expectLimitExceeded(
      await post('/api/v1/routes', {
        tenant_id: tenant,
        origin_id: origin,
        path_pattern: '/big/*',
        auth_mode: 'public',
        ip_rules: ipRules,
      }),
      'route',
    );
    const { rows } = await cp.db.pool.query<{ id: string }>(
      'select id from read_models.routes where tenant_id = $1 limit 1',
      [tenant],
    );
    expectLimitExceeded(
      await cp.request('PATCH', `/api/v1/routes/${rows[0]!.id}`, { body: { ip_rules: ipRules } }),
      'route',
    );
    expect((await cp.allEvents()).length).toBe(events);
  });

  it('lets a fixed response body past TENANT_MAX_STRING_LENGTH, within the route’s TENANT_MAX_ROUTE_BYTES', async () => {
    // A maintenance page is longer than a path or a URL: its body has its own bound (64 KiB) and the
    // route's as a whole.
    const owner = idOf(await post('/api/v1/tenants', { name: 'maintenance', subdomain: 'maintenance' }));
    const routeId = idOf(
      await post('/api/v1/routes', {
        tenant_id: owner,
        origin_id: null,
        path_pattern: '/*',
        auth_mode: 'public',
        fixed_response: { status: 200 },
      }),
    );
    const maintenance = (body: string) =>
      cp.request('PATCH', `/api/v1/routes/${routeId}`, {
        body: { fixed_response: { status: 503, headers: { 'retry-after': '600' }, body } },
      });
    const page = `<html><body>${'Down for maintenance. '.repeat(40)}</body></html>`;
    const accepted = await maintenance(page);
    expect(accepted.status, JSON.stringify(accepted.body)).toBe(200);
    expect((json(accepted)['fixed_response'] as { body: string }).body).toBe(page);
    const events = (await cp.allEvents()).length;
    expectLimitExceeded(await maintenance('x'.repeat(5000)), 'route');
    expect((await cp.allEvents()).length).toBe(events);
  });

  it('refuses a health-check interval under 1 s with 400 naming the field', async () => {
    const response = await post('/api/v1/origins', {
      tenant_id: tenant,
      name: 'probe-cannon',
      url: 'https://p.example.com',
      health_check: { active: { interval_seconds: 0.1 } },
    });
    expect(response.status).toBe(400);
    const error = json(response)['error'] as { details: Array<{ field: string }> };
    expect(error.details.map((d) => d.field)).toContain('health_check.active.interval_seconds');
    const patched = await cp.request('PATCH', `/api/v1/origins/${origin}`, {
      body: { health_check: { active: { interval_seconds: 0.5 } } },
    });
    expect(patched.status).toBe(400);
    const ok = await cp.request('PATCH', `/api/v1/origins/${origin}`, {
      body: { health_check: { active: { interval_seconds: 1 } } },
    });
    expect(ok.status).toBe(200);
  });

  it('has documented defaults, each overridable by its setting', () => {
    const settings = z.object(controlPlaneSettings).pick({
      TENANT_MAX_ROUTES: true,
      TENANT_MAX_ORIGINS: true,
      TENANT_MAX_TARGETS_PER_ORIGIN: true,
      TENANT_MAX_TARGETS: true,
      TENANT_MAX_API_KEYS: true,
      TENANT_MAX_MEMBERS: true,
      TENANT_MAX_CUSTOM_DOMAINS: true,
      TENANT_MAX_CERTIFICATES: true,
      TENANT_MAX_STRING_LENGTH: true,
      TENANT_MAX_SETTINGS_BYTES: true,
      TENANT_MAX_ROUTE_BYTES: true,
      TENANT_MAX_MATCH_CONDITIONS: true,
      TENANT_MAX_CACHE_BYTES: true,
    });
    expect(tenantLimitsFromSettings(settings.parse({}))).toEqual(DEFAULT_TENANT_LIMITS);
    expect(tenantLimitsFromSettings(settings.parse({ TENANT_MAX_ROUTES: '5' })).routes).toBe(5);
    expect(settings.safeParse({ TENANT_MAX_TARGETS_PER_ORIGIN: '500' }).success).toBe(false);
    expect(DEFAULT_TENANT_LIMITS.targets).toBe(1000);
    expect(tenantLimitsFromSettings(settings.parse({ TENANT_MAX_TARGETS: '50' })).targets).toBe(50);
    expect(settings.safeParse({ TENANT_MAX_TARGETS: '0' }).success).toBe(false);
    expect(DEFAULT_TENANT_LIMITS.certificates).toBe(20);
    expect(tenantLimitsFromSettings(settings.parse({ TENANT_MAX_CERTIFICATES: '3' })).certificates).toBe(3);
    expect(settings.safeParse({ TENANT_MAX_CERTIFICATES: '101' }).success).toBe(false);
    expect(DEFAULT_TENANT_LIMITS.members).toBe(1000);
    expect(tenantLimitsFromSettings(settings.parse({ TENANT_MAX_MEMBERS: '7' })).members).toBe(7);
    expect(DEFAULT_TENANT_LIMITS.matchConditions).toBe(500);
    expect(
      tenantLimitsFromSettings(settings.parse({ TENANT_MAX_MATCH_CONDITIONS: '50' })).matchConditions,
    ).toBe(50);
    expect(DEFAULT_TENANT_LIMITS.cacheBytes).toBe(256 * 1024 * 1024);
    const cacheBytes = (value: string) =>
      tenantLimitsFromSettings(settings.parse({ TENANT_MAX_CACHE_BYTES: value }));
    expect(cacheBytes(String(4 * 1024 ** 3)).cacheBytes).toBe(4 * 1024 ** 3);
    expect(settings.safeParse({ TENANT_MAX_CACHE_BYTES: '1023' }).success).toBe(false);
    expect(settings.safeParse({ TENANT_MAX_CACHE_BYTES: String(4 * 1024 ** 3 + 1) }).success).toBe(false);
  });
});
