import http from 'node:http';
import net from 'node:net';
import { INTERNAL_LISTENER_HEADER } from '@vantageedge/shared/http/internal-listener';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * The HTTP contract /openapi.json states, checked where `make test-fuzz` (Schemathesis) found the
 * service answering otherwise. Each is a regression test for what the fuzzer found.
 */

let cp: ControlPlaneHarness;

/** A request fetch cannot send (TRACE, a GET with a body), as the platform admin unless `token` is null. */
function rawRequest(
  method: string,
  path: string,
  options: { token?: null; headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; allow: string | undefined; body: string }> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token !== null) headers['authorization'] = `Bearer ${cp.adminToken}`;
  // node's client sends a GET's, HEAD's or DELETE's body framed by nothing unless told its length.
  if (options.body !== undefined) headers['content-length'] = String(Buffer.byteLength(options.body));
  return new Promise((resolve, reject) => {
    const request = http.request(`${cp.baseUrl}${path}`, { method, headers }, (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, allow: response.headers.allow, body }),
      );
    });
    request.on('error', reject);
    request.end(options.body);
  });
}

beforeAll(async () => {
  cp = await startControlPlane({ withReadSide: true });
});
afterAll(async () => {
  await cp?.close();
});

describe('methods', () => {
  // Regression test: a method a path does not serve was answered 404 (or 400) instead of 405.
  it('answers a method a path does not serve with 405 and Allow, and OPTIONS with 204 and Allow', async () => {
    // fetch cannot send TRACE.
    const trace = await rawRequest('TRACE', '/api/v1/tenants', { token: null });
    expect(trace.status).toBe(405);
    expect(trace.allow).toBe('GET, HEAD, OPTIONS, POST');
    expect(JSON.parse(trace.body)).toMatchObject({ error: { code: 'method_not_allowed' } });
    const put = await cp.request('PUT', '/api/v1/tenants/00000000-0000-4000-8000-000000000000', { body: {} });
    expect(put.status).toBe(405);
    expect(put.headers.get('allow')).toBe('DELETE, GET, HEAD, OPTIONS, PATCH');
    const healthz = await cp.request('POST', '/healthz', { token: null });
    expect(healthz.status).toBe(405);
    expect(healthz.headers.get('allow')).toBe('GET, HEAD, OPTIONS');
    const options = await cp.request(
      'OPTIONS',
      '/api/v1/api-keys/00000000-0000-4000-8000-000000000000/rotate',
    );
    expect(options.status).toBe(204);
    expect(options.headers.get('allow')).toBe('OPTIONS, POST');
    expect((await cp.request('GET', '/api/v1/nothing-here')).status).toBe(404);
  });
});

/** Sends each request in turn; every one is answered 404 not_found naming the path's `id`. */
async function expectEachNotFoundNamingThePathId(requests: ReadonlyArray<[string, string, unknown?]>) {
  const answers = [];
  for (const [method, path, body] of requests) {
    const response = await cp.request(method, path, body === undefined ? {} : { body });
    answers.push({ request: `${method} ${path}`, status: response.status, body: response.body });
  }
  expect(answers).toEqual(
    requests.map(([method, path]) => ({
      request: `${method} ${path}`,
      status: 404,
      body: {
        error: expect.objectContaining({
          code: 'not_found',
          details: [expect.objectContaining({ field: 'id' })],
        }),
      },
    })),
  );
}

