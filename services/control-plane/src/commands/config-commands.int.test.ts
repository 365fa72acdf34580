import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * Config plan, apply and rollback through the real admin API and event store: the commands are the
 * ordinary ones (deciders, audit), a rollback brings the tenant's config back exactly, and retries
 * change nothing twice.
 */

let h: ControlPlaneHarness;
let tenantId: string;
let originId: string;
let usersRoute: string;
let postsRoute: string;
let beforeChanges: string;

const base = () => `/api/v1/tenants/${tenantId}/config`;
const position = (response: { headers: Headers }) => response.headers.get('x-event-position') ?? '';
const head = async () => (await h.store.headPosition()).toString();

/** The config without what necessarily differs between two versions of it. */
async function configAt(at?: string) {
  const body = json(await h.request('GET', `${base()}${at ? `?at_position=${at}` : ''}`));
  const { position: _p, version: _v, event_time: _t, ...config } = body;
  return config;
}

beforeAll(async () => {
  h = await startControlPlane({ withReadSide: true });
  tenantId = json(
    await h.request('POST', '/api/v1/tenants', { body: { name: 'Acme', subdomain: 'acme-apply' } }),
  )['id'] as string;
  originId = json(
    await h.request('POST', '/api/v1/origins', {
      body: { tenant_id: tenantId, name: 'users-api', url: 'http://127.0.0.1:9/' },
    }),
  )['id'] as string;
  usersRoute = json(
    await h.request('POST', '/api/v1/routes', {
      body: {
        tenant_id: tenantId,
        origin_id: originId,
        path_pattern: '/users/*',
        auth_mode: 'public',
        rate_limit: { requests_per_second: 100 },
      },
    }),
  )['id'] as string;
  const posts = await h.request('POST', '/api/v1/routes', {
    body: { tenant_id: tenantId, origin_id: originId, path_pattern: '/posts/*', auth_mode: 'public' },
  });
  postsRoute = json(posts)['id'] as string;
  beforeChanges = position(posts);
}, 60_000);

afterAll(async () => {
  await h?.close();
});

