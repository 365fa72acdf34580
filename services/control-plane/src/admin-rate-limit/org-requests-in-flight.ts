import type { RequestHandler } from 'express';
import { isOrgAdminRole } from '../auth/authorize.js';
import type { Caller } from '../auth/caller.js';
import { callerOf } from '../auth/caller-middleware.js';
import { releaseWhenAnswered } from './in-flight-counter.js';
import { createInFlightLimit, enterWithinReadersShare } from './in-flight-limit.js';

/**
 * An organisation's admins reach its own tenant (its Clerk org's) and every other tenant they are
 * admins or members of: each of them within their own CONTROL_PLANE_USER_REQUESTS_IN_FLIGHT and each
 * tenant within CONTROL_PLANE_TENANT_REQUESTS_IN_FLIGHT, three of them on three tenants could still
 * hold every connection of the pool all organisations share. So the requests of the callers acting as
 * one Clerk organisation (the session token's active org, which Clerk signs only for its members) have
 * at most `max` running at once on a replica, whichever tenants they act on, reads and commands alike.
 *
 * A caller with no active organisation is an organisation of one, held by the per-caller limit. A
 * platform admin's requests are not the organisation's (the operator is never locked out by a tenant's
 * load): the per-caller limit holds them. Counted from when the body is read until the handler answers,
 * and while a tenant document's access check (which runs before its body is read) reads the event log.
 *
 * The members acting without the organisation's admin role (read access to its tenant, whatever they
 * may do elsewhere) hold at most `readersShareOf(max)` of its places together: a member may have as many
 * requests in flight as the organisation has places, and one member's slow reads (a leaked token's)
 * would otherwise leave the organisation's admins no place to revoke a key or roll back. A member whom
 * the tenant's user list makes its owner or admin writes it as the admins do: once the members' share is
 * full, `writesOrgTenant` is asked (a lookup, so only then) and such a member takes one of the rest.
 */
export const DEFAULT_ORG_REQUESTS_IN_FLIGHT = 8;

/** A limit on the places many callers share: a middleware, and the same place taken for a while. */
export interface SharedPlaces {
  /** Holds the request's place from here until its handler answers (429 past the limit). */
  readonly middleware: RequestHandler;
  /** Takes the caller's place now (429 past the limit): the function that gives it back. */
  enter(caller: Caller): () => void;
}

/** The same, where taking a place may have to look the caller up first. */
export interface OrgPlaces {
  readonly middleware: RequestHandler;
  enter(caller: Caller): Promise<() => void>;
}

/** Whether a caller without its organisation's admin role writes the organisation's tenant all the same. */
export type WritesOrgTenant = (caller: Caller) => Promise<boolean>;

const NO_PLACE = () => {};

export function limitOrgRequestsInFlight(
  max: number,
  writesOrgTenant: WritesOrgTenant = async () => false,
): OrgPlaces {
  const enterOrg = createInFlightLimit(max, {
    relation: 'of',
    noun: 'organisation',
    field: 'org_requests_in_flight',
    setting: 'CONTROL_PLANE_ORG_REQUESTS_IN_FLIGHT',
  });
  const enterAsMember = enterWithinReadersShare(enterOrg, max, {
    message: 'too many requests of this organisation running at once: retry in 1 s',
    field: 'org_requests_in_flight',
    issue: (share) =>
      `at most ${share} requests of one organisation's members without its admin role at once (the rest of CONTROL_PLANE_ORG_REQUESTS_IN_FLIGHT is for its admins)`,
  });
  // One lookup of a member at a time: its requests refused in a loop cost one read at once, not one each.
  const lookingUp = new Set<string>();
  const enterAsWriter = async (caller: Caller, orgId: string, refused: unknown): Promise<() => void> => {
    const member = `${orgId} ${caller.userId}`;
    if (lookingUp.has(member)) throw refused;
    lookingUp.add(member);
    try {
      if (!(await writesOrgTenant(caller))) throw refused;
    } finally {
      lookingUp.delete(member);
    }
    return enterOrg(orgId);
  };
  /** The caller's place: at once, or once a member refused the members' share is looked up. */
  const enterNow = (caller: Caller): (() => void) | Promise<() => void> => {
    if (max === 0 || caller.orgId === null || caller.isPlatformAdmin) return NO_PLACE;
    if (isOrgAdminRole(caller.orgRole)) return enterOrg(caller.orgId);
    try {
      return enterAsMember(caller.orgId);
    } catch (refused) {
      return enterAsWriter(caller, caller.orgId, refused);
    }
  };
  return {
    enter: async (caller) => enterNow(caller),
    middleware(_req, res, next) {
      const release = enterNow(callerOf(res));
      if (typeof release === 'function') {
        if (release !== NO_PLACE) releaseWhenAnswered(res, release);
        next();
        return;
      }
      return release.then((entered) => {
        releaseWhenAnswered(res, entered);
        next();
      });
    },
  };
}
