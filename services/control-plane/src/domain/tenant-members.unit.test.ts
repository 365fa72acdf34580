import type { UserRole, UserState } from '@vantageedge/shared/domain/events';
import { tenantSettings } from '@vantageedge/shared/domain/gateway-config';
import { describe, expect, it } from 'vitest';
import type { FoldableEvent } from './decision.js';
import { DomainError } from './errors.js';
import {
  type Actor,
  memberOf,
  type Tenant,
  type TenantCommand,
  tenantDecider,
  tenantWithEarlierMembers,
} from './tenant.js';
import { userDecider } from './user.js';

/** Decides and folds commands one after the other, giving each stored event its stream revision. */
function run(state: Tenant, ...commands: TenantCommand[]): Tenant {
  let revision = 0n;
  for (const command of commands) {
    for (const event of tenantDecider.decide(command, state).events) {
      state = tenantDecider.evolve(state, {
        ...event,
        metadata: { occurred_at: '2026-01-01T00:00:00.000Z' },
        revision: revision++,
      } as FoldableEvent);
    }
  }
  return state;
}

const platformAdmin: Actor = { clerkUserId: 'user_platform', isPlatformAdmin: true };
const as = (clerkUserId: string): Actor => ({ clerkUserId, isPlatformAdmin: false });
const user = (id: string, role: UserRole): UserState => ({
  user_id: id,
  tenant_id: 't1',
  clerk_user_id: `user_${id}`,
  email: `${id}@example.com`,
  role,
});

const tenant = run(
  tenantDecider.initialState(),
  {
    type: 'CreateTenant',
    tenant: {
      tenant_id: 't1',
      name: 'acme',
      subdomain: 'acme',
      clerk_org_id: null,
      settings: tenantSettings.parse({}),
    },
  },
  { type: 'CreateUser', user: user('owner', 'owner'), actor: platformAdmin },
  { type: 'CreateUser', user: user('admin', 'admin'), actor: platformAdmin },
  { type: 'CreateUser', user: user('member', 'member'), actor: platformAdmin },
);

const forbiddenRole = expect.objectContaining({ kind: 'forbidden', field: 'role' });

