import { AsyncLocalStorage } from 'node:async_hooks';
import type { RequestHandler } from 'express';
import type { Authorizer } from '../auth/authorize.js';
import { releaseWhenAnswered } from './in-flight-counter.js';
import { createInFlightLimit, enterWithinReadersShare } from './in-flight-limit.js';

/**
 * A tenant's organisation can have many members, each with their own requests in flight
 * (CONTROL_PLANE_USER_REQUESTS_IN_FLIGHT): together they could still hold every connection of the pool
 * all tenants' admins share. So each tenant also has at most `max` /api/v1 requests acting on it running
 * at once on a replica, whoever sends them.
 *
 * The tenants a request acts on are the ones authorization grants it access to, as for the per-tenant
 * command limit: never a tenant id a client merely names (a request naming another tenant takes none of
 * its places). A platform admin's request acts on the tenant its path, query or body names (no lookup);
 * anyone else's on the tenants of theirs it reads or writes — a listing across all of a caller's tenants
 * on each (a listing of the tenants the caller writes: not on those it only reads). A request is refused
 * as soon as access is granted, before the endpoint's own statements run;
 * it counts until its handler answers. A request on no tenant (creating one, a platform admin's listing
 * of all) is held to the per-caller limit only.
 *
 * The requests of callers with read access only (members, viewers, other org roles, a leaked read-only
 * token) hold at most `readersShareOf(max)` of a tenant's places together: a caller may have as many
 * requests in flight as a tenant has places, and one viewer's slow reads would otherwise leave the
 * tenant's admins and the platform admins no place to revoke a key, purge the cache or roll back.
 */
export const DEFAULT_TENANT_REQUESTS_IN_FLIGHT = 8;

export interface TenantRequestsInFlight {
  /** Opens each request's count: the tenants it is granted access to from here on are held until it is answered. */
  readonly middleware: RequestHandler;
  /** `authorizer`, taking the request a place of each tenant it grants access to (429 past `max`). */
  counting(authorizer: Authorizer): Authorizer;
}

/** The places of tenants one request holds. */
interface RequestPlaces {
  held: Map<string, () => void>;
  answered: boolean;
}

export function limitTenantRequestsInFlight(max: number): TenantRequestsInFlight {
  const enter = createInFlightLimit(max, {
    relation: 'on',
    noun: 'tenant',
    field: 'tenant_requests_in_flight',
    setting: 'CONTROL_PLANE_TENANT_REQUESTS_IN_FLIGHT',
  });
  const enterAsReader = enterWithinReadersShare(enter, max, {
    message: 'too many requests on this tenant running at once: retry in 1 s',
    field: 'tenant_requests_in_flight',
    issue: (share) =>
      `at most ${share} requests of read-only callers on one tenant at once (the rest of CONTROL_PLANE_TENANT_REQUESTS_IN_FLIGHT is for its writers)`,
  });
  const requests = new AsyncLocalStorage<RequestPlaces>();
  return {
    middleware(_req, res, next) {
      if (max === 0) {
        next();
        return;
      }
      const places: RequestPlaces = { held: new Map(), answered: false };
      releaseWhenAnswered(res, () => {
        places.answered = true;
        for (const release of places.held.values()) release();
      });
      requests.run(places, next);
    },
    counting(authorizer) {
      if (max === 0) return authorizer;
      return {
        async access(caller, tenantId, folds, required) {
          const access = await authorizer.access(caller, tenantId, folds, required);
          const places = requests.getStore();
          if (access === 'none' || (required === 'write' && access !== 'write')) return access;
          if (!places || places.answered || places.held.has(tenantId)) return access;
          places.held.set(tenantId, access === 'write' ? enter(tenantId) : enterAsReader(tenantId));
          return access;
        },
      };
    },
  };
}
