import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * Symfony and Laravel, Express's method-override (`methodOverride('_method')`), Scalatra and Akka HTTP
 * take a POST's method from its `_method` query parameter, as others take it from X-HTTP-Method-Override:
 * the gateway chose the route, and its auth, by the request's own method.
 */
let gateway: TestGateway;
let origin: TestOrigin;

beforeAll(async () => {
  origin = await startTestOrigin('comments');
  gateway = await startTestGateway();
  const originId = randomUUID();
  gateway.store.apply(
    buildSnapshot({
      subdomain: 'methodquery',
      origins: [{ id: originId, targets: [origin.url] }],
      routes: [
        // Anyone may comment; deleting one takes a key.
        { origin_id: originId, path_pattern: '/comments/*', methods: ['POST'] },
        {
          origin_id: originId,
          path_pattern: '/comments/*',
          methods: ['DELETE'],
          auth_mode: 'apikey_required',
        },
      ],
    }),
  );
});

afterAll(async () => {
  await gateway?.close();
  await origin?.close();
});

const host = 'methodquery.localhost';

describe('a `_method` query parameter', () => {
  it('never reaches the origin, in any spelling an origin reads as it', async () => {
    for (const [query, forwarded] of [
      ['?_method=DELETE', ''],
      ['?page=2&_method=DELETE', '?page=2'],
      ['?%5Fmethod=DELETE&page=2', '?page=2'],
      ['?.method=DELETE', ''],
      ['?_METHOD=DELETE', ''],
      ['?page=2;_method=DELETE', '?page=2'],
    ] as const) {
      const answer = await send(gateway, host, `/comments/5${query}`, { method: 'POST', body: 'x' });
      expect(answer.status, query).toBe(200);
      expect(origin.seen.at(-1)?.url, query).toBe(`/comments/5${forwarded}`);
    }
  });

  it('leaves every other query byte for byte', async () => {
    for (const query of ['?a=%20&&b=1;c', '?method=x&_methods=y&x_method=z', '?']) {
      await send(gateway, host, `/comments/5${query}`, { method: 'POST', body: 'x' });
      expect(origin.seen.at(-1)?.url, query).toBe(`/comments/5${query}`);
    }
  });
});
