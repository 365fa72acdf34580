import type { RouteConfig } from '@vantageedge/shared/domain/gateway-config';
import { MAX_ROUTE_CONNECT_TIMEOUTS_PER_ORIGIN } from '@vantageedge/shared/domain/route-policies';
import { invalid } from './errors.js';

/** What of a route decides which origins' targets get its connect_ms. */
export type RouteConnects = Pick<RouteConfig, 'origin_id' | 'traffic_split' | 'timeouts'>;

/** The keys of the origins a route's requests go to (its own, its traffic split's), by default their ids. */
type OriginKeys<Route> = (route: Route) => Iterable<string>;

export function routeOriginIds(route: RouteConnects): string[] {
  const split = route.traffic_split;
  const ids = split ? [...split.origins, ...split.overrides].map((entry) => entry.origin_id) : [];
  return route.origin_id === null ? ids : [route.origin_id, ...ids];
}

/** Each origin's distinct connect_ms values over `routes`. */
function connectTimeoutsByOrigin<Route extends Pick<RouteConfig, 'timeouts'>>(
  routes: Iterable<Route>,
  originKeys: OriginKeys<Route>,
): Map<string, Set<number>> {
  const byOrigin = new Map<string, Set<number>>();
  for (const route of routes) {
    const ms = route.timeouts?.connect_ms;
    if (ms === undefined) continue;
    for (const key of originKeys(route)) {
      const values = byOrigin.get(key);
      if (values === undefined) byOrigin.set(key, new Set([ms]));
      else values.add(ms);
    }
  }
  return byOrigin;
}

/**
 * The routes sending to each origin use at most MAX_ROUTE_CONNECT_TIMEOUTS_PER_ORIGIN connect_ms values
 * once `route` is made: a gateway applies no more to one origin's targets. Only growing an origin past
 * it is refused (`before`: the tenant's live routes now), so a tenant over it from before can still
 * change its routes. 400 naming `field`.
 */
export function requireAppliedConnectTimeout<Route extends Pick<RouteConfig, 'timeouts'>>(
  before: readonly Route[],
  after: readonly Route[],
  route: Route,
  field: string,
  originKeys: OriginKeys<Route>,
): void {
  const ms = route.timeouts?.connect_ms;
  if (ms === undefined) return;
  const now = connectTimeoutsByOrigin(before, originKeys);
  const next = connectTimeoutsByOrigin(after, originKeys);
  requireOriginsWithinLimit(now, next, originKeys(route), ms, field);
}

/** Each of `keys` (the origins of a route with connect_ms `ms`) within the limit in `next`, or as far over as in `now`. */
function requireOriginsWithinLimit(
  now: ReadonlyMap<string, ReadonlySet<number>>,
  next: ReadonlyMap<string, ReadonlySet<number>>,
  keys: Iterable<string>,
  ms: number,
  field: string,
): void {
  for (const key of keys) {
    const values = next.get(key);
    if (values === undefined || values.size <= MAX_ROUTE_CONNECT_TIMEOUTS_PER_ORIGIN) continue;
    if (values.size <= (now.get(key)?.size ?? 0)) continue;
    const used = [...values].filter((value) => value !== ms).sort((a, b) => a - b);
    throw invalid(
      `the routes of origin ${key} would use ${values.size} different connect_ms values, the most a gateway applies to one origin is ${MAX_ROUTE_CONNECT_TIMEOUTS_PER_ORIGIN}: use one of ${used.join(', ')}`,
      field,
    );
  }
}

/** A config document's route: it names its origin by `origin` (a name) or `origin_id`. */
type DocumentRoute = Omit<RouteConnects, 'origin_id'> & {
  readonly origin_id?: string | null | undefined;
  readonly origin?: string | undefined;
};

/**
 * A config document's routes, with the live routes it leaves as they are (`kept`), against the tenant's
 * routes now (`current`), as requireAppliedConnectTimeout judges one route: the field is the entry that
 * takes an origin past the limit. An origin named is the document's entry of that name (its id, when it
 * gives one), else the tenant's live origin of that name.
 */
export function requireDocumentConnectTimeoutsApplied(
  document: {
    readonly origins: ReadonlyArray<{ readonly id?: string | undefined; readonly name: string }>;
    readonly routes: readonly DocumentRoute[];
  },
  current: {
    readonly origins: ReadonlyArray<{ readonly id: string; readonly name: string }>;
    readonly routes: readonly RouteConnects[];
  },
  kept: readonly RouteConnects[] = [],
): void {
  const liveByName = new Map(current.origins.map((origin) => [origin.name, origin.id]));
  const named = new Map(
    document.origins.map((origin) => [origin.name, origin.id ?? liveByName.get(origin.name)]),
  );
  const originKeys = (route: DocumentRoute): string[] => {
    const own =
      route.origin_id ??
      (route.origin === undefined ? null : (named.get(route.origin) ?? `named ${route.origin}`));
    return routeOriginIds({ ...route, origin_id: own });
  };
  // The document's routes counted in one by one, each judged as the routes so far make it: once each,
  // not the whole count again per route (a document of 1,000 split routes held the thread 1.3 s).
  const now = connectTimeoutsByOrigin(current.routes, routeOriginIds);
  const next = connectTimeoutsByOrigin(kept, routeOriginIds);
  for (const [index, route] of document.routes.entries()) {
    const ms = route.timeouts?.connect_ms;
    if (ms === undefined) continue;
    const keys = originKeys(route);
    for (const key of keys) {
      const values = next.get(key);
      if (values === undefined) next.set(key, new Set([ms]));
      else values.add(ms);
    }
    requireOriginsWithinLimit(now, next, keys, ms, `routes.${index}.timeouts.connect_ms`);
  }
}
