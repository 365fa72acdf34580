import { randomBytes, randomUUID } from 'node:crypto';
import {
  CLIENT_AUTH_USAGE,
  createTestCa,
  issueTestCertificate,
} from '@vantageedge/shared/testing/test-certificates';
import { keyRing } from '@vantageedge/shared/tls/private-key-envelope';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';
import { recordRouteAsAnEarlierReleaseDid as recordRoute } from '../testing/recorded-routes.js';

/**
 * A route a config apply or rollback brings back under its old id meets the rules between a route's
 * fields as a created one does (route-policy-rules.ts, allow_any_authenticated_user on jwt modes only):
 * a document may write any field, and a recorded route may predate a rule. An origin brought back names
 * a client certificate only if a created one could (a live certificate of its own tenant).
 */

let h: ControlPlaneHarness;
let tenantId: string;
let originId: string;

const base = () => `/api/v1/tenants/${tenantId}/config`;
const head = async () => (await h.store.headPosition()).toString();
/** Reads answered once the read models hold every event appended so far. */
const caughtUp = async () => ({ headers: { 'x-min-position': await head() } });

async function currentDocument(atPosition?: string) {
  const at = atPosition === undefined ? '' : `?at_position=${atPosition}`;
  return json(await h.request('GET', `${base()}/document${at}`, await caughtUp()))['document'] as {
    origins: Array<{ id?: string } & Record<string, unknown>>;
    routes: Array<{ id?: string } & Record<string, unknown>>;
  };
}

async function deletedRoute(pathPattern: string): Promise<string> {
  const id = json(
    await h.request('POST', '/api/v1/routes', {
      body: { tenant_id: tenantId, origin_id: originId, path_pattern: pathPattern, auth_mode: 'public' },
    }),
  )['id'] as string;
  expect((await h.request('DELETE', `/api/v1/routes/${id}`)).status).toBe(204);
  return id;
}

/** A route created as a release before a rule recorded it; answers the event's position. */
const recordRouteAsAnEarlierReleaseDid = (route: Record<string, unknown>) =>
  recordRoute(h.store, tenantId, route);

beforeAll(async () => {
  h = await startControlPlane({
    withReadSide: true,
    certificateKeyRing: keyRing(randomBytes(32).toString('base64')),
  });
  tenantId = json(
    await h.request('POST', '/api/v1/tenants', { body: { name: 'Acme', subdomain: 'acme-restore-rules' } }),
  )['id'] as string;
  originId = json(
    await h.request('POST', '/api/v1/origins', {
      body: { tenant_id: tenantId, name: 'api', url: 'http://127.0.0.1:9/' },
    }),
  )['id'] as string;
}, 60_000);

afterAll(async () => {
  await h?.close();
});

describe('a deleted route brought back by a config document', () => {
  // Regression: the restore appended the route as sent, so a document answered 200 with what the
  // route commands answer 400.
  it.each([
    [
      'both fixed_response and redirect',
      {
        fixed_response: { status: 503 },
        redirect: { status: 302, location: 'https://elsewhere.example/' },
      },
      'redirect',
    ],
    [
      'allow_any_authenticated_user on a public route',
      { allow_any_authenticated_user: true },
      'allow_any_authenticated_user',
    ],
    [
      'both strip_prefix and rewrite_path',
      { strip_prefix: '/a', rewrite_path: { from_prefix: '/a', to_prefix: '/b' } },
      'rewrite_path',
    ],
  ])('is refused with %s as a created one is, and nothing is appended', async (_, fields, field) => {
    const pathPattern = `/restored-${randomUUID().slice(0, 8)}/*`;
    const created = await h.request('POST', '/api/v1/routes', {
      body: {
        tenant_id: tenantId,
        origin_id: originId,
        path_pattern: pathPattern,
        auth_mode: 'public',
        ...fields,
      },
    });
    expect(created.status).toBe(400);
    expect(json(created)['error']).toMatchObject({ details: [{ field }] });

    const id = await deletedRoute(pathPattern);
    const document = await currentDocument();
    document.routes.push({
      id,
      origin_id: originId,
      path_pattern: pathPattern,
      auth_mode: 'public',
      ...fields,
    });
    const start = await head();
    const applied = await h.request('POST', `${base()}/apply`, { body: document });
    expect(applied.status, JSON.stringify(applied.body)).toBe(400);
    expect(json(applied)['error']).toMatchObject({
      code: 'validation_failed',
      details: [{ field: `routes.${document.routes.length - 1}.${field}` }],
    });
    expect(await head()).toBe(start);
    expect((await h.request('GET', `/api/v1/routes/${id}`, await caughtUp())).status).toBe(404);
  });
});

describe('a rollback to a route recorded before a rule', () => {
  it('is refused before its marker, naming the field the route breaks', async () => {
    const id = randomUUID();
    const recordedAt = await recordRouteAsAnEarlierReleaseDid({
      id,
      origin_id: originId,
      path_pattern: '/recorded/*',
      auth_mode: 'public',
      allow_any_authenticated_user: true,
    });
    expect((await h.request('DELETE', `/api/v1/routes/${id}`)).status).toBe(204);
    const start = await head();
    const rollback = await h.request('POST', `${base()}/rollback`, { body: { to_position: recordedAt } });
    expect(rollback.status, JSON.stringify(rollback.body)).toBe(400);
    // Named as in the document of the config the rollback restores.
    const index = (await currentDocument(recordedAt)).routes.findIndex((route) => route.id === id);
    expect(json(rollback)['error']).toMatchObject({
      details: [{ field: `routes.${index}.allow_any_authenticated_user` }],
    });
    expect(await head()).toBe(start);
    expect((await h.request('GET', `/api/v1/routes/${id}`, await caughtUp())).status).toBe(404);
  });
});

