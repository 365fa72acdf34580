import type { TenantState, UserRole, UserState } from '@vantageedge/shared/domain/events';
import { reservation } from '@vantageedge/shared/domain/events';
import { applyChanges } from './changes.js';
import {
  type Changes,
  type Decider,
  type Decision,
  type FoldableEvent,
  type Lifecycle,
  lifecycleEvolve,
  live,
} from './decision.js';
import { conflict, forbidden } from './errors.js';
import { type User, type UserCommand, userDecider } from './user.js';

/**
 * The tenant aggregate: the tenant itself and its members (users and their roles), in one stream,
 * `tenant-<id>`. Keeping the members here makes the tenant's stream the one place that decides who
 * may administer the tenant: the last-owner rule and "only owners manage owners" are decided on the
 * tenant's own state, and optimistic concurrency on this stream serialises every change to it.
 *
 * Logs written before members moved here keep users in `user-<id>` streams; the command layer lays
 * those members over this state (commands/tenant-members.ts) and never writes those streams again.
 */

export interface Members {
  /** user_id → member, including removed ones (their ids stay taken). */
  readonly byId: ReadonlyMap<string, User>;
  /** Clerk users whose `tenant_user` reservation is still held by a pre-tenant-stream user stream. */
  readonly reservedElsewhere: ReadonlySet<string>;
}

export type Tenant = Lifecycle<TenantState> & { readonly members: Members };

/** Who issues a member command: decides whether they may touch the owner role. */
export interface Actor {
  clerkUserId: string;
  isPlatformAdmin: boolean;
}

export type TenantCommand =
  | { type: 'CreateTenant'; tenant: TenantState }
  | { type: 'UpdateTenant'; changes: Changes<Omit<TenantState, 'tenant_id'>> }
  | { type: 'DeleteTenant' }
  | { type: 'CreateUser'; user: UserState; actor: Actor }
  | { type: 'ChangeUserRole'; userId: string; role: UserRole; actor: Actor }
  | { type: 'DeleteUser'; userId: string; actor: Actor };

export const NO_MEMBERS: Members = { byId: new Map(), reservedElsewhere: new Set() };

type LiveUser = Extract<User, { data: UserState }>;

function liveMembers(state: Tenant): LiveUser[] {
  return [...state.members.byId.values()].filter((user): user is LiveUser => user.status === 'active');
}

/** How many members the tenant has now (removed ones not counted). */
export function liveMemberCount(state: Tenant): number {
  return liveMembers(state).length;
}

/** The live member a Clerk user is in this tenant, if any. */
export function memberByClerkUser(state: Tenant, clerkUserId: string): LiveUser | undefined {
  return liveMembers(state).find((user) => user.data.clerk_user_id === clerkUserId);
}

function owners(state: Tenant, except: string): number {
  return liveMembers(state).filter((user) => user.data.role === 'owner' && user.data.user_id !== except)
    .length;
}

const OWNERS_ONLY =
  'only owners of the tenant (and platform admins) may grant, change or remove the owner role';

function requireOwnerManager(state: Tenant, actor: Actor): void {
  if (actor.isPlatformAdmin) return;
  if (memberByClerkUser(state, actor.clerkUserId)?.data.role === 'owner') return;
  throw forbidden(OWNERS_ONLY, 'role', 'owners only');
}

function member(state: Tenant, userId: string): User {
  return state.members.byId.get(userId) ?? { status: 'absent' };
}

function decideMember(state: Tenant, command: Exclude<TenantCommand, { type: `${string}Tenant` }>): Decision {
  live(state, 'tenant');
  switch (command.type) {
    case 'CreateUser': {
      const { user } = command;
      if (state.members.byId.has(user.user_id)) throw conflict('user already exists');
      if (memberByClerkUser(state, user.clerk_user_id)) {
        throw conflict('this Clerk user is already a user of the tenant', 'clerk_user_id', 'already taken');
      }
      if (user.role === 'owner') requireOwnerManager(state, command.actor);
      const decision = userDecider.decide({ type: 'CreateUser', user }, { status: 'absent' });
      // The Clerk user's reservation may still be held by a pre-tenant-stream user stream of a member
      // removed since; this state already proves the Clerk user is no member, so nothing is claimed.
      const claimTenantUser = !state.members.reservedElsewhere.has(user.clerk_user_id);
      return {
        events: decision.events,
        reservations: {
          claim: [
            reservation.user(user.user_id),
            ...(claimTenantUser ? (decision.reservations?.claim ?? []) : []),
          ],
        },
      };
    }
    case 'ChangeUserRole': {
      const current = live(member(state, command.userId), 'user').data;
      if (current.role !== command.role && (current.role === 'owner' || command.role === 'owner')) {
        requireOwnerManager(state, command.actor);
      }
      const memberCommand: UserCommand = {
        type: 'ChangeUserRole',
        role: command.role,
        otherOwners: owners(state, command.userId),
      };
      return userDecider.decide(memberCommand, member(state, command.userId));
    }
    case 'DeleteUser': {
      const current = live(member(state, command.userId), 'user').data;
      if (current.role === 'owner') requireOwnerManager(state, command.actor);
      return userDecider.decide(
        { type: 'DeleteUser', otherOwners: owners(state, command.userId) },
        member(state, command.userId),
      );
    }
  }
}

