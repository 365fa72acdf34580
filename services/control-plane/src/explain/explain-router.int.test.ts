// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${…} is the route policies' own value-template syntax

import { createSign, KeyObject } from 'node:crypto';
import { startReadModelProjector } from '@vantageedge/projections/read-models/projector';
import type { Projector } from '@vantageedge/projections/runner/projector';
import { requestExplanation } from '@vantageedge/shared/domain/request-explanation';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * POST /api/v1/tenants/:id/explain through the real admin API on PostgreSQL: the config is folded from
 * the event log at the asked position; bad input is a 400 naming the field; access is the config's.
 */

let h: ControlPlaneHarness;
let tenantId: string;
let routeId: string;
let key = '';
let keyId = '';
let restarted: Projector | null = null;
const positions: Record<string, string> = {};

const position = (response: { headers: Headers }) => response.headers.get('x-event-position') ?? '';
const explain = (body: unknown, token?: string) =>
  h.request('POST', `/api/v1/tenants/${tenantId}/explain`, { body, ...(token ? { token } : {}) });

/**
 * Two origins named `names`, and a public route on `pathPattern` to the first whose traffic split
 * `split` gives (from the two origins' ids): the origins' ids.
 */
async function splitRoute(
  names: readonly [string, string],
  pathPattern: string,
  split: (origins: string[]) => Record<string, unknown>,
): Promise<string[]> {
  const origins: string[] = [];
  for (const name of names) {
    const origin = await h.request('POST', '/api/v1/origins', {
      body: { tenant_id: tenantId, name, url: 'http://127.0.0.1:9/' },
    });
    origins.push(json(origin)['id'] as string);
  }
  const created = await h.request('POST', '/api/v1/routes', {
    body: {
      tenant_id: tenantId,
      origin_id: origins[0],
      path_pattern: pathPattern,
      auth_mode: 'public',
      traffic_split: split(origins),
    },
  });
  expect(created.status, JSON.stringify(json(created))).toBe(201);
  return origins;
}

/** How explain says the traffic split of the request's route chose its origin. */
async function splitChosenBy(request: Record<string, unknown>): Promise<string> {
  const answer = json(await explain(request));
  return (answer['policies'] as { traffic_split: { chosen_by: string } }).traffic_split.chosen_by;
}

beforeAll(async () => {
  h = await startControlPlane({ withReadSide: true });
  const tenant = await h.request('POST', '/api/v1/tenants', {
    body: { name: 'Acme', subdomain: 'acme-explain' },
  });
  tenantId = json(tenant)['id'] as string;
  const origin = await h.request('POST', '/api/v1/origins', {
    body: { tenant_id: tenantId, name: 'users-api', url: 'http://127.0.0.1:9/' },
  });
  const route = await h.request('POST', '/api/v1/routes', {
    body: {
      tenant_id: tenantId,
      origin_id: json(origin)['id'],
      path_pattern: '/users/:id',
      methods: ['GET'],
      auth_mode: 'apikey_required',
    },
  });
  routeId = json(route)['id'] as string;
  const issued = await h.request('POST', '/api/v1/api-keys', { body: { tenant_id: tenantId, name: 'ci' } });
  expect(issued.status).toBe(201);
  key = json(issued)['key'] as string;
  keyId = json(issued)['id'] as string;
  positions['issued'] = position(issued);
  const revoked = await h.request('POST', `/api/v1/api-keys/${keyId}/revoke`, { body: {} });
  expect(revoked.status).toBe(200);
  positions['revoked'] = position(revoked);
  // Explain finds the tenant and the caller's access in the read models: wait until they hold it.
  await h.readModelsCaughtUp();
}, 60_000);

afterAll(async () => {
  await restarted?.stop();
  await h?.close();
});