describe('an id that names nothing', () => {
  // Regression test: the 404 of an unknown id in the path named no field (`details: []`) on most
  // endpoints, and `id` on others.
  it('is 404 not_found naming the path parameter, on every read and command of a resource', async () => {
    const unknown = '00000000-0000-4000-8000-000000000000';
    const requests: Array<[string, string, unknown?]> = [];
    for (const collection of ['tenants', 'users', 'origins', 'routes', 'api-keys', 'certificates']) {
      requests.push(
        ['GET', `/api/v1/${collection}/${unknown}`],
        ['DELETE', `/api/v1/${collection}/${unknown}`],
      );
      if (collection !== 'certificates' && collection !== 'users') {
        requests.push(['PATCH', `/api/v1/${collection}/${unknown}`, {}]);
      }
    }
    requests.push(
      ['POST', `/api/v1/tenants/${unknown}/cache/purge`, {}],
      ['POST', `/api/v1/tenants/${unknown}/config/rollback`, { to_position: '1' }],
      ['GET', `/api/v1/tenants/${unknown}/config`],
      ['GET', `/api/v1/tenants/${unknown}/config/history`],
      ['GET', `/api/v1/tenants/${unknown}/domains`],
      ['POST', `/api/v1/tenants/${unknown}/domains`, { domain: 'api.example.com' }],
      ['POST', `/api/v1/tenants/${unknown}/explain`, { method: 'GET', path: '/' }],
      ['PATCH', `/api/v1/users/${unknown}`, { role: 'viewer' }],
      ['POST', `/api/v1/api-keys/${unknown}/rotate`, {}],
      ['POST', `/api/v1/api-keys/${unknown}/revoke`, {}],
      ['POST', `/api/v1/routes/${unknown}/cache/purge`, {}],
    );
    await expectEachNotFoundNamingThePathId(requests);
  });
});

describe('a resource of a deleted tenant', () => {
  // Regression test: rotating a key of a deleted tenant, changing its route or purging the deleted
  // tenant's cache was 404 naming `tenant_id`, a field the request never had: the path's id names nothing.
  // And a platform admin's revoke, origin change or route delete was 200/204, recording events of a
  // tenant that no longer exists: every command on its resources is 404 and records nothing.
  it('is 404 not_found naming the path parameter, and records nothing', async () => {
    const post = async (path: string, body: unknown) =>
      json(await cp.request('POST', path, { body }))['id'] as string;
    const tenant = await post('/api/v1/tenants', { name: 'gone', subdomain: 'gone-tenant' });
    const origin = await post('/api/v1/origins', {
      tenant_id: tenant,
      name: 'o',
      url: 'https://o.example.com',
    });
    const route = await post('/api/v1/routes', {
      tenant_id: tenant,
      origin_id: origin,
      path_pattern: '/a/*',
      auth_mode: 'public',
    });
    const key = await post('/api/v1/api-keys', { tenant_id: tenant, name: 'k' });
    const user = await post('/api/v1/users', {
      tenant_id: tenant,
      clerk_user_id: 'user_of_gone_tenant',
      email: 'member@gone.example.com',
      role: 'member',
    });
    expect((await cp.request('DELETE', `/api/v1/tenants/${tenant}`)).status).toBe(204);
    const before = (await cp.allEvents()).length;
    const requests: Array<[string, string, unknown?]> = [
      ['POST', `/api/v1/api-keys/${key}/revoke`, {}],
      ['POST', `/api/v1/api-keys/${key}/rotate`, {}],
      ['PATCH', `/api/v1/api-keys/${key}`, { quota: null }],
      ['DELETE', `/api/v1/api-keys/${key}`],
      ['PATCH', `/api/v1/origins/${origin}`, { name: 'renamed' }],
      ['DELETE', `/api/v1/origins/${origin}`],
      ['PATCH', `/api/v1/routes/${route}`, { path_pattern: '/b/*' }],
      ['DELETE', `/api/v1/routes/${route}`],
      ['POST', `/api/v1/routes/${route}/cache/purge`, {}],
      ['PATCH', `/api/v1/users/${user}`, { role: 'admin' }],
      ['DELETE', `/api/v1/users/${user}`],
      ['PATCH', `/api/v1/tenants/${tenant}`, { name: 'revived' }],
      ['POST', `/api/v1/tenants/${tenant}/cache/purge`, {}],
      ['POST', `/api/v1/tenants/${tenant}/domains`, { domain: 'api.gone.example.com' }],
      [
        'POST',
        `/api/v1/tenants/${tenant}/config/apply`,
        { tenant: { name: 'revived', subdomain: 'gone-tenant' }, origins: [], routes: [] },
      ],
    ];
    await expectEachNotFoundNamingThePathId(requests);
    expect((await cp.allEvents()).length).toBe(before);
  });
});