function decide(command: TenantCommand, state: Tenant): Decision {
  switch (command.type) {
    case 'CreateTenant': {
      if (state.status !== 'absent') throw conflict('tenant already exists');
      const { tenant } = command;
      return {
        events: [{ type: 'TenantCreated', data: tenant }],
        reservations: {
          claim: [
            reservation.subdomain(tenant.subdomain),
            ...(tenant.clerk_org_id ? [reservation.clerkOrg(tenant.clerk_org_id)] : []),
          ],
        },
      };
    }
    case 'UpdateTenant': {
      const current = live(state, 'tenant').data;
      const { next, changedFields } = applyChanges(current, command.changes);
      if (changedFields.length === 0) return { events: [] };
      const claim: string[] = [];
      const release: string[] = [];
      if (next.subdomain !== current.subdomain) {
        claim.push(reservation.subdomain(next.subdomain));
        release.push(reservation.subdomain(current.subdomain));
      }
      if (next.clerk_org_id !== current.clerk_org_id) {
        if (next.clerk_org_id) claim.push(reservation.clerkOrg(next.clerk_org_id));
        if (current.clerk_org_id) release.push(reservation.clerkOrg(current.clerk_org_id));
      }
      return {
        events: [{ type: 'TenantUpdated', data: { ...next, changed_fields: changedFields } }],
        reservations: { claim, release },
      };
    }
    case 'DeleteTenant': {
      const current = live(state, 'tenant').data;
      // The subdomain and the Clerk org become free for a new tenant.
      return {
        events: [{ type: 'TenantDeleted', data: { tenant_id: current.tenant_id } }],
        reservations: {
          release: [
            reservation.subdomain(current.subdomain),
            ...(current.clerk_org_id ? [reservation.clerkOrg(current.clerk_org_id)] : []),
          ],
        },
      };
    }
    default:
      return decideMember(state, command);
  }
}

const evolveTenant = lifecycleEvolve<TenantState>({
  created: 'TenantCreated',
  changed: 'TenantUpdated',
  deleted: 'TenantDeleted',
});

type MemberEvent = Extract<FoldableEvent, { type: 'UserCreated' | 'UserRoleChanged' | 'UserDeleted' }>;

const isMemberEvent = (event: FoldableEvent): event is MemberEvent =>
  event.type === 'UserCreated' || event.type === 'UserRoleChanged' || event.type === 'UserDeleted';

/** Applies a member's event to `byId` (a copy the caller owns). */
function evolveMember(byId: Map<string, User>, event: MemberEvent): void {
  const userId = event.data.user_id;
  const current = byId.get(userId) ?? { status: 'absent' };
  // Folded without its earlier stream (commands/legacy-user-streams.ts), a user added before users
  // moved here first appears changed; the event carries the user's whole state.
  let next = userDecider.evolve(current, event);
  if (current.status === 'absent' && event.type === 'UserRoleChanged') {
    const { changed_fields: _, ...user } = event.data;
    next = userDecider.evolve(current, { ...event, type: 'UserCreated', data: user });
  }
  byId.set(userId, next);
}

function evolve(state: Tenant, event: FoldableEvent): Tenant {
  return evolveAll(state, [event]);
}

/** The members are copied once for all the events (once per event made folding n members O(n²)). */
function evolveAll(state: Tenant, events: readonly FoldableEvent[]): Tenant {
  let next = state;
  let byId: Map<string, User> | undefined;
  for (const event of events) {
    if (isMemberEvent(event)) {
      byId ??= new Map(state.members.byId);
      evolveMember(byId, event);
    } else {
      next = { ...evolveTenant(next, event), members: next.members };
    }
  }
  return byId === undefined ? next : { ...next, members: { ...next.members, byId } };
}

export const tenantDecider: Decider<Tenant, TenantCommand> &
  Pick<Required<Decider<Tenant, never>>, 'evolveAll'> = {
  initialState: () => ({ status: 'absent', members: NO_MEMBERS }),
  evolve,
  evolveAll,
  decide,
};

/**
 * The state to fold the tenant stream onto when some members were recorded before members moved into
 * it: the stream's own user events then apply on top of them.
 */
export function tenantWithEarlierMembers(earlier: Members): Tenant {
  return { status: 'absent', members: earlier };
}

/** A member of the tenant by user id (absent when it never was one). */
export function memberOf(state: Tenant, userId: string): User {
  return member(state, userId);
}