describe('POST /api/v1/tenants/:id/explain', () => {
  it('explains with the config now, or at a past position: the key valid then, revoked now', async () => {
    const request = {
      method: 'GET',
      host: 'acme-explain.vantageedge.dev',
      path: '/users/7',
      headers: { 'X-API-Key': key },
    };
    const now = await explain(request);
    expect(now.status).toBe(200);
    expect(now.headers.get('cache-control')).toBe('private, no-store');
    expect(json(now)).toMatchObject({
      tenant_id: tenantId,
      position: positions['revoked'],
      version: positions['revoked'],
      route: { id: routeId, selected: true },
      auth: { credential: { kind: 'api_key', status: 'revoked', api_key_id: keyId } },
      decision: { stage: 'auth', status: 401, code: 'invalid_api_key' },
    });
    const then = json(await explain({ ...request, at_position: positions['issued'] }));
    expect(then).toMatchObject({
      position: positions['issued'],
      auth: { credential: { status: 'valid', api_key_id: keyId } },
      decision: { stage: 'origin', status: null },
    });
    for (const body of [JSON.stringify(json(now)), JSON.stringify(then)]) {
      expect(body).not.toContain(key);
      expect(body).not.toContain('key_hash');
    }
  });

  it('tells a key no longer valid by then (revoked, born expired) from one issued later or to another tenant', async () => {
    const before = positions['revoked'];
    const born = await h.request('POST', '/api/v1/api-keys', {
      body: { tenant_id: tenantId, name: 'born expired', expires_at: '2020-01-01T00:00:00Z' },
    });
    expect(born.status).toBe(201);
    const other = await h.request('POST', '/api/v1/tenants', {
      body: { name: 'Globex', subdomain: 'globex-explain' },
    });
    const theirs = await h.request('POST', '/api/v1/api-keys', {
      body: { tenant_id: json(other)['id'], name: 'theirs' },
    });
    expect(theirs.status).toBe(201);
    const theirsRevoked = await h.request('POST', `/api/v1/api-keys/${json(theirs)['id']}/revoke`, {
      body: {},
    });
    expect(theirsRevoked.status).toBe(200);
    await h.readModelsCaughtUp();
    const auth = async (apiKey: unknown, at?: string) => {
      const answer = await explain({
        method: 'GET',
        host: 'acme-explain.vantageedge.dev',
        path: '/users/7',
        headers: { 'x-api-key': apiKey },
        ...(at !== undefined ? { at_position: at } : {}),
      });
      expect(answer.status, JSON.stringify(json(answer))).toBe(200);
      const { credential, notes } = json(answer)['auth'] as Record<string, unknown>;
      return { credential, notes, code: (json(answer)['decision'] as { code: unknown }).code };
    };
    expect(await auth(json(born)['key'])).toEqual({
      credential: { kind: 'api_key', status: 'revoked', api_key_id: json(born)['id'], name: 'born expired' },
      notes: [],
      code: 'invalid_api_key',
    });
    const unknown = {
      credential: { kind: 'api_key', status: 'unknown' },
      notes: [],
      code: 'invalid_api_key',
    };
    expect(await auth(json(born)['key'], before)).toEqual(unknown);
    expect(await auth(json(theirs)['key'])).toEqual(unknown);
    expect(await auth(json(theirs)['key'], position(theirsRevoked))).toEqual(unknown);
  });

  it('refuses, as the gateways do, a bearer token naming a header parameter or a claim twice', async () => {
    const created = await h.request('POST', '/api/v1/routes', {
      body: {
        tenant_id: tenantId,
        origin_id: json(await h.request('GET', `/api/v1/routes/${routeId}`))['origin_id'],
        path_pattern: '/me/*',
        auth_mode: 'jwt_required',
        allow_any_authenticated_user: true,
      },
    });
    expect(created.status, JSON.stringify(json(created))).toBe(201);
    const token = await h.token({ userId: 'user_repeat' });
    const [header, payload] = token.split('.') as [string, string];
    const headerText = Buffer.from(header, 'base64url').toString('utf8');
    const resigned = (headerJson: string) => {
      const input = `${Buffer.from(headerJson).toString('base64url')}.${payload}`;
      const signature = createSign('sha256').update(input).sign(KeyObject.from(h.keys.privateKey));
      return `${input}.${signature.toString('base64url')}`;
    };
    const decisionFor = async (bearer: string) => {
      const answer = await explain({
        method: 'GET',
        host: 'acme-explain.vantageedge.dev',
        path: '/me/x',
        headers: { authorization: `Bearer ${bearer}` },
        at_position: position(created),
      });
      expect(answer.status, JSON.stringify(json(answer))).toBe(200);
      return json(answer)['decision'] as { stage: string; code: string | null };
    };
    expect(await decisionFor(resigned(headerText))).toMatchObject({ stage: 'origin' });
    expect(await decisionFor(resigned(headerText.replace('{', '{"alg":"none",')))).toMatchObject({
      stage: 'auth',
      code: 'invalid_token',
    });
  });

  it('refuses bad input with 400 validation_failed naming the field, and appends nothing', async () => {
    const head = position(await h.request('GET', `/api/v1/tenants/${tenantId}/config`));
    const valid = { method: 'GET', host: 'acme-explain.vantageedge.dev', path: '/users/1' };
    const cases: Array<[unknown, string]> = [
      [{ host: valid.host, path: valid.path }, 'method'],
      [{ ...valid, method: 'G ET' }, 'method'],
      [{ ...valid, path: 'users/1' }, 'path'],
      [{ ...valid, host: '' }, 'host'],
      [{ ...valid, extra: 1 }, 'extra'],
      [{ ...valid, headers: { 'bad header': 'x' } }, 'headers.bad header'],
      [{ ...valid, headers: { accept: 5 } }, 'headers.accept'],
      [{ ...valid, at_position: 'abc' }, 'at_position'],
      [{ ...valid, at_position: '99999999' }, 'at_position'],
      [{ ...valid, path: '/users/1?a=1', query: 'b=2' }, 'query'],
      [{ ...valid, headers: { host: 'other.test' } }, 'headers.host'],
      [{ ...valid, client_ip: 'not-an-ip' }, 'client_ip'],
      [{ ...valid, at_time: 'yesterday' }, 'at_time'],
      [[valid], 'body'],
    ];
    for (const [body, field] of cases) {
      const response = await explain(body);
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(json(response)['error'], JSON.stringify(body)).toMatchObject({
        code: 'validation_failed',
        details: expect.arrayContaining([expect.objectContaining({ field })]),
      });
    }
    // at_position belongs in the body: in the query it would be ignored, and the answer be about now.
    const inQuery = await h.request(
      'POST',
      `/api/v1/tenants/${tenantId}/explain?at_position=${positions['issued']}`,
      {
        body: valid,
      },
    );
    expect(inQuery.status).toBe(400);
    expect(json(inQuery)['error']).toMatchObject({
      code: 'validation_failed',
      details: [{ field: 'at_position', issue: 'is not a known query parameter' }],
    });
    expect(position(await h.request('GET', `/api/v1/tenants/${tenantId}/config`))).toBe(head);
  });

  it('is 404 before the tenant existed, for a caller without access and for an unknown tenant', async () => {
    const valid = { method: 'GET', host: 'acme-explain.vantageedge.dev', path: '/users/1' };
    const early = await explain({ ...valid, at_position: 0 });
    expect(early.status).toBe(404);
    expect(json(early)['error']).toMatchObject({ details: [{ field: 'at_position' }] });
    const stranger = await h.token({ userId: 'user_stranger' });
    expect((await explain(valid, stranger)).status).toBe(404);
    const unknown = await h.request('POST', '/api/v1/tenants/00000000-0000-4000-8000-000000000000/explain', {
      body: valid,
    });
    expect(unknown.status).toBe(404);
  });

  it('judges expiry at at_time: a key valid now is expired at a later moment', async () => {
    const expiresAt = new Date(Date.now() + 2 * 86_400_000).toISOString();
    const issued = await h.request('POST', '/api/v1/api-keys', {
      body: { tenant_id: tenantId, name: 'temporary', expires_at: expiresAt },
    });
    expect(issued.status).toBe(201);
    const request = {
      method: 'GET',
      host: 'acme-explain.vantageedge.dev',
      path: '/users/7',
      headers: { 'x-api-key': json(issued)['key'] },
    };
    expect(json(await explain(request))).toMatchObject({
      auth: { credential: { status: 'valid', expires_at: expiresAt } },
      decision: { status: null },
    });
    const later = new Date(Date.parse(expiresAt) + 1000).toISOString();
    expect(json(await explain({ ...request, at_time: later }))).toMatchObject({
      auth: { credential: { status: 'expired' } },
      decision: { stage: 'auth', status: 401, code: 'api_key_expired' },
    });
  });

  it('describes the route policies that apply: IP rules judged for client_ip, the route’s connect timeout', async () => {
    const origin = await h.request('POST', '/api/v1/origins', {
      body: { tenant_id: tenantId, name: 'office-api', url: 'http://127.0.0.1:9/', timeout_seconds: 30 },
    });
    const created = await h.request('POST', '/api/v1/routes', {
      body: {
        tenant_id: tenantId,
        origin_id: json(origin)['id'],
        path_pattern: '/office/*',
        auth_mode: 'public',
        ip_rules: { deny: ['203.0.113.0/24'] },
        timeouts: { connect_ms: 250 },
        rewrite_path: { from_prefix: '/office', to_prefix: '/internal' },
      },
    });
    expect(created.status).toBe(201);
    const request = { method: 'GET', host: 'acme-explain.vantageedge.dev', path: '/office/report' };
    expect(json(await explain(request))).toMatchObject({
      policies: {
        ip_rules: { verdict: 'depends_on_client_address', deny: ['203.0.113.0/24'] },
        timeouts: { connect_ms: 250, response_headers_ms: 30_000, source: 'route' },
        rewrite_path: { path: '/internal/report' },
        cors: null,
        traffic_split: null,
      },
      upstream: { forwarded_path: '/internal/report' },
      decision: { stage: 'origin' },
    });
    expect(json(await explain({ ...request, client_ip: '203.0.113.9' }))).toMatchObject({
      policies: { ip_rules: { verdict: 'denied', client_ip: '203.0.113.9' } },
      decision: { stage: 'ip_rules', status: 403, code: 'ip_denied' },
    });
  });

  it('reads a traffic split’s sticky header as the gateways do: a name every object has (constructor) is not sent', async () => {
    await splitRoute(['blue-api', 'green-api'], '/split/*', (origins) => ({
      origins: origins.map((origin_id) => ({ origin_id, weight: 50 })),
      sticky: { header: 'Constructor' },
    }));
    const request = { method: 'GET', host: 'acme-explain.vantageedge.dev', path: '/split/x' };
    expect(await splitChosenBy(request)).toBe(
      'weights: no constructor in the request, so the weights’ round robin chooses',
    );
    // An empty value is none, as the gateways read it.
    expect(await splitChosenBy({ ...request, headers: { constructor: '' } })).toBe(
      'weights: no constructor in the request, so the weights’ round robin chooses',
    );
    expect(await splitChosenBy({ ...request, headers: { constructor: 'u1' } })).toBe(
      'weights, sticky on constructor: every request with this value goes to the same origin',
    );
  });

  it('reads a traffic split’s cookies as the gateways do: the first of two same-named cookies, an empty one as absent', async () => {
    const origins = await splitRoute(['stable-api', 'canary-api'], '/canary/*', ([stable, canary]) => ({
      origins: [
        { origin_id: stable, weight: 100 },
        { origin_id: canary, weight: 0 },
      ],
      sticky: { cookie: 'session' },
      overrides: [{ cookie: 'canary', value: 'yes', origin_id: canary }],
    }));
    const request = { method: 'GET', host: 'acme-explain.vantageedge.dev', path: '/canary/x' };
    const chosenBy = (cookie: string | string[]) => splitChosenBy({ ...request, headers: { cookie } });
    const override = `an override: canary = yes → origin ${origins[1]}`;
    expect(await chosenBy('canary=yes; canary=no')).toBe(override);
    expect(await chosenBy(['canary=yes', 'canary=no'])).toBe(override);
    expect(await chosenBy('canary=no; canary=yes')).not.toBe(override);
    expect(await chosenBy('session=; session=s-1')).toBe(
      'weights: no session in the request, so the weights’ round robin chooses',
    );
    expect(await chosenBy('session =s-1')).toBe(
      'weights: no session in the request, so the weights’ round robin chooses',
    );
  });

  it('reads a header sent on several lines as the gateways do: joined, or only the first line of a field node keeps once', async () => {
    const origins = await splitRoute(['stable-lines', 'canary-lines'], '/lines/*', ([stable, canary]) => ({
      origins: [
        { origin_id: stable, weight: 100 },
        { origin_id: canary, weight: 0 },
      ],
      overrides: [
        { header: 'x-canary', value: 'yes', origin_id: canary },
        { header: 'user-agent', value: 'canary-bot', origin_id: canary },
      ],
    }));
    const request = { method: 'GET', host: 'acme-explain.vantageedge.dev', path: '/lines/x' };
    const chosenBy = (headers: Record<string, string | string[]>) => splitChosenBy({ ...request, headers });
    const override = (header: string, value: string) =>
      `an override: ${header} = ${value} → origin ${origins[1]}`;
    // A gateway reads two X-Canary lines as "yes, yes", which is not "yes".
    expect(await chosenBy({ 'x-canary': 'yes' })).toBe(override('x-canary', 'yes'));
    expect(await chosenBy({ 'x-canary': ['yes', 'yes'] })).not.toBe(override('x-canary', 'yes'));
    expect(await chosenBy({ 'X-Canary': 'yes', 'x-canary': 'no' })).not.toBe(override('x-canary', 'yes'));
    // node keeps the first User-Agent line only.
    expect(await chosenBy({ 'user-agent': ['canary-bot', 'other'] })).toBe(
      override('user-agent', 'canary-bot'),
    );
  });

  it('answers 414 uri_too_long as the gateways do when the path would make a redirect longer than 32 KiB', async () => {
    const location = `https://new.example.com${'${path}'.repeat(8)}`;
    const created = await h.request('POST', '/api/v1/routes', {
      body: {
        tenant_id: tenantId,
        origin_id: null,
        path_pattern: '/far/*',
        auth_mode: 'public',
        redirect: { status: 308, location },
      },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const request = { method: 'GET', host: 'acme-explain.vantageedge.dev' };
    expect(json(await explain({ ...request, path: '/far/x' }))).toMatchObject({
      policies: { redirect: { status: 308, location: `https://new.example.com${'/far/x'.repeat(8)}` } },
      decision: { stage: 'redirect', status: 308 },
    });
    // 8 copies of an 8,000-character path: 64,000 characters the control plane never builds.
    const long = await explain({ ...request, path: `/far/${'a'.repeat(7995)}` });
    expect(long.status).toBe(200);
    expect(json(long)).toMatchObject({
      policies: { redirect: { status: 308, location } },
      decision: { stage: 'redirect', status: 414, code: 'uri_too_long' },
    });
    expect(JSON.stringify(long.body)).not.toContain(`${'a'.repeat(7995)}/far/`); // no two copies of the path
  });

  it('answers 414 uri_too_long as the gateways do when rewrite_path would make the path longer than 32 KiB', async () => {
    const created = await h.request('POST', '/api/v1/routes', {
      body: {
        tenant_id: tenantId,
        origin_id: (
          await h
            .request('POST', '/api/v1/origins', {
              body: { tenant_id: tenantId, name: 'copies-api', url: 'http://127.0.0.1:9/' },
            })
            .then(json)
        )['id'],
        path_pattern: '/copies/:n',
        auth_mode: 'public',
        rewrite_path: { template: '/:n/:n/:n/:n/:n/:n/:n/:n' },
      },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const request = { method: 'GET', host: 'acme-explain.vantageedge.dev' };
    expect(json(await explain({ ...request, path: '/copies/x' }))).toMatchObject({
      policies: { rewrite_path: { path: '/x/x/x/x/x/x/x/x', rewritten: true } },
      decision: { stage: 'origin', status: null },
    });
    // 8 copies of a 5,000-character segment: 40,008 characters the gateways never build.
    const long = await explain({ ...request, path: `/copies/${'a'.repeat(5000)}` });
    expect(long.status).toBe(200);
    expect(json(long)).toMatchObject({
      policies: { rewrite_path: { rewritten: false } },
      decision: { stage: 'rewrite_path', status: 414, code: 'uri_too_long' },
    });
  });

  it('takes a route matched on the http scheme for a plain-HTTP request only, as the gateways do', async () => {
    const origin = await h.request('POST', '/api/v1/origins', {
      body: { tenant_id: tenantId, name: 'tls-site', url: 'http://127.0.0.1:9/' },
    });
    const served = await h.request('POST', '/api/v1/routes', {
      body: {
        tenant_id: tenantId,
        origin_id: json(origin)['id'],
        path_pattern: '/site/*',
        auth_mode: 'public',
      },
    });
    expect(served.status, JSON.stringify(served.body)).toBe(201);
    const toHttps = await h.request('POST', '/api/v1/routes', {
      body: {
        tenant_id: tenantId,
        origin_id: null,
        path_pattern: '/site/*',
        auth_mode: 'public',
        match: { scheme: 'http' },
        redirect: { status: 301, location: 'https://${host}${path}${query}' },
      },
    });
    expect(toHttps.status, JSON.stringify(toHttps.body)).toBe(201);
    expect(json(toHttps)['match']).toMatchObject({ scheme: 'http' });
    const request = { method: 'GET', host: 'acme-explain.vantageedge.dev', path: '/site/a' };
    expect(json(await explain({ ...request, scheme: 'http' }))).toMatchObject({
      route: { id: json(toHttps)['id'] },
      decision: { stage: 'redirect', status: 301 },
      policies: { redirect: { location: 'https://acme-explain.vantageedge.dev/site/a' } },
    });
    const secure = json(await explain(request));
    expect(secure['route']).toMatchObject({ id: json(served)['id'] });
    expect(secure['decision']).not.toMatchObject({ stage: 'redirect' });
  });

  it('answers exactly what the shared answer schema describes, which the CLI and the console parse it with', async () => {
    const expiring = await h.request('POST', '/api/v1/api-keys', {
      body: {
        tenant_id: tenantId,
        name: 'expiring',
        expires_at: new Date(Date.now() + 86_400_000).toISOString(),
      },
    });
    expect(expiring.status).toBe(201);
    const host = 'acme-explain.vantageedge.dev';
    const requests = [
      { method: 'GET', host, path: '/users/7', headers: { 'x-api-key': json(expiring)['key'] } },
      { method: 'GET', host, path: '/users/7', headers: { 'x-api-key': key } },
      { method: 'GET', host, path: '/users/7', headers: { authorization: 'Bearer not.a.jwt' } },
      { method: 'GET', host, path: '/office/report', client_ip: '203.0.113.9' },
      { method: 'DELETE', host, path: '/nowhere' },
      { method: 'GET', host, path: '/users/%2F' },
      { method: 'GET', host: 'someone-else.vantageedge.dev', path: '/users/7' },
    ];
    for (const request of requests) {
      const answer = await explain(request);
      expect(answer.status, JSON.stringify(request)).toBe(200);
      const parsed = requestExplanation.safeParse(json(answer));
      expect(parsed.error?.issues, JSON.stringify(request)).toBeUndefined();
      // Nothing the schema does not know is dropped on the way: the answer is the parsed answer.
      expect(parsed.data, JSON.stringify(request)).toEqual(json(answer));
    }
  });

  // Last: it stops the read models' projector (and starts another).
  it('waits for the read models with X-Min-Position: the tenant an admin just created is explained, a key just revoked named revoked', async () => {
    await h.projector?.stop();
    // A key issued and revoked since the read models stopped: not found there yet, and the answer says so.
    const issued = await h.request('POST', '/api/v1/api-keys', {
      body: { tenant_id: tenantId, name: 'brief' },
    });
    const revoked = await h.request('POST', `/api/v1/api-keys/${json(issued)['id']}/revoke`, { body: {} });
    expect(revoked.status).toBe(200);
    const keyRequest = {
      method: 'GET',
      host: 'acme-explain.vantageedge.dev',
      path: '/users/7',
      headers: { 'x-api-key': json(issued)['key'] },
    };
    const behind = json(await explain(keyRequest))['auth'] as { credential: unknown; notes: string[] };
    expect(behind.credential).toEqual({ kind: 'api_key', status: 'unknown' });
    expect(behind.notes).toEqual([expect.stringContaining('send X-Min-Position to wait for them')]);

    const created = await h.request('POST', '/api/v1/tenants', {
      body: { name: 'Fresh', subdomain: 'fresh-explain', clerk_org_id: 'org_fresh_explain' },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const freshId = json(created)['id'] as string;
    const admin = await h.token({
      userId: 'user_fresh_explain',
      orgId: 'org_fresh_explain',
      orgRole: 'org:admin',
    });
    const body = { method: 'GET', host: 'fresh-explain.vantageedge.dev', path: '/anything' };
    const path = `/api/v1/tenants/${freshId}/explain`;
    // Not in the read models yet: without the header, the answer of an unknown tenant.
    expect((await h.request('POST', path, { token: admin, body })).status).toBe(404);
    const stranger = await h.token({ userId: 'user_not_fresh' });
    const waitedFor = { 'x-min-position': position(created) };
    expect((await h.request('POST', path, { token: stranger, body, headers: waitedFor })).status).toBe(404);

    const pending = h.request('POST', path, { token: admin, body, headers: waitedFor });
    await new Promise((resolve) => setTimeout(resolve, 200));
    restarted = startReadModelProjector({ store: h.store, pool: h.db.pool });
    const answered = await pending;
    expect(answered.status, JSON.stringify(answered.body)).toBe(200);
    expect(json(answered)).toMatchObject({ tenant_id: freshId, position: position(created) });
    const caughtUp = await h.request('POST', `/api/v1/tenants/${tenantId}/explain`, {
      body: keyRequest,
      headers: { 'x-min-position': position(revoked) },
    });
    expect(json(caughtUp)['auth']).toMatchObject({
      credential: { status: 'revoked', api_key_id: json(issued)['id'] },
      notes: [],
    });
  });
});
