import { isControlPlaneEvent, type UserRole } from '@vantageedge/shared/domain/events';
import type { EventStore } from '@vantageedge/shared/event-store/port';
import type pg from 'pg';

const PAGE = 1000;

/**
 * How many live owners a tenant has besides `exceptUserId`, folded from the event store. Users live in
 * their own streams, so this scans the log: fine for rare role changes and removals, and always exact.
 */
export async function countOtherOwners(
  store: EventStore,
  tenantId: string,
  exceptUserId: string,
): Promise<number> {
  const roles = new Map<string, UserRole | null>();
  let from: bigint | undefined;
  for (;;) {
    const page = await store.readAll({
      ...(from !== undefined ? { fromPosition: from } : {}),
      maxCount: PAGE,
    });
    for (const event of page) {
      if (!isControlPlaneEvent(event)) continue;
      switch (event.type) {
        case 'UserAdded':
        case 'UserRoleChanged':
          if (event.data.tenant_id === tenantId) roles.set(event.data.user_id, event.data.role);
          break;
        case 'UserRemoved':
          if (event.data.tenant_id === tenantId) roles.set(event.data.user_id, null);
          break;
        default:
          break;
      }
    }
    if (page.length < PAGE) break;
    from = page.at(-1)?.position;
  }
  let owners = 0;
  for (const [userId, role] of roles) if (role === 'owner' && userId !== exceptUserId) owners++;
  return owners;
}

/**
 * Serialises the role changes and removals of one tenant's users across control-plane instances
 * (a PostgreSQL advisory lock), so two concurrent demotions cannot both see "another owner remains".
 */
export async function withTenantUsersLock<T>(
  pool: pg.Pool,
  tenantId: string,
  fn: () => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('select pg_advisory_lock(hashtextextended($1, 0))', [`tenant_users:${tenantId}`]);
    try {
      return await fn();
    } finally {
      await client.query('select pg_advisory_unlock(hashtextextended($1, 0))', [`tenant_users:${tenantId}`]);
    }
  } finally {
    client.release();
  }
}
