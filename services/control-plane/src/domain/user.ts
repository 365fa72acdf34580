import type { UserRole, UserState } from '@vantageedge/shared/domain/events';
import { reservation } from '@vantageedge/shared/domain/events';
import {
  type Decider,
  type Decision,
  DomainError,
  type Lifecycle,
  lifecycleEvolve,
  live,
} from './decision.js';

export type User = Lifecycle<UserState>;

/**
 * One member of a tenant. Members live in their tenant's stream (domain/tenant.ts): the tenant decider
 * hands each member command to this decider with `otherOwners`, how many owners the tenant has besides
 * this user, counted from the tenant's own state, so the last-owner rule needs no other read.
 */
export type UserCommand =
  | { type: 'CreateUser'; user: UserState }
  | { type: 'ChangeUserRole'; role: UserRole; otherOwners: number }
  | { type: 'DeleteUser'; otherOwners: number };

const LAST_OWNER = 'a tenant keeps at least one owner: add another owner first';

function decide(command: UserCommand, state: User): Decision {
  switch (command.type) {
    case 'CreateUser': {
      if (state.status !== 'absent') throw new DomainError('conflict', 'user already exists');
      const { user } = command;
      return {
        events: [{ type: 'UserCreated', data: user }],
        reservations: { claim: [reservation.tenantUser(user.tenant_id, user.clerk_user_id)] },
      };
    }
    case 'ChangeUserRole': {
      const current = live(state, 'user').data;
      if (current.role === command.role) return { events: [] };
      if (current.role === 'owner' && command.otherOwners === 0) {
        throw new DomainError('conflict', LAST_OWNER, 'role');
      }
      return {
        events: [
          { type: 'UserRoleChanged', data: { ...current, role: command.role, changed_fields: ['role'] } },
        ],
      };
    }
    case 'DeleteUser': {
      const current = live(state, 'user').data;
      if (current.role === 'owner' && command.otherOwners === 0)
        throw new DomainError('conflict', LAST_OWNER);
      return {
        events: [{ type: 'UserDeleted', data: { user_id: current.user_id, tenant_id: current.tenant_id } }],
        reservations: { release: [reservation.tenantUser(current.tenant_id, current.clerk_user_id)] },
      };
    }
  }
}

export const userDecider: Decider<User, UserCommand> = {
  initialState: () => ({ status: 'absent' }),
  evolve: lifecycleEvolve({ created: 'UserCreated', changed: 'UserRoleChanged', deleted: 'UserDeleted' }),
  decide,
};