describe('a rollback to routes recorded the same', () => {
  // Regression: a rollback's route steps skip the match check each route command makes (the document is
  // checked as a whole, as an apply's is), and a rollback's document was not: it brought back a route the
  // gateway could never choose.
  it('is refused 409 duplicate_route, its preview too, and nothing is appended', async () => {
    const kept = randomUUID();
    const twin = randomUUID();
    const route = { origin_id: originId, path_pattern: '/twins/*', auth_mode: 'public' };
    await recordRouteAsAnEarlierReleaseDid({ id: kept, ...route });
    const recordedAt = await recordRouteAsAnEarlierReleaseDid({ id: twin, ...route });
    expect((await h.request('DELETE', `/api/v1/routes/${twin}`)).status).toBe(204);
    const start = await head();
    for (const dry_run of [true, false]) {
      const rollback = await h.request('POST', `${base()}/rollback`, {
        body: { to_position: recordedAt, dry_run },
      });
      expect(rollback.status, JSON.stringify(rollback.body)).toBe(409);
      expect(json(rollback)['error']).toMatchObject({ code: 'duplicate_route' });
    }
    expect(await head()).toBe(start);
    expect((await h.request('GET', `/api/v1/routes/${twin}`, await caughtUp())).status).toBe(404);
  });
});

describe('a deleted origin brought back naming a client certificate', () => {
  async function uploadClientCertificate(owner: string): Promise<string> {
    const ca = await createTestCa('Restore Rules Client CA');
    const certificate = await issueTestCertificate(ca, {
      dnsNames: [],
      commonName: 'gateway-client',
      extendedKeyUsages: [CLIENT_AUTH_USAGE],
    });
    const uploaded = await h.request('POST', '/api/v1/certificates', {
      body: {
        tenant_id: owner,
        certificate_pem: certificate.chainPem,
        private_key_pem: certificate.privateKeyPem,
      },
    });
    expect(uploaded.status, JSON.stringify(uploaded.body)).toBe(201);
    return json(uploaded)['id'] as string;
  }

  async function mutualOrigin(name: string, certificateId: string): Promise<{ id: string; at: string }> {
    const created = await h.request('POST', '/api/v1/origins', {
      body: {
        tenant_id: tenantId,
        name,
        url: 'https://127.0.0.1:9/',
        tls: { client_certificate_id: certificateId },
      },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    return { id: json(created)['id'] as string, at: await head() };
  }

  // Regression: a restored origin was appended as recorded, naming a certificate deleted since (its
  // requests to an origin requiring it then failed at every replica) or, in a document, any id at all.
  it('by a rollback, after the certificate was deleted: 404 as for a created one, its dry run too, nothing appended', async () => {
    const certificateId = await uploadClientCertificate(tenantId);
    const origin = await mutualOrigin(`mtls-${randomUUID().slice(0, 8)}`, certificateId);
    expect((await h.request('DELETE', `/api/v1/origins/${origin.id}`)).status).toBe(204);
    expect((await h.request('DELETE', `/api/v1/certificates/${certificateId}`)).status).toBe(204);
    const start = await head();
    const index = (await currentDocument(origin.at)).origins.findIndex((each) => each.id === origin.id);
    for (const dry_run of [true, false]) {
      const rollback = await h.request('POST', `${base()}/rollback`, {
        body: { to_position: origin.at, dry_run },
      });
      expect(rollback.status, JSON.stringify(rollback.body)).toBe(404);
      // Named as in the document of the config the rollback restores.
      expect(json(rollback)['error']).toMatchObject({
        code: 'not_found',
        details: [{ field: `origins.${index}.tls.client_certificate_id`, issue: 'no such certificate' }],
      });
    }
    expect(await head()).toBe(start);
    expect((await h.request('GET', `/api/v1/origins/${origin.id}`, await caughtUp())).status).toBe(404);
  });

  it("by a document naming another tenant's certificate: 404 as a missing one, its plan too, nothing appended", async () => {
    const otherTenant = json(
      await h.request('POST', '/api/v1/tenants', {
        body: { name: 'Globex', subdomain: `globex-${randomUUID().slice(0, 8)}` },
      }),
    )['id'] as string;
    const othersCertificate = await uploadClientCertificate(otherTenant);
    const ownCertificate = await uploadClientCertificate(tenantId);
    const name = `mtls-${randomUUID().slice(0, 8)}`;
    const origin = await mutualOrigin(name, ownCertificate);
    expect((await h.request('DELETE', `/api/v1/origins/${origin.id}`)).status).toBe(204);
    const document = (await currentDocument()) as { origins?: object[]; routes: object[] };
    document.origins = [
      ...(document.origins ?? []),
      {
        id: origin.id,
        name,
        url: 'https://127.0.0.1:9/',
        tls: { client_certificate_id: othersCertificate },
      },
    ];
    const start = await head();
    const place = `origins.${document.origins.length - 1}.tls.client_certificate_id`;
    for (const action of ['plan', 'apply']) {
      const answered = await h.request('POST', `${base()}/${action}`, { body: document });
      expect(answered.status, `${action}: ${JSON.stringify(answered.body)}`).toBe(404);
      // Named by its place in the document: the field alone would not say which origin.
      expect(json(answered)['error']).toMatchObject({
        code: 'not_found',
        details: [{ field: place, issue: 'no such certificate' }],
      });
    }
    expect(await head()).toBe(start);
    expect((await h.request('GET', `/api/v1/origins/${origin.id}`, await caughtUp())).status).toBe(404);
  });
});