describe('a body on GET, HEAD or DELETE', () => {
  // Regression test: it was parsed as a write's body is, so a GET sending text was 415, one sending
  // malformed JSON 400 and one sending a large body 413, where it has no meaning (RFC 9110 §9.3.1).
  it('is never read: the request is answered as it is without one', async () => {
    const tenant = await cp.request('POST', '/api/v1/tenants', { body: { name: 'bod', subdomain: 'bod' } });
    const id = json(tenant)['id'] as string;
    const path = `/api/v1/tenants/${id}`;
    await cp.readModelsCaughtUp();
    const bodies: Array<[Record<string, string>, string]> = [
      [{ 'content-type': 'text/plain' }, 'hello'],
      [{ 'content-type': 'application/json' }, '{"name":'],
      [{ 'content-type': 'application/json' }, JSON.stringify({ name: 'x'.repeat(70_000) })],
    ];
    for (const [headers, body] of bodies) {
      const get = await rawRequest('GET', path, { headers, body });
      expect(get.status, body.slice(0, 20)).toBe(200);
      expect(JSON.parse(get.body)).toMatchObject({ id });
      expect((await rawRequest('HEAD', path, { headers, body })).status, body.slice(0, 20)).toBe(200);
    }
    const del = await rawRequest('DELETE', path, { headers: { 'content-type': 'text/plain' }, body: 'bye' });
    expect(del.status).toBe(204);
    expect((await cp.request('DELETE', path)).status).toBe(404);
  });
});

describe('paths', () => {
  // Regression test: express matched paths in any case and with a trailing slash, so /API/V1/TENANTS
  // and /api/v1/tenants/ were the tenants list, and a POST to either created a tenant.
  it('are matched exactly: another case or a trailing slash is the 404 of an unknown path', async () => {
    const before = (await cp.allEvents()).length;
    const requests: Array<[string, string, unknown?]> = [
      ['GET', '/API/V1/TENANTS'],
      ['GET', '/api/v1/Tenants'],
      ['GET', '/api/v1/tenants/'],
      ['POST', '/api/v1/tenants/', { name: 'slash', subdomain: 'slash' }],
      ['POST', '/API/v1/tenants', { name: 'upper', subdomain: 'upper' }],
      ['OPTIONS', '/api/v1/tenants/'],
      ['GET', '/HEALTHZ'],
      ['GET', '/openapi.json/'],
    ];
    for (const [method, path, body] of requests) {
      const response = await cp.request(method, path, body === undefined ? {} : { body });
      expect(response.status, `${method} ${path}`).toBe(404);
      expect(json(response), `${method} ${path}`).toMatchObject({ error: { code: 'not_found' } });
    }
    expect((await cp.allEvents()).length).toBe(before);
    expect((await cp.request('GET', '/api/v1/tenants')).status).toBe(200);
  });
});

