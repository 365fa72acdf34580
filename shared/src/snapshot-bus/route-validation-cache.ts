import { answeredIssueMessage } from '../domain/credential-headers.js';
import { type RouteConfig, routeConfig } from '../domain/gateway-config.js';
import type { SlicedWork } from '../process/event-loop-slices.js';

/**
 * One route of a decoded snapshot: as JSON.parse made it, and as the schema validated it. `raw` is the
 * validated route itself when the two are the same JSON (a route as the projector writes it: every
 * default written out), so a replica keeps one copy of each route, not two.
 */
interface ValidatedRoute {
  readonly raw: unknown;
  readonly route: RouteConfig;
}

export type RoutesValidation =
  | { ok: true; routes: RouteConfig[] }
  | { ok: false; path: PropertyKey[]; message: string };

/**
 * Each tenant's routes of its last decoded snapshot, so that decoding its next version validates only
 * the routes whose JSON changed: an unchanged route (by id, deep-equal as parsed) is the previous
 * validated object, which also lets the gateway keep its compiled route. Validating a large tenant's
 * 1,000 routes is most of what decoding it costs (~500 ms of blocked event loop), and a version usually
 * changes one route. A route's validation reads nothing but the route (checks across routes and
 * against origins are the gateway's, on the whole snapshot), so a reused result is what validating
 * the route again would give.
 *
 * One per subscription. A tenant's entry is replaced by its next decoded snapshot and dropped with its
 * tombstone: it holds one version's routes of each tenant, as parsed.
 */
export class RouteValidationCache {
  readonly #tenants = new Map<string, ReadonlyMap<string, ValidatedRoute>>();

  /**
   * Validates `raw` (a snapshot's `routes` as parsed), reusing the tenant's last remembered routes; a
   * step per route validated (see runInSlices).
   */
  *validating(tenantId: string, raw: readonly unknown[]): SlicedWork<RoutesValidation> {
    const previous = this.#tenants.get(tenantId);
    const reused = new Set<ValidatedRoute>();
    const routes: RouteConfig[] = [];
    for (const [index, input] of raw.entries()) {
      const id = idOf(input);
      const known = id === undefined ? undefined : previous?.get(id);
      // Each previous route stands for one route at most, as a validation would make one object each.
      if (known !== undefined && !reused.has(known) && sameJson(known.raw, input)) {
        reused.add(known);
        routes.push(known.route);
        continue;
      }
      const parsed = routeConfig.safeParse(input);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        return {
          ok: false,
          path: [index, ...(issue?.path ?? [])],
          message: issue ? answeredIssueMessage(issue) : '',
        };
      }
      routes.push(parsed.data);
      yield;
    }
    return { ok: true, routes };
  }

  /** The tenant's snapshot was decoded: `routes` (validated from `raw`) are compared against next. */
  remember(tenantId: string, raw: readonly unknown[], routes: readonly RouteConfig[]): void {
    const byId = new Map<string, ValidatedRoute>();
    for (const [index, route] of routes.entries()) {
      const input = raw[index];
      // sameJson is an equivalence, so comparing the next version's route with `route` is then the
      // same as comparing it with `input`.
      byId.set(route.id, { raw: sameJson(route, input) ? route : input, route });
    }
    this.#tenants.set(tenantId, byId);
  }

  forget(tenantId: string): void {
    this.#tenants.delete(tenantId);
  }
}

function idOf(input: unknown): string | undefined {
  if (typeof input !== 'object' || input === null) return undefined;
  const id = (input as { id?: unknown }).id;
  return typeof id === 'string' ? id : undefined;
}

/**
 * Deep equality of JSON.parse output, whatever the order of an object's members: the snapshot store
 * (PostgreSQL jsonb) gives them in an order of its own (shorter names first), never the schema's, so
 * an order-sensitive comparison kept every route twice on a replica, as published and as validated.
 * (The order of a map's distinct names, a transform's headers, was already the store's.) Recursion
 * stops where the two differ, and `a` is a route that validated (a few levels deep), so a deeply nested
 * `b` cannot exhaust the stack.
 */
function sameJson(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let index = 0; index < a.length; index++) if (!sameJson(a[index], b[index])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const keysA = Object.keys(a);
  if (keysA.length !== Object.keys(b).length) return false;
  for (const key of keysA) {
    if (!Object.hasOwn(b, key)) return false;
    if (!sameJson((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key])) return false;
  }
  return true;
}