describe('POST /api/v1/tenants/:id/config/rollback', () => {
  it('restores a deleted route under its id and a changed rate limit, recorded as a rollback', async () => {
    const changed = await h.request('PATCH', `/api/v1/routes/${usersRoute}`, {
      body: { rate_limit: { requests_per_second: 1 } },
    });
    expect(changed.status).toBe(200);
    expect((await h.request('DELETE', `/api/v1/routes/${postsRoute}`)).status).toBe(204);
    const wanted = await configAt(beforeChanges);

    const preview = await h.request('POST', `${base()}/rollback`, {
      body: { to_position: beforeChanges, dry_run: true },
    });
    expect(preview.status).toBe(200);
    const before = await head();
    expect(
      (json(preview)['changes'] as Array<Record<string, unknown>>).map((c) => [c['change'], c['id']]),
    ).toEqual([
      ['restored', postsRoute],
      ['changed', usersRoute],
    ]);
    expect(await head()).toBe(before);

    const rolledBack = await h.request('POST', `${base()}/rollback`, {
      body: { to_position: beforeChanges },
    });
    expect(rolledBack.status).toBe(200);
    const answer = json(rolledBack);
    expect(answer).toMatchObject({
      tenant_id: tenantId,
      to_position: beforeChanges,
      version: position(rolledBack),
    });
    expect(rolledBack.headers.get('etag')).toBe(`"${answer['version']}"`);
    expect(await configAt()).toEqual(wanted);

    // The log: a ConfigRolledBack marker with the restored position, then the compensating events,
    // each naming the marker as its cause.
    const events = (await h.allEvents()).filter((event) => event.position > BigInt(before));
    expect(events.map((event) => event.type)).toEqual(['ConfigRolledBack', 'RouteCreated', 'RouteUpdated']);
    const [marker, ...compensation] = events;
    expect(marker?.data).toEqual({
      tenant_id: tenantId,
      to_position: beforeChanges,
      from_version: before,
      changes: 2,
    });
    expect(marker?.stream).toBe(`config-${tenantId}`);
    for (const event of compensation) {
      expect(event.metadata.causation_id).toBe(marker?.id);
      expect(event.metadata.correlation_id).toBe(marker?.metadata.correlation_id);
    }
    expect(compensation[0]?.stream).toBe(`route-${postsRoute}`);

    // The restored route is the same resource again: readable and changeable by its id.
    await expect
      .poll(async () => (await h.request('GET', `/api/v1/routes/${postsRoute}`)).status, { timeout: 10_000 })
      .toBe(200);
    expect((await h.request('PATCH', `/api/v1/routes/${postsRoute}`, { body: { priority: 3 } })).status).toBe(
      200,
    );
  });

  it('changes nothing and appends nothing when the config already is the one asked for', async () => {
    const at = await head();
    const again = await h.request('POST', `${base()}/rollback`, { body: { to_position: at } });
    expect(again.status).toBe(200);
    expect(json(again)['changes']).toEqual([]);
    expect(await head()).toBe(at);
  });

  // Regression: the ConfigRolledBack marker was appended before the steps were authorised, so a rollback
  // refused with 403 still recorded a rollback, under the caller's name, in the log and the history.
  it('appends nothing when a step is refused: an org admin may not move the subdomain back', async () => {
    const orgTenant = json(
      await h.request('POST', '/api/v1/tenants', {
        body: { name: 'Org', subdomain: 'org-rollback', clerk_org_id: 'org_rollback' },
      }),
    )['id'] as string;
    const created = await head();
    const moved = await h.request('PATCH', `/api/v1/tenants/${orgTenant}`, {
      body: { subdomain: 'org-rollback-moved' },
    });
    expect(moved.status).toBe(200);
    const orgAdmin = await h.token({ userId: 'user_orgadmin', orgId: 'org_rollback', orgRole: 'admin' });
    const start = await head();
    const refused = await h.request('POST', `/api/v1/tenants/${orgTenant}/config/rollback`, {
      token: orgAdmin,
      body: { to_position: created },
    });
    expect(refused.status, JSON.stringify(refused.body)).toBe(403);
    // Named as in the config document the rollback restores (GET …/config/document?at_position=).
    expect(json(refused)['error']).toMatchObject({ details: [{ field: 'tenant.subdomain' }] });
    expect(await head()).toBe(start);
  });

  it('refuses a position before the tenant existed or beyond the log, and other tenants’ callers', async () => {
    const early = await h.request('POST', `${base()}/rollback`, { body: { to_position: '0' } });
    expect(early.status).toBe(400);
    expect(json(early)['error']).toMatchObject({ details: [{ field: 'to_position' }] });
    const beyond = await h.request('POST', `${base()}/rollback`, { body: { to_position: 10_000_000 } });
    expect(beyond.status).toBe(400);
    const malformed = await h.request('POST', `${base()}/rollback`, { body: { to_position: 'yesterday' } });
    expect(malformed.status).toBe(400);
    const stranger = await h.token({ userId: 'user_stranger' });
    const denied = await h.request('POST', `${base()}/rollback`, {
      body: { to_position: beforeChanges },
      token: stranger,
    });
    // A tenant the caller cannot see answers as one that does not exist.
    expect(denied.status).toBe(404);
    expect(json(denied)).toMatchObject({ error: { code: 'not_found' } });
  });

  // Regression: a rollback ignored If-Match, so an admin who reviewed a dry run and rolled back under
  // its version silently undid what another admin had changed in between.
  it('runs only on the config version If-Match names: 412 once another admin changed it, appending nothing', async () => {
    const tenant = json(
      await h.request('POST', '/api/v1/tenants', {
        body: { name: 'Guarded', subdomain: 'guarded-rollback' },
      }),
    )['id'] as string;
    const rollback = `/api/v1/tenants/${tenant}/config/rollback`;
    const route = await h.request('POST', '/api/v1/routes', {
      body: {
        tenant_id: tenant,
        origin_id: null,
        path_pattern: '/ping',
        auth_mode: 'public',
        fixed_response: { status: 200 },
      },
    });
    expect(route.status, JSON.stringify(route.body)).toBe(201);
    const routeId = json(route)['id'] as string;
    const created = position(route);
    expect((await h.request('PATCH', `/api/v1/routes/${routeId}`, { body: { priority: 1 } })).status).toBe(
      200,
    );

    const preview = await h.request('POST', rollback, { body: { to_position: created, dry_run: true } });
    expect(preview.status).toBe(200);
    const reviewed = preview.headers.get('etag') ?? '';
    expect(reviewed).toBe(`"${json(preview)['version']}"`);

    // Another admin's change after the review.
    expect((await h.request('PATCH', `/api/v1/routes/${routeId}`, { body: { priority: 7 } })).status).toBe(
      200,
    );
    const start = await head();
    for (const dryRun of [true, false]) {
      const stale = await h.request('POST', rollback, {
        body: { to_position: created, dry_run: dryRun },
        headers: { 'if-match': reviewed },
      });
      expect(stale.status, JSON.stringify(stale.body)).toBe(412);
      expect(json(stale)['error']).toMatchObject({
        code: 'precondition_failed',
        details: [{ field: 'if-match' }],
      });
    }
    expect(await head()).toBe(start);
    expect((await h.request('GET', `/api/v1/routes/${routeId}`)).status).toBe(200);
    const now = json(await h.request('GET', `/api/v1/tenants/${tenant}/config`))['version'] as string;

    const current = await h.request('POST', rollback, {
      body: { to_position: created },
      headers: { 'if-match': `"${now}"` },
    });
    expect(current.status, JSON.stringify(current.body)).toBe(200);
    expect(json(current)['changes']).toHaveLength(1);
  });
});

