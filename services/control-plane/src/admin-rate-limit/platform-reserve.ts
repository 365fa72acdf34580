import { ADMIN_POOL_SIZE } from '../admin-pool.js';
import type { Caller } from '../auth/caller.js';
import { callerOf } from '../auth/caller-middleware.js';
import { rateLimited } from '../domain/errors.js';
import { releaseWhenAnswered } from './in-flight-counter.js';
import type { SharedPlaces } from './org-requests-in-flight.js';

/**
 * The per-caller, per-tenant and per-organisation limits bound what one of each holds of the pool, not
 * what many of them hold together: admins of several tenants acting without an organisation, or several
 * busy organisations, could still take every connection, and then a platform admin (come to suspend the
 * tenant behind it) and /readyz waited for one like everybody else. So every caller but the platform
 * admins together has at most `max` requests running at once on a replica: the rest of the pool is the
 * operator's.
 *
 * Within `max`, the last quarter of the places goes only to a caller who has nothing running, nor has its
 * organisation: the organisations already busy cannot take every place, and one that comes meanwhile is
 * answered rather than refused. The caller counts apart from its organisation: its token's active org is
 * its own choice among its memberships (and any user may create organisations), so a busy caller acting
 * as one organisation after another would otherwise take every last place.
 */
export const DEFAULT_REQUESTS_IN_FLIGHT = ADMIN_POOL_SIZE - 4;

export function reservePoolForPlatformAdmins(max: number): SharedPlaces {
  const newcomersOnly = max - Math.floor(max / 4);
  const running = new Map<string, number>();
  let total = 0;
  const enter = (caller: Caller): (() => void) => {
    if (max === 0 || caller.isPlatformAdmin) return NO_PLACE;
    const units = unitsOf(caller);
    const busy = units.some((unit) => running.has(unit));
    if (total >= max || (busy && total >= newcomersOnly)) {
      throw rateLimited(
        'admin_rate_limited',
        'the admin API is busy: retry in 1 s',
        'requests_in_flight',
        `at most ${max} requests of tenant admins at once, the last ${max - newcomersOnly} for callers and organisations with none running (CONTROL_PLANE_REQUESTS_IN_FLIGHT)`,
        1,
      );
    }
    for (const unit of units) running.set(unit, (running.get(unit) ?? 0) + 1);
    total += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      total -= 1;
      for (const unit of units) {
        const left = (running.get(unit) ?? 1) - 1;
        if (left === 0) running.delete(unit);
        else running.set(unit, left);
      }
    };
  };
  return {
    enter,
    middleware(_req, res, next) {
      const release = enter(callerOf(res));
      if (release !== NO_PLACE) releaseWhenAnswered(res, release);
      next();
    },
  };
}

const NO_PLACE = () => {};

/** The caller, and the organisation it acts as (if any): a newcomer has nothing running in either. */
function unitsOf(caller: Caller): string[] {
  const user = `user:${caller.userId}`;
  return caller.orgId === null ? [user] : [user, `org:${caller.orgId}`];
}