describe('a body the API cannot take', () => {
  // Regression test: 413 and an unsupported Content-Encoding's 415 named no field, and a JSON body
  // that is no object (`null`, `5`) was called "not valid JSON".
  it('is refused naming the part of the request at fault, and nothing is appended', async () => {
    const tenant = await cp.request('POST', '/api/v1/tenants', { body: { name: 'bdy', subdomain: 'bdy' } });
    const path = `/api/v1/tenants/${json(tenant)['id'] as string}`;
    const before = (await cp.allEvents()).length;
    const refusals: Array<[RequestInit['headers'], string, number, string, RegExp]> = [
      [{ 'content-type': 'application/json' }, 'null', 400, 'body', /must be a JSON object/],
      [{ 'content-type': 'application/json' }, '5', 400, 'body', /must be a JSON object/],
      [{ 'content-type': 'application/json' }, '{"name":', 400, 'body', /is not valid JSON/],
      [
        { 'content-type': 'application/json', 'content-encoding': 'compress' },
        '{}',
        415,
        'content-encoding',
        /./,
      ],
      [
        { 'content-type': 'application/json' },
        JSON.stringify({ name: 'x'.repeat(70_000) }),
        413,
        'body',
        /./,
      ],
    ];
    for (const [headers, rawBody, status, field, issue] of refusals) {
      const response = await cp.request('PATCH', path, {
        rawBody,
        headers: headers as Record<string, string>,
      });
      expect(response.status, rawBody.slice(0, 20)).toBe(status);
      expect(json(response)).toMatchObject({
        error: { details: [{ field, issue: expect.stringMatching(issue) }] },
      });
    }
    expect((await cp.allEvents()).length).toBe(before);
  });
});

describe('text PostgreSQL cannot store', () => {
  // Regression test: U+0000 or an unpaired surrogate in a tenant's settings reached PostgreSQL (500).
  it('is refused with 400 naming the field, and nothing is appended', async () => {
    const before = (await cp.allEvents()).length;
    const bodies = [
      '{"name":"nul","subdomain":"nul","settings":{"service_jwks":[{"kty":"RSA\\u0000"}]}}',
      '{"name":"key","subdomain":"key","settings":{"service_jwks":[{"k\\u0000":"x"}]}}',
      '{"name":"lone \\ud800 surrogate","subdomain":"lone"}',
      '{"name":"a\\udc00","subdomain":"lone-low"}',
    ];
    for (const rawBody of bodies) {
      const response = await cp.request('POST', '/api/v1/tenants', {
        rawBody,
        headers: { 'content-type': 'application/json' },
      });
      expect(response.status, rawBody).toBe(400);
      expect(json(response)).toMatchObject({
        error: { code: 'validation_failed', details: [{ field: expect.any(String) }] },
      });
    }
    const query = await cp.request('GET', '/api/v1/audit-log?actor=a%00b');
    expect(query.status).toBe(400);
    expect((await cp.allEvents()).length).toBe(before);
    // A well-formed pair (an emoji) is text like any other.
    const emoji = await cp.request('POST', '/api/v1/tenants', {
      body: { name: 'rocket 🚀', subdomain: 'rocket' },
    });
    expect(emoji.status).toBe(201);
  });
});

