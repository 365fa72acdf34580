import { MAX_ROUTE_CONNECT_TIMEOUTS_PER_ORIGIN } from '@vantageedge/shared/domain/route-policies';
import { describe, expect, it } from 'vitest';
import { type RouteConnects, requireDocumentConnectTimeoutsApplied } from './route-connect-timeouts.js';

/**
 * A config document's routes may not take an origin past MAX_ROUTE_CONNECT_TIMEOUTS_PER_ORIGIN distinct
 * connect_ms values (a tenant over it from before may stay so). Each route is judged as the routes
 * before it make the count; the count is made once, not again for each route: a document of 1,000 split
 * routes against a tenant of 900 held the control plane's thread for 1.3 s, every tenant waiting.
 */
const ORIGINS = [
  { id: 'o-1', name: 'one' },
  { id: 'o-2', name: 'two' },
];

const route = (connect_ms: number | undefined, origin = 'one') => ({
  origin,
  traffic_split: null,
  timeouts: connect_ms === undefined ? null : { connect_ms },
});

const liveRoute = (connect_ms: number, origin_id = 'o-1'): RouteConnects =>
  ({ origin_id, traffic_split: null, timeouts: { connect_ms } }) as RouteConnects;

describe("a config document's routes and their origins' connect_ms values", () => {
  it('refuses the first route that takes an origin past the limit, naming its field', () => {
    const within = Array.from({ length: MAX_ROUTE_CONNECT_TIMEOUTS_PER_ORIGIN }, (_, i) => route(1000 + i));
    const document = {
      origins: ORIGINS,
      routes: [...within, route(undefined), route(5000, 'two'), route(9999)],
    };
    expect(() => requireDocumentConnectTimeoutsApplied(document, { origins: ORIGINS, routes: [] })).toThrow(
      expect.objectContaining({
        field: `routes.${MAX_ROUTE_CONNECT_TIMEOUTS_PER_ORIGIN + 2}.timeouts.connect_ms`,
      }),
    );
    // The same values again, or another origin's: within.
    const again = { origins: ORIGINS, routes: [...within, ...within, route(5000, 'two')] };
    expect(() =>
      requireDocumentConnectTimeoutsApplied(again, { origins: ORIGINS, routes: [] }),
    ).not.toThrow();
  });

  it('lets a tenant already past the limit keep as many values, and counts the routes it keeps', () => {
    const live = Array.from({ length: MAX_ROUTE_CONNECT_TIMEOUTS_PER_ORIGIN + 1 }, (_, i) =>
      liveRoute(1000 + i),
    );
    const document = { origins: ORIGINS, routes: live.map((_, i) => route(2000 + i)) };
    expect(() =>
      requireDocumentConnectTimeoutsApplied(document, { origins: ORIGINS, routes: live }),
    ).not.toThrow();
    const kept = [liveRoute(1)];
    expect(() =>
      requireDocumentConnectTimeoutsApplied(document, { origins: ORIGINS, routes: live }, kept),
    ).toThrow(
      expect.objectContaining({
        field: `routes.${MAX_ROUTE_CONNECT_TIMEOUTS_PER_ORIGIN}.timeouts.connect_ms`,
      }),
    );
  });

  it("reads each of the tenant's live routes once, whatever the document's size", () => {
    let reads = 0;
    const live = Array.from({ length: 300 }, () => {
      const counted = { origin_id: 'o-1', traffic_split: null } as unknown as RouteConnects;
      Object.defineProperty(counted, 'timeouts', {
        get: () => {
          reads++;
          return { connect_ms: 1000 };
        },
      });
      return counted;
    });
    const document = { origins: ORIGINS, routes: Array.from({ length: 300 }, () => route(1000)) };
    requireDocumentConnectTimeoutsApplied(document, { origins: ORIGINS, routes: live });
    expect(reads).toBe(live.length);
  });
});
