import { isControlPlaneEvent, type UserState } from '@vantageedge/shared/domain/events';
import type { EventStore } from '@vantageedge/shared/event-store/port';
import { type Members, NO_MEMBERS } from '../domain/tenant.js';
import { type User, userDecider } from '../domain/user.js';

/**
 * Users recorded before users moved into their tenant's stream live in `user-<id>` streams. This
 * version never writes those streams; the tenant aggregate lays them under its own members
 * (domain/tenant.ts) so the last-owner rule counts every owner.
 *
 * An index of them, kept in the process: the first user command reads the log once, later ones only
 * what was appended since (so a control plane of an older version writing such streams during a
 * rolling upgrade is seen too). Logs that never had user streams cost one pass over the log per
 * process, on the first user command.
 */
export interface LegacyUserStreams {
  /** The tenant's members recorded in `user-<id>` streams, as of now. */
  membersOf(tenantId: string): Promise<Members>;
}

const PAGE = 1000;
const LEGACY_STREAM = /^user-/;

export function createLegacyUserStreams(store: EventStore): LegacyUserStreams {
  const tenants = new Map<string, Map<string, User>>();
  let position: bigint | undefined;
  let catchingUp: Promise<void> = Promise.resolve();

  async function readNew(): Promise<void> {
    for (;;) {
      const page = await store.readAll({
        ...(position !== undefined ? { fromPosition: position } : {}),
        maxCount: PAGE,
      });
      for (const event of page) {
        if (!LEGACY_STREAM.test(event.stream) || !isControlPlaneEvent(event)) continue;
        if (
          event.type !== 'UserCreated' &&
          event.type !== 'UserRoleChanged' &&
          event.type !== 'UserDeleted'
        ) {
          continue;
        }
        const users = tenants.get(event.data.tenant_id) ?? new Map<string, User>();
        tenants.set(event.data.tenant_id, users);
        const current = users.get(event.data.user_id) ?? userDecider.initialState();
        users.set(event.data.user_id, userDecider.evolve(current, event));
      }
      const last = page.at(-1);
      if (last) position = last.position;
      if (page.length < PAGE) return;
    }
  }

  return {
    async membersOf(tenantId) {
      // One reader at a time; a caller that arrives while another reads waits for a fresh read.
      catchingUp = catchingUp.then(readNew, readNew);
      await catchingUp;
      const users = tenants.get(tenantId);
      if (!users) return NO_MEMBERS;
      const reservedElsewhere = new Set<string>();
      for (const user of users.values()) {
        // A removal in its own stream released the reservation; a live user's stream still holds it.
        if (user.status === 'active') reservedElsewhere.add((user.data as UserState).clerk_user_id);
      }
      return { byId: new Map(users), reservedElsewhere };
    },
  };
}