describe('POST /api/v1/tenants/:id/config/plan and /apply', () => {
  it('plans, applies once under If-Match and Idempotency-Key, and a second run finds nothing to do', async () => {
    const read = await h.request('GET', `${base()}/document`);
    const version = json(read)['version'] as string;
    const document = json(read)['document'] as {
      origins: Array<Record<string, unknown>>;
      routes: Array<Record<string, unknown>>;
    };
    document.origins[0] = { ...document.origins[0], timeout_seconds: 5 };
    document.routes.push({
      origin: 'users-api',
      path_pattern: '/orders/:id',
      methods: ['GET'],
      auth_mode: 'public',
    });

    const plan = await h.request('POST', `${base()}/plan`, { body: document });
    expect(plan.status).toBe(200);
    expect(json(plan)['version']).toBe(version);
    expect(
      (json(plan)['changes'] as Array<Record<string, unknown>>).map((c) => [c['resource'], c['change']]),
    ).toEqual([
      ['origin', 'changed'],
      ['route', 'added'],
    ]);

    const start = await head();
    const stale = await h.request('POST', `${base()}/apply`, {
      body: document,
      headers: { 'if-match': `"${Number(version) - 1}"` },
    });
    expect(stale.status).toBe(412);
    expect(await head()).toBe(start);

    const headers = { 'if-match': `"${version}"`, 'idempotency-key': 'apply-orders-1' };
    const applied = await h.request('POST', `${base()}/apply`, { body: document, headers });
    expect(applied.status).toBe(200);
    expect(json(applied)['changes']).toHaveLength(2);
    const after = await head();
    expect(BigInt(after) - BigInt(start)).toBe(2n);

    const retried = await h.request('POST', `${base()}/apply`, { body: document, headers });
    expect(retried.status).toBe(200);
    expect(retried.headers.get('idempotent-replayed')).toBe('true');
    expect(await head()).toBe(after);

    const secondPlan = await h.request('POST', `${base()}/plan`, { body: document });
    expect(json(secondPlan)['changes']).toEqual([]);
    const secondApply = await h.request('POST', `${base()}/apply`, { body: document });
    expect(json(secondApply)['changes']).toEqual([]);
    expect(await head()).toBe(after);
    const config = await configAt();
    expect(
      (config['routes'] as Array<{ path_pattern: string }>).map((route) => route.path_pattern),
    ).toContain('/orders/:id');
  });

  it('answers 400 naming the document’s fields and changes nothing', async () => {
    const start = await head();
    const response = await h.request('POST', `${base()}/apply`, {
      body: {
        tenant: { name: 'Acme', subdomain: 'acme-apply' },
        origins: [{ name: 'users-api', url: 'ftp://nope' }],
        routes: [{ origin: 'users-api', path_pattern: 'no-slash', auth_mode: 'public' }],
      },
    });
    expect(response.status).toBe(400);
    const fields = (json(response)['error'] as { details: Array<{ field: string }> }).details.map(
      (d) => d.field,
    );
    expect(fields).toEqual(expect.arrayContaining(['origins.0.url', 'routes.0.path_pattern']));
    expect(await head()).toBe(start);
  });

  // Regression: a route re-created under its old id skipped the checks a created route makes, so a
  // document could restore a route whose traffic split sends requests to another tenant's origin.
  it('restores a deleted route only with the checks of a created one: no split to another tenant’s origin', async () => {
    const other = json(
      await h.request('POST', '/api/v1/tenants', { body: { name: 'Theirs', subdomain: 'theirs-apply' } }),
    );
    const foreignOrigin = json(
      await h.request('POST', '/api/v1/origins', {
        body: { tenant_id: other['id'], name: 'theirs', url: 'http://127.0.0.1:9/' },
      }),
    )['id'] as string;
    const split = json(
      await h.request('POST', '/api/v1/routes', {
        body: { tenant_id: tenantId, origin_id: originId, path_pattern: '/split/*', auth_mode: 'public' },
      }),
    )['id'] as string;
    expect((await h.request('DELETE', `/api/v1/routes/${split}`)).status).toBe(204);
    const document = json(await h.request('GET', `${base()}/document`))['document'] as { routes: object[] };
    document.routes.push({
      id: split,
      origin_id: originId,
      path_pattern: '/split/*',
      auth_mode: 'public',
      traffic_split: {
        origins: [
          { origin_id: originId, weight: 95 },
          { origin_id: foreignOrigin, weight: 5 },
        ],
      },
    });
    const start = await head();
    // Named from the document's root: in a document of many routes, `traffic_split…` says none of them.
    const field = `routes.${document.routes.length - 1}.traffic_split.origins.1.origin_id`;
    for (const command of ['plan', 'apply']) {
      const response = await h.request('POST', `${base()}/${command}`, { body: document });
      expect(response.status, JSON.stringify(response.body)).toBe(400);
      expect(json(response)['error']).toMatchObject({ details: [{ field }] });
    }
    expect(await head()).toBe(start);
  });

  // Regression: a step refused part-way (a route's host is not the tenant's) left the steps before it
  // applied (the new origin), although the apply answered 400.
  it('appends nothing when a later step is refused', async () => {
    const document = json(await h.request('GET', `${base()}/document`))['document'] as {
      origins: object[];
      routes: object[];
    };
    document.origins.push({ name: 'hosts-api', url: 'http://127.0.0.1:9/' });
    document.routes.push({
      origin: 'hosts-api',
      path_pattern: '/hosts/*',
      auth_mode: 'public',
      match: { hosts: ['elsewhere.example.com'] },
    });
    const start = await head();
    const field = `routes.${document.routes.length - 1}.match.hosts.0`;
    for (const command of ['plan', 'apply']) {
      const response = await h.request('POST', `${base()}/${command}`, { body: document });
      expect(response.status, JSON.stringify(response.body)).toBe(400);
      expect(json(response)['error']).toMatchObject({ details: [{ field }] });
    }
    expect(await head()).toBe(start);
  });

  // Regression: the document (up to 4 MiB, 20,000 routes: hundreds of milliseconds of validation) was
  // validated before the caller's access to the tenant was known, so any signed-in user could make the
  // control plane do that work for any tenant id, and learn the validation errors of what they sent.
  it('refuses a caller without access to the tenant before reading the document', async () => {
    const stranger = await h.token({ userId: 'user_document_stranger' });
    const invalidDocument = { tenant: { name: 'Acme', subdomain: 'Not A Label' }, routes: [{}] };
    for (const command of ['plan', 'apply']) {
      const response = await h.request('POST', `${base()}/${command}`, {
        token: stranger,
        body: invalidDocument,
      });
      expect(response.status, JSON.stringify(response.body)).toBe(404);
      expect(json(response)).toMatchObject({ error: { code: 'not_found', message: 'tenant not found' } });
    }
  });

  // Regression: the document's bytes were read and parsed (up to CONTROL_PLANE_DOCUMENT_LIMIT_BYTES, 4 MiB)
  // before the access check, so any signed-in user could make the control plane take in 4 MiB bodies,
  // or hold a request open for as long as they took to send one, on any tenant id.
  it('refuses a caller without access to the tenant before its body arrives', async () => {
    const stranger = await h.token({ userId: 'user_document_stranger' });
    const malformed = await h.request('POST', `${base()}/plan`, {
      token: stranger,
      rawBody: '{"tenant": ',
      headers: { 'content-type': 'application/json' },
    });
    expect(malformed.status, JSON.stringify(malformed.body)).toBe(404);

    // A body announced at 4 MB of which only its first bytes are ever sent.
    const url = new URL(`${h.baseUrl}${base()}/apply`);
    const unsent = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const request = httpRequest(url, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${stranger}`,
          'content-type': 'application/json',
          'content-length': String(4_000_000),
        },
      });
      request.on('error', reject);
      request.on('response', (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          body += chunk;
        });
        response.on('end', () => {
          resolve({ status: response.statusCode ?? 0, body });
          request.destroy();
        });
      });
      request.write('{"tenant": {"name": "');
    });
    expect(unsent.status, unsent.body).toBe(404);
    expect(JSON.parse(unsent.body)).toMatchObject({ error: { code: 'not_found' } });
  });

  it('refuses a document of another tenant and readers', async () => {
    const other = json(
      await h.request('POST', '/api/v1/tenants', { body: { name: 'Other', subdomain: 'other-apply' } }),
    );
    const response = await h.request('POST', `${base()}/plan`, {
      body: { tenant: { id: other['id'], name: 'Other', subdomain: 'other-apply' } },
    });
    expect(response.status).toBe(400);
    expect(json(response)['error']).toMatchObject({ details: [{ field: 'tenant.id' }] });
  });
});

describe('query parameters of a config command', () => {
  it('refuses one it does not know, such as ?dry_run=true on a rollback, before anything is changed', async () => {
    const changed = await h.request('PATCH', `/api/v1/routes/${usersRoute}`, {
      body: { rate_limit: { requests_per_second: 7 } },
    });
    expect(changed.status).toBe(200);
    const before = await head();
    const rollback = await h.request('POST', `${base()}/rollback?dry_run=true`, {
      body: { to_position: beforeChanges },
    });
    expect(rollback.status).toBe(400);
    expect(json(rollback)['error']).toMatchObject({
      code: 'validation_failed',
      details: [{ field: 'dry_run', issue: 'is not a known query parameter' }],
    });
    const removal = await h.request('DELETE', `/api/v1/routes/${usersRoute}?if_unused=true`);
    expect(removal.status).toBe(400);
    expect(json(removal)['error']).toMatchObject({ details: [{ field: 'if_unused' }] });
    expect(await head()).toBe(before);
  });
});