describe('tenant members', () => {
  it('keeps its users in the tenant aggregate, each with its own revision', () => {
    expect(memberOf(tenant, 'admin')).toMatchObject({
      status: 'active',
      data: { role: 'admin' },
      revision: 2n,
    });
    expect(tenant).toMatchObject({ status: 'active', revision: 0n });
  });

  it('claims the user id (how commands find the user) and the Clerk user within the tenant', () => {
    const decision = tenantDecider.decide(
      { type: 'CreateUser', user: user('new', 'viewer'), actor: as('user_admin') },
      tenant,
    );
    expect(decision.reservations).toEqual({ claim: ['user:new', 'tenant_user:t1:user_new'] });
  });

  it('refuses a second membership of the same Clerk user', () => {
    expect(() =>
      tenantDecider.decide(
        {
          type: 'CreateUser',
          user: { ...user('dup', 'viewer'), clerk_user_id: 'user_member' },
          actor: platformAdmin,
        },
        tenant,
      ),
    ).toThrow(expect.objectContaining({ kind: 'conflict', field: 'clerk_user_id' }));
  });

  it('lets only owners and platform admins grant, change or remove the owner role', () => {
    const byAdmin = as('user_admin');
    expect(() =>
      tenantDecider.decide({ type: 'CreateUser', user: user('o2', 'owner'), actor: byAdmin }, tenant),
    ).toThrow(forbiddenRole);
    expect(() =>
      tenantDecider.decide(
        { type: 'ChangeUserRole', userId: 'member', role: 'owner', actor: byAdmin },
        tenant,
      ),
    ).toThrow(forbiddenRole);
    expect(() =>
      tenantDecider.decide(
        { type: 'ChangeUserRole', userId: 'owner', role: 'admin', actor: byAdmin },
        tenant,
      ),
    ).toThrow(forbiddenRole);
    expect(() =>
      tenantDecider.decide({ type: 'DeleteUser', userId: 'owner', actor: byAdmin }, tenant),
    ).toThrow(forbiddenRole);
    // Admins manage everyone else.
    expect(
      tenantDecider.decide(
        { type: 'ChangeUserRole', userId: 'member', role: 'admin', actor: byAdmin },
        tenant,
      ).events,
    ).toHaveLength(1);
    // An owner may grant the role.
    const granted = tenantDecider.decide(
      { type: 'ChangeUserRole', userId: 'member', role: 'owner', actor: as('user_owner') },
      tenant,
    );
    expect(granted.events).toEqual([
      { type: 'UserRoleChanged', data: { ...user('member', 'owner'), changed_fields: ['role'] } },
    ]);
  });

  it('counts owners from its own members: the last one stays, a second one may go', () => {
    expect(() =>
      tenantDecider.decide({ type: 'DeleteUser', userId: 'owner', actor: platformAdmin }, tenant),
    ).toThrow(expect.objectContaining({ kind: 'conflict' }));
    const twoOwners = run(tenant, {
      type: 'ChangeUserRole',
      userId: 'member',
      role: 'owner',
      actor: as('user_owner'),
    });
    expect(
      tenantDecider.decide(
        { type: 'ChangeUserRole', userId: 'owner', role: 'viewer', actor: as('user_member') },
        twoOwners,
      ).events,
    ).toHaveLength(1);
  });

  it('refuses member commands on a deleted tenant and on users that are gone', () => {
    const gone = run(tenant, { type: 'DeleteUser', userId: 'member', actor: platformAdmin });
    expect(() =>
      tenantDecider.decide(
        { type: 'ChangeUserRole', userId: 'member', role: 'admin', actor: platformAdmin },
        gone,
      ),
    ).toThrow(expect.objectContaining({ kind: 'not_found' }));
    const deleted = run(tenant, { type: 'DeleteTenant' });
    expect(() =>
      tenantDecider.decide(
        { type: 'CreateUser', user: user('late', 'viewer'), actor: platformAdmin },
        deleted,
      ),
    ).toThrow(DomainError);
  });

  it('decides on members recorded before users moved into the tenant stream', () => {
    const legacyOwner = userDecider.evolve(userDecider.initialState(), {
      type: 'UserCreated',
      data: user('legacy', 'owner'),
      metadata: { occurred_at: '2025-01-01T00:00:00.000Z' },
      revision: 0n,
    });
    const earlier = tenantWithEarlierMembers({
      byId: new Map([['legacy', legacyOwner]]),
      reservedElsewhere: new Set(['user_legacy']),
    });
    const state = run(
      earlier,
      {
        type: 'CreateTenant',
        tenant: {
          tenant_id: 't1',
          name: 'acme',
          subdomain: 'acme',
          clerk_org_id: null,
          settings: tenantSettings.parse({}),
        },
      },
      { type: 'CreateUser', user: user('owner', 'owner'), actor: as('user_legacy') },
    );
    // The older owner counts: the new one may be demoted by it.
    expect(
      tenantDecider.decide(
        { type: 'ChangeUserRole', userId: 'owner', role: 'admin', actor: as('user_legacy') },
        state,
      ).events,
    ).toHaveLength(1);
    // Removed here, the older user's reservation stays with its old stream: re-adding claims only the id.
    const removed = run(state, { type: 'DeleteUser', userId: 'legacy', actor: as('user_owner') });
    const readded = tenantDecider.decide(
      {
        type: 'CreateUser',
        user: { ...user('again', 'viewer'), clerk_user_id: 'user_legacy' },
        actor: as('user_owner'),
      },
      removed,
    );
    expect(readded.reservations).toEqual({ claim: ['user:again'] });
  });
});
