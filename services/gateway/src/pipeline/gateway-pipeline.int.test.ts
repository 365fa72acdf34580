import { randomUUID } from 'node:crypto';
import { hashApiKey } from '@vantageedge/shared/domain/api-key-hash';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  send,
  startTestGateway,
  startTestOrigin,
  TEST_PEPPER,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * The request pipeline against real origins: tenant isolation by host, path normalisation before
 * routing, forwarding headers, errors (404/400/413/431/502/504) and the admin listener's separation.
 */
describe('gateway pipeline', () => {
  let gateway: TestGateway;
  let acmeOrigin: TestOrigin;
  let globexOrigin: TestOrigin;
  const acmeKey = 've_live_acme_admin_key_0000000000000000';
  const acmeId = randomUUID();
  const globexId = randomUUID();

  beforeAll(async () => {
    acmeOrigin = await startTestOrigin('acme');
    globexOrigin = await startTestOrigin('globex');
    gateway = await startTestGateway({ GATEWAY_MAX_BODY_BYTES: '1000', GATEWAY_MAX_HEADER_BYTES: '4096' });
    const acmeOriginId = randomUUID();
    const deadOriginId = randomUUID();
    const slowOriginId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        tenantId: acmeId,
        subdomain: 'acme',
        origins: [
          { id: acmeOriginId, targets: [acmeOrigin.url] },
          { id: deadOriginId, targets: ['http://127.0.0.1:9'] },
          { id: slowOriginId, targets: [acmeOrigin.url], timeout_seconds: 1 },
        ],
        routes: [
          { origin_id: acmeOriginId, path_pattern: '/api/public/*' },
          { origin_id: acmeOriginId, path_pattern: '/api/admin/*', auth_mode: 'apikey_required' },
          { origin_id: acmeOriginId, path_pattern: '/v1/*', strip_prefix: '/v1' },
          { origin_id: acmeOriginId, path_pattern: '/upload', methods: ['POST'] },
          { origin_id: deadOriginId, path_pattern: '/dead/*' },
          { origin_id: slowOriginId, path_pattern: '/slow/*' },
        ],
        apiKeys: [{ key_hash: hashApiKey(TEST_PEPPER, acmeKey), scopes: ['admin'] }],
      }),
    );
    const globexOriginId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        tenantId: globexId,
        subdomain: 'globex',
        origins: [{ id: globexOriginId, targets: [globexOrigin.url] }],
        routes: [{ origin_id: globexOriginId, path_pattern: '/api/public/*' }],
      }),
    );
  });

  afterAll(async () => {
    await gateway?.close();
    await acmeOrigin?.close();
    await globexOrigin?.close();
  });

  describe('tenant resolution', () => {
    it('sends each tenant host to its own origin, whatever the case and port', async () => {
      const acme = await send(gateway, 'ACME.localhost:8000', '/api/public/hello');
      const globex = await send(gateway, 'globex.vantageedge.dev', '/api/public/hello');
      expect(acme.status).toBe(200);
      expect(acme.json()['origin']).toBe('acme');
      expect(globex.json()['origin']).toBe('globex');
    });

    it('answers 404 tenant_not_found for an unknown or removed tenant', async () => {
      const unknown = await send(gateway, 'nobody.localhost', '/api/public/x');
      expect(unknown.status).toBe(404);
      expect(unknown.json()).toEqual({
        error: { code: 'tenant_not_found', message: 'no tenant is served on this host' },
      });
      const temp = randomUUID();
      const originId = randomUUID();
      gateway.store.apply(
        buildSnapshot({
          tenantId: temp,
          subdomain: 'temp',
          origins: [{ id: originId, targets: [acmeOrigin.url] }],
          routes: [{ origin_id: originId, path_pattern: '/*' }],
        }),
      );
      expect((await send(gateway, 'temp.localhost', '/x')).status).toBe(200);
      gateway.store.remove(temp);
      expect((await send(gateway, 'temp.localhost', '/x')).json()).toMatchObject({
        error: { code: 'tenant_not_found' },
      });
    });

    it("never serves another tenant's routes: a key of acme on globex's host is unknown", async () => {
      const response = await send(gateway, 'globex.localhost', '/api/admin/x', {
        headers: { 'x-api-key': acmeKey },
      });
      expect(response.status).toBe(404);
      expect(globexOrigin.seen.some((r) => r.url.includes('admin'))).toBe(false);
    });
  });

  describe('path normalisation before matching', () => {
    it.each([
      '/api/public/../admin/users',
      '/api/public/%2e%2e/admin/users',
      '/api/public/.%2E/admin/users',
      '/api/public/./../../api/admin/users',
      '//api//public/..//admin/users',
    ])('%s cannot reach the admin route without a key', async (path) => {
      const before = acmeOrigin.seen.length;
      const response = await send(gateway, 'acme.localhost', path);
      expect(response.status).toBe(401);
      expect(response.json()).toMatchObject({ error: { code: 'missing_credentials' } });
      expect(acmeOrigin.seen.length).toBe(before);
    });

    it('rejects an encoded slash with 400 instead of guessing what the origin makes of it', async () => {
      const response = await send(gateway, 'acme.localhost', '/api/public%2f..%2fadmin/users');
      expect(response.status).toBe(400);
      expect(response.json()).toMatchObject({ error: { code: 'invalid_path' } });
    });

    it('forwards the normalised path, so the origin sees what was matched', async () => {
      const response = await send(gateway, 'acme.localhost', '/api/public/a/./b/../%7Euser?q=%2e%2e&x=1');
      expect(response.json()['url']).toBe('/api/public/a/~user?q=%2e%2e&x=1');
      const admin = await send(gateway, 'acme.localhost', '/api/public/../admin/users', {
        headers: { 'x-api-key': acmeKey },
      });
      expect(admin.json()['url']).toBe('/api/admin/users');
    });

    it('strips the route prefix before forwarding', async () => {
      expect((await send(gateway, 'acme.localhost', '/v1/users/7')).json()['url']).toBe('/users/7');
      expect((await send(gateway, 'acme.localhost', '/v1')).json()['url']).toBe('/');
    });

    it('answers 404 route_not_found for no match, including a method the route does not list', async () => {
      expect((await send(gateway, 'acme.localhost', '/nothing/here')).json()).toMatchObject({
        error: { code: 'route_not_found' },
      });
      expect((await send(gateway, 'acme.localhost', '/upload')).status).toBe(404);
    });
  });

  describe('forwarding', () => {
    it('sets X-Forwarded-*, Forwarded, X-Request-Id and identity headers; strips spoofed and hop-by-hop ones', async () => {
      const response = await send(gateway, 'acme.localhost', '/api/admin/echo', {
        headers: {
          'x-api-key': acmeKey,
          'x-vantageedge-user-id': 'spoofed',
          'x-vantageedge-tenant-id': globexId,
          'x-forwarded-for': '6.6.6.6',
          connection: 'keep-alive, x-secret-hop',
          'x-secret-hop': 'must not pass',
          'proxy-authorization': 'Basic Zm9vOmJhcg==',
          traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
          'x-request-id': 'client-req-1',
        },
      });
      expect(response.status).toBe(200);
      const headers = response.json()['headers'] as Record<string, string>;
      expect(headers['x-vantageedge-tenant-id']).toBe(acmeId);
      expect(headers['x-vantageedge-auth-kind']).toBe('api_key');
      expect(headers['x-vantageedge-api-key-id']).toMatch(/^[0-9a-f-]{36}$/);
      expect(headers['x-vantageedge-scopes']).toBe('admin');
      expect(headers['x-vantageedge-user-id']).toBeUndefined();
      expect(headers['x-api-key']).toBeUndefined();
      expect(headers['x-secret-hop']).toBeUndefined();
      expect(headers['proxy-authorization']).toBeUndefined();
      expect(headers['x-forwarded-for']).toBe('127.0.0.1');
      expect(headers['x-forwarded-proto']).toBe('http');
      expect(headers['x-forwarded-host']).toBe('acme.localhost');
      expect(headers['forwarded']).toBe('for=127.0.0.1;host="acme.localhost";proto=http');
      expect(headers['host']).toBe(new URL(acmeOrigin.url).host);
      expect(headers['traceparent']).toBe('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
      expect(headers['x-request-id']).toBe('client-req-1');
      expect(response.headers['x-request-id']).toBe('client-req-1');
      // Response side: the origin's hop-by-hop headers do not reach the client.
      expect(response.headers['x-origin']).toBe('acme');
      expect(response.headers['x-origin-secret']).toBeUndefined();
      expect(response.headers['keep-alive']).not.toBe('timeout=42, max=7');
    });

    it('generates a request id when the client sends none or a malformed one', async () => {
      // Logs, traces and the origin get the id: only a short token of plain characters is the client's.
      const malformed = ['bad id with spaces', 'x'.repeat(129), 'a","level":"error', 'a\tb', 'caf\u00e9'];
      for (const id of malformed) {
        const response = await send(gateway, 'acme.localhost', '/api/public/x', {
          headers: { 'x-request-id': id },
        });
        expect(response.headers['x-request-id'], id).toMatch(/^[0-9a-f-]{36}$/);
        expect((response.json()['headers'] as Record<string, string>)['x-request-id']).toBe(
          response.headers['x-request-id'],
        );
      }
    });
  });

  describe('limits and upstream failures', () => {
    it('answers 413 for a declared body over the limit, and for a chunked one that grows past it', async () => {
      const declared = await send(gateway, 'acme.localhost', '/upload', {
        method: 'POST',
        body: 'x'.repeat(1001),
      });
      expect(declared.status).toBe(413);
      expect(declared.json()).toMatchObject({ error: { code: 'payload_too_large' } });
      const small = await send(gateway, 'acme.localhost', '/upload', {
        method: 'POST',
        body: 'x'.repeat(1000),
      });
      expect(small.json()).toMatchObject({ bytes: 1000 });
      const chunked = await send(gateway, 'acme.localhost', '/upload', {
        method: 'POST',
        headers: { 'transfer-encoding': 'chunked' },
        body: 'y'.repeat(5000),
      });
      expect(chunked.status).toBe(413);
    });

    it('answers 431 with the JSON error shape for oversized headers', async () => {
      const response = await send(gateway, 'acme.localhost', '/api/public/x', {
        headers: { 'x-big': 'z'.repeat(5000) },
      });
      expect(response.status).toBe(431);
      expect(response.json()).toMatchObject({ error: { code: 'headers_too_large' } });
    });

    it('answers 502 when the origin refuses the connection', async () => {
      const response = await send(gateway, 'acme.localhost', '/dead/x');
      expect(response.status).toBe(502);
      expect(response.json()).toMatchObject({ error: { code: 'upstream_unreachable' } });
    });

    it("answers 504 when the origin exceeds the origin's timeout", async () => {
      const response = await send(gateway, 'acme.localhost', '/slow/x');
      expect(response.status).toBe(504);
      expect(response.json()).toMatchObject({ error: { code: 'upstream_timeout' } });
    });
  });

  describe('admin listener', () => {
    it('serves health, status and metrics only on the admin port', async () => {
      const metrics = await fetch(`${gateway.adminUrl}/metrics`);
      const text = await metrics.text();
      expect(text).toContain('vantageedge_gateway_request_duration_seconds_bucket');
      expect(text).toContain(`tenant="${acmeId}"`);
      const status = (await (await fetch(`${gateway.adminUrl}/status`)).json()) as {
        tenants: Array<{ tenant_id: string; version: string }>;
      };
      expect(status.tenants.map((t) => t.tenant_id)).toContain(acmeId);
      expect((await fetch(`${gateway.adminUrl}/healthz`)).status).toBe(200);
      // Through a tenant host the same paths are tenant routes, never the admin endpoints.
      const viaTenant = await send(gateway, 'acme.localhost', '/metrics');
      expect(viaTenant.status).toBe(404);
      expect(viaTenant.json()).toMatchObject({ error: { code: 'route_not_found' } });
    });

    it('writes one access-log line per request with tenant, route, status and ids', async () => {
      await send(gateway, 'acme.localhost', '/api/public/logged', {
        headers: { 'x-request-id': 'log-me-1' },
      });
      await new Promise((resolve) => setImmediate(resolve));
      const line = gateway.logLines.find((l) => l['request_id'] === 'log-me-1');
      expect(line).toMatchObject({
        kind: 'access',
        tenant_id: acmeId,
        method: 'GET',
        path: '/api/public/logged',
        status: 200,
        auth: 'anonymous',
      });
      expect(typeof line?.['route_id']).toBe('string');
      expect(typeof line?.['upstream_target']).toBe('string');
    });
  });
});