describe('headers and parameters', () => {
  it('answers a malformed If-Match, Idempotency-Key or X-Min-Position with 400, a stale If-Match with 412', async () => {
    const tenant = await cp.request('POST', '/api/v1/tenants', { body: { name: 'hdr', subdomain: 'hdr' } });
    const id = json(tenant)['id'] as string;
    for (const ifMatch of ['', 'abc', ' "0" x', '*, "0"', '"0", abc', '"0",,']) {
      const response = await cp.request('PATCH', `/api/v1/tenants/${id}`, {
        body: { name: 'x' },
        headers: { 'If-Match': ifMatch },
      });
      expect(response.status, JSON.stringify(ifMatch)).toBe(400);
      expect(json(response)).toMatchObject({ error: { details: [{ field: 'if-match' }] } });
    }
    const stale = await cp.request('PATCH', `/api/v1/tenants/${id}`, {
      body: { name: 'x' },
      headers: { 'If-Match': '"7"' },
    });
    expect(stale.status).toBe(412);
    const key = await cp.request('POST', '/api/v1/tenants', {
      body: { name: 'k', subdomain: 'k' },
      headers: { 'Idempotency-Key': 'has space' },
    });
    expect(key.status).toBe(400);
    expect((await cp.request('GET', '/api/v1/tenants', { headers: { 'X-Min-Position': '' } })).status).toBe(
      400,
    );
  });

  // Regression test: list items carried no revision, so a client acting on a listed item (the console's
  // delete, revoke and rotate buttons) sent no If-Match and deleted what someone else had just changed.
  it('lists each item with its revision, the ETag a command on the item as listed sends as If-Match', async () => {
    const created = await cp.request('POST', '/api/v1/tenants', {
      body: { name: 'lst', subdomain: 'listed' },
    });
    const tenant = json(created)['id'] as string;
    const origin = await cp.request('POST', '/api/v1/origins', {
      body: { tenant_id: tenant, name: 'o', url: 'https://o.example.com' },
    });
    const path = `/api/v1/origins/${json(origin)['id'] as string}`;
    const listed = async (after: { headers: Headers }) => {
      const list = await cp.request('GET', `/api/v1/origins?tenant_id=${tenant}`, {
        headers: { 'X-Min-Position': after.headers.get('x-event-position')! },
      });
      expect(list.status, JSON.stringify(list.body)).toBe(200);
      return (json(list)['data'] as Array<{ revision: string }>)[0]!;
    };
    const first = await listed(origin);
    const read = await cp.request('GET', path);
    expect(read.headers.get('etag')).toBe(`"${first.revision}"`);

    const renamed = await cp.request('PATCH', path, { body: { name: 'renamed elsewhere' } });
    expect(renamed.status).toBe(200);
    const before = (await cp.allEvents()).length;
    const stale = await cp.request('DELETE', path, { headers: { 'If-Match': `"${first.revision}"` } });
    expect(stale.status).toBe(412);
    expect((await cp.allEvents()).length).toBe(before);

    const current = await listed(renamed);
    expect(current.revision).not.toBe(first.revision);
    const deleted = await cp.request('DELETE', path, { headers: { 'If-Match': `"${current.revision}"` } });
    expect(deleted.status).toBe(204);
  });

  // Regression test: `If-Match: *` and a list of ETags were 400, and `W/"n"` matched revision n
  // although If-Match compares entity-tags strongly (RFC 9110 §13.1.1), so a weak tag never matches.
  it('answers If-Match as RFC 9110 says: * or a list naming the current ETag proceeds, a weak tag never matches', async () => {
    const tenant = await cp.request('POST', '/api/v1/tenants', { body: { name: 'ifm', subdomain: 'ifm' } });
    const path = `/api/v1/tenants/${json(tenant)['id'] as string}`;
    const patch = (ifMatch: string, name: string) =>
      cp.request('PATCH', path, { body: { name }, headers: { 'If-Match': ifMatch } });
    const any = await patch('*', 'any');
    expect(any.status).toBe(200);
    expect(any.headers.get('etag')).toBe('"1"');
    const listed = await patch('"7", "1"', 'listed');
    expect(listed.status).toBe(200);
    expect(listed.headers.get('etag')).toBe('"2"');
    const before = (await cp.allEvents()).length;
    for (const weak of ['W/"2"', '"7", W/"2"']) {
      const response = await patch(weak, 'weak');
      expect(response.status, weak).toBe(412);
      expect(json(response)).toMatchObject({ error: { code: 'precondition_failed' } });
    }
    expect((await cp.allEvents()).length).toBe(before);
    expect((await cp.request('DELETE', path, { headers: { 'If-Match': '*' } })).status).toBe(204);
    // Nothing current to match: the 404 the request gets without If-Match (RFC 9110 §13.2.1).
    for (const method of ['PATCH', 'DELETE']) {
      const gone = await cp.request(method, path, { body: { name: 'gone' }, headers: { 'If-Match': '*' } });
      expect(gone.status, method).toBe(404);
      expect(json(gone)).toMatchObject({ error: { code: 'not_found', details: [{ field: 'id' }] } });
    }
  });

  // Regression test: only the exact string `"n"` got a 304; the weak form a compressing proxy hands
  // clients (nginx's gzip makes `"n"` `W/"n"`), a list of tags and `*` were answered 200 with the body.
  it('answers If-None-Match naming the current ETag with 304, in any form RFC 9110 allows', async () => {
    const tenant = await cp.request('POST', '/api/v1/tenants', { body: { name: 'inm', subdomain: 'inm' } });
    const id = json(tenant)['id'] as string;
    const position = tenant.headers.get('x-event-position') as string;
    const current = await cp.request('GET', `/api/v1/tenants/${id}`, {
      headers: { 'X-Min-Position': position },
    });
    expect(current.headers.get('etag')).toBe('"0"');
    for (const ifNoneMatch of ['"0"', 'W/"0"', '"7", "0"', '"7",W/"0"', '*']) {
      const response = await cp.request('GET', `/api/v1/tenants/${id}`, {
        headers: { 'If-None-Match': ifNoneMatch },
      });
      expect(response.status, ifNoneMatch).toBe(304);
      expect(response.headers.get('etag')).toBe('"0"');
      expect(response.body).toBeNull();
    }
    for (const ifNoneMatch of ['"7"', 'W/"7", "70"', '0', '"0']) {
      const response = await cp.request('GET', `/api/v1/tenants/${id}`, {
        headers: { 'If-None-Match': ifNoneMatch },
      });
      expect(response.status, ifNoneMatch).toBe(200);
      expect(json(response)['id']).toBe(id);
    }
  });

  it('pages with the cursor it hands out', async () => {
    for (const subdomain of ['page-a', 'page-b']) {
      await cp.request('POST', '/api/v1/tenants', { body: { name: subdomain, subdomain } });
    }
    const head = await cp.store.headPosition();
    const first = await cp.request('GET', '/api/v1/tenants?limit=1', {
      headers: { 'X-Min-Position': String(head) },
    });
    const cursor = json(first)['next_cursor'] as string;
    expect(cursor).toMatch(/^[0-9]+$/);
    const next = await cp.request('GET', `/api/v1/tenants?limit=1&cursor=${cursor}`);
    expect(next.status).toBe(200);
    expect(json(next)['data']).not.toEqual(json(first)['data']);
    expect((await cp.request('GET', '/api/v1/tenants?cursor=bm9wZQ')).status).toBe(400);
  });

  // Regression test: `limit` was read as JavaScript reads a number, so 0x10, 1e1 and +5 were pages of
  // 16, 10 and 5 where the document says a decimal integer.
  it('reads limit only as a decimal integer from 1 to 200, on every list', async () => {
    for (const path of ['/api/v1/tenants', '/api/v1/routes', '/api/v1/audit-log']) {
      for (const limit of ['0x10', '1e1', '%2B5', '%205', '5.0', '0', '201', '1&limit=2']) {
        const response = await cp.request('GET', `${path}?limit=${limit}`);
        expect(response.status, `${path} ${limit}`).toBe(400);
        expect(json(response)).toMatchObject({
          error: { code: 'validation_failed', details: [{ field: 'limit' }] },
        });
      }
      for (const limit of ['1', '007', '200']) {
        expect((await cp.request('GET', `${path}?limit=${limit}`)).status, `${path} ${limit}`).toBe(200);
      }
    }
  });

  // Regression test: a time with an offset PostgreSQL does not know (+18:32) gave a 500.
  it('reads audit-log time bounds with any ISO-8601 offset, and an empty range finds nothing', async () => {
    const odd = await cp.request('GET', '/api/v1/audit-log?from=2026-01-24T07:50:55%2B18:32');
    expect(odd.status).toBe(200);
    const empty = await cp.request(
      'GET',
      '/api/v1/audit-log?from=2030-01-01T00:00:00Z&to=2020-01-01T00:00:00Z',
    );
    expect(empty.status).toBe(200);
    expect(json(empty)['data']).toEqual([]);
  });
});

