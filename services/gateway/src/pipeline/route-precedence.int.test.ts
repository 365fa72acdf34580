import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { buildSnapshot, type TestRoute } from '../testing/snapshots.js';

/**
 * Which of two routes that both match a request handles it must follow from the routes alone, never
 * from the order of the snapshot: that order came from the routes' ids, so recreating the same routes
 * (a config document applied to another environment, a route deleted and created again) could change
 * the route a request reached. A route that names its methods is the narrower one (Kong counts a method
 * list as a matching attribute): of two routes for one path, `GET` goes to the route for `GET`.
 */
const HOST = 'precedence.localhost';

/** A route that answers `name` itself, so the answer tells which route handled the request. */
const answering = (name: string, route: Omit<TestRoute, 'origin_id'>): TestRoute => ({
  ...route,
  origin_id: null,
  fixed_response: { status: 200, body: name },
});

const ROUTES: readonly TestRoute[] = [
  answering('orders-any-method', { id: randomUUID(), path_pattern: '/orders' }),
  answering('orders-get', { id: randomUUID(), path_pattern: '/orders', methods: ['GET'] }),
  answering('items-get-post-put', {
    id: randomUUID(),
    path_pattern: '/items/:id',
    methods: ['GET', 'POST', 'PUT'],
  }),
  answering('items-get-head', { id: randomUUID(), path_pattern: '/items/:id', methods: ['GET', 'HEAD'] }),
];

/** The same routes in one snapshot order and in the reverse one. */
const BOTH_SNAPSHOT_ORDERS: Array<[string, readonly TestRoute[]]> = [
  ['one snapshot order', ROUTES],
  ['the other', [...ROUTES].reverse()],
];

describe('of two routes matching a request, the same one handles it whatever the snapshot order', () => {
  let gateway: TestGateway;
  const tenantId = randomUUID();
  let version = 0;

  /** The tenant's routes, in this snapshot order. */
  const serve = (routes: readonly TestRoute[]) => {
    gateway.store.apply(
      buildSnapshot({
        tenantId,
        version: ++version,
        subdomain: 'precedence',
        origins: [],
        routes: [...routes],
      }),
    );
  };
  /** The name of the route that answered. */
  const handler = async (method: string, path: string) => (await send(gateway, HOST, path, { method })).text;

  beforeAll(async () => {
    gateway = await startTestGateway();
  });

  afterAll(async () => {
    await gateway?.close();
  });

  it.each(BOTH_SNAPSHOT_ORDERS)(
    'a route naming the method wins over one for every method (%s)',
    async (_order, routes) => {
      serve(routes);
      expect(await handler('GET', '/orders')).toBe('orders-get');
      expect(await handler('POST', '/orders')).toBe('orders-any-method');
      expect(await handler('DELETE', '/orders')).toBe('orders-any-method');
    },
  );

  it.each(BOTH_SNAPSHOT_ORDERS)(
    'of two method lists, the shorter one wins the methods both name (%s)',
    async (_order, routes) => {
      serve(routes);
      expect(await handler('GET', '/items/7')).toBe('items-get-head');
      expect(await handler('POST', '/items/7')).toBe('items-get-post-put');
    },
  );
});
