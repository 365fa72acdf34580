import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ApiResponse,
  type ControlPlaneHarness,
  json,
  startControlPlane,
} from '../testing/control-plane-harness.js';

/**
 * A JSON object naming a member twice (`{"name":"a","name":"b"}`) was read by JSON.parse, which keeps
 * the last value silently, while a reviewer, a policy tool or a log may show the first. Every admin
 * body is refused with a 400 naming the repeated member by its path, and nothing is appended; a body
 * in another encoding than UTF-8 (which the check could read otherwise than the parser) is a 415.
 */
let cp: ControlPlaneHarness;
let tenantId = '';
let originId = '';
let routeId = '';

beforeAll(async () => {
  cp = await startControlPlane({ withReadSide: true });
  tenantId = json(
    await cp.request('POST', '/api/v1/tenants', { body: { name: 'Dup', subdomain: 'repeated-names' } }),
  )['id'] as string;
  originId = json(
    await cp.request('POST', '/api/v1/origins', {
      body: { tenant_id: tenantId, name: 'o', url: 'http://127.0.0.1:9' },
    }),
  )['id'] as string;
  routeId = json(
    await cp.request('POST', '/api/v1/routes', {
      body: { tenant_id: tenantId, origin_id: originId, path_pattern: '/kept/*', auth_mode: 'public' },
    }),
  )['id'] as string;
});
afterAll(async () => {
  await cp?.close();
});

const sendRaw = (method: string, path: string, text: string) =>
  cp.request(method, path, { rawBody: text, headers: { 'content-type': 'application/json' } });

/** 400 validation_failed naming `field` as named twice, with no event appended. */
async function expectRefused(field: string, send: () => Promise<ApiResponse>): Promise<void> {
  const before = await cp.store.headPosition();
  const response = await send();
  const body = json(response);
  expect(response.status, JSON.stringify(body).slice(0, 300)).toBe(400);
  const error = body['error'] as { code: string; details: Array<{ field: string; issue: string }> };
  expect(error.code).toBe('validation_failed');
  expect(error.details).toEqual([{ field, issue: expect.stringContaining('more than once') }]);
  expect(await cp.store.headPosition()).toBe(before);
}

describe('admin bodies naming a member twice: 400 naming it', () => {
  it('a top-level member: POST /api/v1/origins', async () => {
    await expectRefused('url', () =>
      sendRaw(
        'POST',
        '/api/v1/origins',
        `{"tenant_id":"${tenantId}","name":"twice","url":"http://127.0.0.1:9","url":"http://127.0.0.1:10"}`,
      ),
    );
  });

  it('a member of a nested object: a route whose cors names allow_origins twice', async () => {
    await expectRefused('cors.allow_origins', () =>
      sendRaw(
        'PATCH',
        `/api/v1/routes/${routeId}`,
        '{"cors":{"allow_origins":["https://a.example.com"],"allow_origins":["*"]}}',
      ),
    );
  });

  it('a member of an object inside an array: a route header rule naming `exact` twice', async () => {
    await expectRefused('match.headers.1.exact', () =>
      sendRaw(
        'PATCH',
        `/api/v1/routes/${routeId}`,
        '{"match":{"headers":[{"name":"x-a","exact":"1"},{"name":"x-b","exact":"1","exact":"2"}]}}',
      ),
    );
  });

  it('names that differ only by an escape: "name" and "na\\u006de"', async () => {
    await expectRefused('name', () =>
      sendRaw(
        'POST',
        '/api/v1/tenants',
        '{"name":"First","subdomain":"escaped-twice","na\\u006de":"Second"}',
      ),
    );
  });

  it('a config apply whose document names a route member twice, and its plan', async () => {
    await cp.readModelsCaughtUp();
    const read = await cp.request('GET', `/api/v1/tenants/${tenantId}/config/document`);
    expect(read.status).toBe(200);
    const document = json(read)['document'] as { routes: Array<{ path_pattern: string }> };
    const field = `routes.${document.routes.findIndex((route) => route.path_pattern === '/kept/*')}.path_pattern`;
    const text = JSON.stringify(document).replace(
      '"path_pattern":"/kept/*"',
      '"path_pattern":"/kept/*","path_pattern":"/moved/*"',
    );
    expect(text).toContain('"/moved/*"');
    await expectRefused(field, () => sendRaw('POST', `/api/v1/tenants/${tenantId}/config/apply`, text));
    await expectRefused(field, () => sendRaw('POST', `/api/v1/tenants/${tenantId}/config/plan`, text));
  });

  it('keeps accepting the same bodies with each member named once', async () => {
    const patched = await sendRaw(
      'PATCH',
      `/api/v1/routes/${routeId}`,
      '{"cors":{"allow_origins":["https://a.example.com"]},"match":{"headers":[{"name":"x-b","exact":"2"}]}}',
    );
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
  });

  it('still answers a body that is not JSON as such, whatever it repeats', async () => {
    const response = await sendRaw('POST', '/api/v1/tenants', '{"name":"a","name":"b",}');
    expect(response.status).toBe(400);
    expect((json(response)['error'] as { details: unknown }).details).toEqual([
      { field: 'body', issue: 'is not valid JSON' },
    ]);
  });
});

describe('admin bodies in another encoding than UTF-8', () => {
  it('UTF-16 is refused with 415 naming the content type, and nothing is appended', async () => {
    const before = await cp.store.headPosition();
    const text = `{"tenant_id":"${tenantId}","name":"u16","url":"http://127.0.0.1:9","url":"http://127.0.0.1:10"}`;
    const response = await fetch(`${cp.baseUrl}/api/v1/origins`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${cp.adminToken}`,
        'content-type': 'application/json; charset=utf-16le',
      },
      body: Buffer.from(text, 'utf16le'),
    });
    const body = (await response.json()) as { error: { code: string; details: Array<{ field: string }> } };
    expect(response.status).toBe(415);
    expect(body.error.code).toBe('unsupported_media_type');
    expect(body.error.details.map((detail) => detail.field)).toEqual(['content-type']);
    expect(await cp.store.headPosition()).toBe(before);
  });
});