describe('the API reference', () => {
  it('serves /docs with the Scalar reference bundled in the page, reading /openapi.json', async () => {
    const docs = await cp.request('GET', '/docs', { token: null });
    expect(docs.status).toBe(200);
    expect(docs.headers.get('content-type')).toMatch(/^text\/html/);
    const page = String(docs.body);
    expect(page).toContain('Scalar.createApiReference');
    expect(page).toContain('"url":"/openapi.json"');
    expect(page.length).toBeGreaterThan(1_000_000);
    expect(page).not.toMatch(/<script[^>]+src=/);
  });
});

describe('the internal-listener mark', () => {
  // Regression: a tenant whose origin named the control plane read its /metrics and /readyz through a
  // gateway. Every answer is marked, and gateways never relay a marked answer (see the gateway's
  // proxy/internal-listeners.int.test.ts).
  it('is on every answer: probes, metrics, documents, errors, 401s, 404s and 405s', async () => {
    const answers = await Promise.all([
      cp.request('GET', '/healthz', { token: null }),
      cp.request('GET', '/metrics', { token: null }),
      cp.request('GET', '/openapi.json', { token: null }),
      cp.request('GET', '/api/v1/tenants', { token: null }),
      cp.request('GET', '/no-such-path', { token: null }),
      cp.request('POST', '/healthz', { token: null }),
      cp.request('GET', '/api/v1/tenants'),
    ]);
    expect(answers.map((answer) => answer.headers.get(INTERNAL_LISTENER_HEADER))).toEqual(
      answers.map(() => 'control-plane'),
    );
  });
});

