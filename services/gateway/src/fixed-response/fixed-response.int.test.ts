// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${…} is the route policies' own value-template syntax
import { randomUUID } from 'node:crypto';
import { http2Connect, http2Request } from '@vantageedge/shared/testing/tls-clients';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

/** Routes that answer themselves: maintenance mode and redirects never reach an origin. */
describe('fixed_response and redirect route policies', () => {
  let gateway: TestGateway;
  let origin: TestOrigin;

  beforeAll(async () => {
    origin = await startTestOrigin('never-called');
    gateway = await startTestGateway({ GATEWAY_H2C: 'true' });
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'fixed',
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [
          {
            origin_id: originId,
            path_pattern: '/shop/*',
            fixed_response: {
              status: 503,
              headers: { 'Retry-After': '3600', 'cache-control': 'no-store' },
              body: '<h1>Back soon</h1>',
              content_type: 'text/html; charset=utf-8',
            },
          },
          {
            origin_id: null,
            path_pattern: '/old/*',
            redirect: { status: 308, location: 'https://new.example.com${path}${query}' },
          },
          { origin_id: null, path_pattern: '/home', redirect: { location: 'https://${host}/welcome' } },
          {
            // 2,000 characters of template: each request's path 250 times over.
            origin_id: null,
            path_pattern: '/echo/*',
            redirect: { location: `https://new.example.com${'${path}'.repeat(250)}` },
          },
          {
            origin_id: null,
            path_pattern: '/members/*',
            auth_mode: 'apikey_required',
            fixed_response: { status: 200, body: 'members only' },
          },
          // Stored before commands refused a body for a status without content.
          { origin_id: null, path_pattern: '/gone', fixed_response: { status: 204, body: 'hello' } },
          { origin_id: null, path_pattern: '/reset', fixed_response: { status: 205, body: 'hello' } },
          // Chosen by a request header: an answer a cache keeps for the URL alone would reach the
          // clients that send another value.
          {
            origin_id: null,
            path_pattern: '/catalog/*',
            match: { headers: [{ name: 'X-Api-Version', exact: '1' }] },
            redirect: { status: 308, location: '/v1${path}${query}' },
          },
          {
            origin_id: null,
            path_pattern: '/catalog/*',
            match: { headers: [{ name: 'x-preview', present: false }] },
            fixed_response: { status: 410, headers: { vary: 'Accept' }, body: 'gone' },
          },
          {
            origin_id: null,
            path_pattern: '/catalog/*',
            match: { headers: [{ name: 'x-preview', exact: '1' }] },
            cors: { allow_origins: ['https://app.example'] },
            redirect: { status: 301, location: '/preview${path}' },
          },
          // Stored before commands refused a template that lets the client's path choose the host.
          { origin_id: null, path_pattern: '/away/*', redirect: { location: '/${path}' } },
          { origin_id: null, path_pattern: '/scheme-away/*', redirect: { location: 'http:${path}${query}' } },
          { origin_id: null, path_pattern: '/:site/secure-away', redirect: { location: 'HTTPS:${path}' } },
          { origin_id: null, path_pattern: '/:site/backslash-away', redirect: { location: '/\\${path}' } },
          // Stored before commands refused the gateway's own response headers in a fixed response.
          {
            origin_id: null,
            path_pattern: '/stamped',
            fixed_response: { status: 200, headers: { 'X-Request-Id': 'route-chosen' }, body: 'ok' },
          },
        ],
      }),
    );
  });

  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
  });

  it('answers maintenance mode with its status, Retry-After and body; the origin is never called', async () => {
    const answer = await send(gateway, 'fixed.localhost', '/shop/cart');
    expect(answer.status).toBe(503);
    expect(answer.headers['retry-after']).toBe('3600');
    expect(answer.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(answer.text).toBe('<h1>Back soon</h1>');
    const head = await send(gateway, 'fixed.localhost', '/shop/cart', { method: 'HEAD' });
    expect(head.status).toBe(503);
    expect(head.text).toBe('');
    expect(origin.seen).toHaveLength(0);
  });

  it('redirects with the request path, query and host in the location template', async () => {
    const moved = await send(gateway, 'fixed.localhost', '/old/a/b?x=1&y=%20');
    expect(moved.status).toBe(308);
    expect(moved.headers['location']).toBe('https://new.example.com/old/a/b?x=1&y=%20');
    const home = await send(gateway, 'fixed.localhost:8080', '/home');
    expect(home.status).toBe(302);
    expect(home.headers['location']).toBe('https://fixed.localhost/welcome');
    expect(origin.seen).toHaveLength(0);
  });

  it("never lets a stored template's ${path} choose the host browsers are sent to", async () => {
    // What a browser on either scheme makes of the Location: the host it goes to, or none.
    const hostsGoneTo = (location: string) =>
      ['http://fixed.localhost/', 'https://fixed.localhost/'].map((page) => {
        try {
          return new URL(location, page).host;
        } catch {
          return undefined;
        }
      });
    const slash = await send(gateway, 'fixed.localhost', '/away/x');
    expect(slash.status).toBe(302);
    expect(hostsGoneTo(slash.headers['location'] as string)).toEqual(['fixed.localhost', 'fixed.localhost']);
    expect(slash.headers['location']).toBe('/%2Faway/x');
    const scheme = await send(gateway, 'fixed.localhost', '/scheme-away/x?y=1');
    expect(scheme.status).toBe(302);
    for (const host of hostsGoneTo(scheme.headers['location'] as string)) {
      expect([undefined, 'fixed.localhost']).toContain(host);
    }
    // An @ in the first segment: the slash sent as %2F would be the user name before the host.
    for (const path of ['/@away.example/secure-away', '/:@away.example/backslash-away']) {
      const at = await send(gateway, 'fixed.localhost', path);
      expect(at.status).toBe(302);
      for (const host of hostsGoneTo(at.headers['location'] as string)) {
        expect([undefined, 'fixed.localhost']).toContain(host);
      }
    }
  });

  it("says Vary for the request headers its route's match conditions read (a cache keeps it per value)", async () => {
    const moved = await send(gateway, 'fixed.localhost', '/catalog/items?page=2', {
      headers: { 'x-api-version': '1' },
    });
    expect(moved.status).toBe(308);
    expect(moved.headers['location']).toBe('/v1/catalog/items?page=2');
    expect(moved.headers['vary']).toBe('x-api-version');
    const gone = await send(gateway, 'fixed.localhost', '/catalog/items');
    expect(gone.status).toBe(410);
    expect(gone.headers['vary']).toBe('Accept, x-preview');
    const preview = await send(gateway, 'fixed.localhost', '/catalog/items', {
      headers: { 'x-preview': '1', origin: 'https://app.example' },
    });
    expect(preview.status).toBe(301);
    expect(preview.headers['access-control-allow-origin']).toBe('https://app.example');
    expect(preview.headers['vary']).toBe('x-preview, Origin');
    expect(origin.seen).toHaveLength(0);
  });

  it('answers 414 instead of a Location the request path would make longer than 32 KiB', async () => {
    const path = `/echo/${'a'.repeat(4000)}`;
    const answer = await send(gateway, 'fixed.localhost', path);
    expect(answer.status).toBe(414);
    expect(answer.headers['location']).toBeUndefined();
    expect(JSON.parse(answer.text).error.code).toBe('uri_too_long');
    const short = await send(gateway, 'fixed.localhost', '/echo/b');
    expect(short.status).toBe(302);
    expect(short.headers['location']).toBe(`https://new.example.com${'/echo/b'.repeat(250)}`);
  });

  // HTTP/2 lets a client that does not encode its URL (curl, scripts) send `é` in the query as its
  // UTF-8 bytes C3 A9; node hands each byte over as one character. The Location carries those bytes.
  it('redirects an HTTP/2 query with raw non-ASCII bytes to the same bytes, percent-encoded', async () => {
    const session = http2Connect(gateway.url);
    try {
      const moved = await http2Request(session, {
        authority: 'fixed.localhost',
        path: '/old/menu?dish=caf\u00c3\u00a9&n=1',
      });
      expect(moved.status).toBe(308);
      expect(moved.headers['location']).toBe('https://new.example.com/old/menu?dish=caf%C3%A9&n=1');
    } finally {
      session.close();
    }
  });

  it("keeps the route's authentication in front of its fixed response", async () => {
    expect((await send(gateway, 'fixed.localhost', '/members/x')).status).toBe(401);
  });

  it('answers a stored 204 with a body without it (no Content-Length, nothing after the head)', async () => {
    const answer = await send(gateway, 'fixed.localhost', '/gone');
    expect(answer.status).toBe(204);
    expect(answer.headers['content-length']).toBeUndefined();
    expect(answer.text).toBe('');
  });

  it('answers a stored 205 with a body without it (RFC 9110 §15.3.6: a 205 has no content)', async () => {
    const answer = await send(gateway, 'fixed.localhost', '/reset');
    expect(answer.status).toBe(205);
    expect(answer.text).toBe('');
  });

  it("keeps the gateway's X-Request-Id on a stored fixed response that sets its own", async () => {
    const answer = await send(gateway, 'fixed.localhost', '/stamped', {
      headers: { 'x-request-id': 'client-trace-7' },
    });
    expect(answer.status).toBe(200);
    expect(answer.headers['x-request-id']).toBe('client-trace-7');
    const minted = await send(gateway, 'fixed.localhost', '/stamped');
    expect(minted.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });
});