/** One request written as `head` on a connection of its own; its answer's status, headers and body. */
function rawExchange(head: string): Promise<{ status: number; head: string; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(new URL(cp.baseUrl).port), '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString();
      const end = text.indexOf('\r\n\r\n');
      resolve({
        status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0),
        head: text.slice(0, end),
        body: text.slice(end + 4),
      });
    });
    // Not ended: the admin API takes a half-closed connection for a client gone (Connection: close ends it).
    socket.write(head);
  });
}

describe('a request target in absolute form', () => {
  // Regression: express read no path of an absolute target and answered its HTML 404, without the
  // internal-listener mark; one Clerk's middleware could not make a URL of was answered 400 with no
  // body. A client behind a forward proxy sends absolute form, which a server must accept.
  it('is served as its path, its authority standing for Host', async () => {
    const port = new URL(cp.baseUrl).port;
    const answer = await rawExchange(
      `GET http://127.0.0.1:${port}/api/v1/tenants?limit=1 HTTP/1.1\r\nHost: ignored.example\r\n` +
        `Authorization: Bearer ${cp.adminToken}\r\nConnection: close\r\n\r\n`,
    );
    expect(answer.status, answer.head + answer.body).toBe(200);
    expect(JSON.parse(answer.body)).toMatchObject({ data: expect.any(Array) });
  });

  it.each([
    ['with user information', 'https://user:pw@127.0.0.1:8080/api/v1/tenants'],
    ['with a port no URL has', 'https://127.0.0.1:99999/api/v1/tenants'],
    ['with an unclosed IPv6 literal', 'http://[::1/api/v1/tenants'],
    ['of another scheme', 'ftp://127.0.0.1/api/v1/tenants'],
    ['in asterisk form', '*'],
  ])('is refused 400 naming the request target when written %s', async (_label, target) => {
    const answer = await rawExchange(
      `POST ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${cp.adminToken}\r\n` +
        'Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}',
    );
    expect(answer.status, answer.head + answer.body).toBe(400);
    expect(JSON.parse(answer.body)).toMatchObject({
      error: { code: 'validation_failed', details: [{ field: 'request-target' }] },
    });
    expect(answer.head.toLowerCase()).toContain(`${INTERNAL_LISTENER_HEADER.toLowerCase()}: control-plane`);
  });
});
