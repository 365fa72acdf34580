import { randomUUID } from 'node:crypto';
import { StoreUnavailableError } from '@vantageedge/shared/postgres/lost-connections';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DomainError } from '../domain/errors.js';
import { createConfigChangeLock } from './config-change-lock.js';

/**
 * The lock that runs one config apply or rollback of a tenant at a time, against the real PostgreSQL:
 * two locks over two pools of one database are two control-plane processes.
 */

let db: TestDatabase;
let otherPool: pg.Pool;

beforeAll(async () => {
  db = await createTestDatabase();
  otherPool = new pg.Pool({ connectionString: db.url, max: 2 });
  otherPool.on('error', () => {});
});
afterAll(async () => {
  await otherPool?.end();
  await db?.drop();
});

/** A promise and the function that settles it. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

const tick = (ms = 100) => new Promise((resolve) => setTimeout(resolve, ms));

describe('config change lock', () => {
  it('runs one change of a tenant at a time across processes, and lets other tenants through', async () => {
    const here = createConfigChangeLock(db.pool);
    const there = createConfigChangeLock(otherPool);
    const tenant = randomUUID();
    const order: string[] = [];
    const release = gate();
    const held = gate();
    const first = here.holding(tenant, async () => {
      order.push('first started');
      held.open();
      await release.opened;
      order.push('first ended');
    });
    await held.opened;
    const second = there.holding(tenant, async () => {
      order.push('second started');
    });
    await there.holding(randomUUID(), async () => {
      order.push('another tenant');
    });
    await tick();
    expect(order).toEqual(['first started', 'another tenant']);

    release.open();
    await Promise.all([first, second]);
    expect(order).toEqual(['first started', 'another tenant', 'first ended', 'second started']);
  });

  it('queues a process’s own changes of a tenant, and frees the tenant when a change fails', async () => {
    const lock = createConfigChangeLock(db.pool);
    const tenant = randomUUID();
    let running = 0;
    let most = 0;
    const change = (fail: boolean) =>
      lock.holding(tenant, async () => {
        running += 1;
        most = Math.max(most, running);
        await tick(20);
        running -= 1;
        if (fail) throw new Error('step failed');
      });
    const results = await Promise.allSettled([change(true), change(false), change(true), change(false)]);
    expect(results.map((result) => result.status)).toEqual([
      'rejected',
      'fulfilled',
      'rejected',
      'fulfilled',
    ]);
    expect(most).toBe(1);
  });

  it('answers 409 conflict with Retry-After when the tenant is not free within the wait', async () => {
    const tenant = randomUUID();
    const release = gate();
    const held = gate();
    const first = createConfigChangeLock(db.pool).holding(tenant, async () => {
      held.open();
      await release.opened;
    });
    await held.opened;
    const impatient = createConfigChangeLock(otherPool, 200);
    const refused = await impatient.holding(tenant, async () => 'ran').catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(DomainError);
    expect(refused).toMatchObject({ kind: 'conflict', retryAfterSeconds: 2 });

    release.open();
    await first;
    expect(await impatient.holding(tenant, async () => 'ran')).toBe('ran');
  });

  it('bounds the wait behind the process’s own earlier change too', async () => {
    const lock = createConfigChangeLock(db.pool, 200);
    const tenant = randomUUID();
    const release = gate();
    const held = gate();
    const first = lock.holding(tenant, async () => {
      held.open();
      await release.opened;
    });
    await held.opened;
    const queued = await lock.holding(tenant, async () => 'ran').catch((error: unknown) => error);
    expect(queued).toMatchObject({ kind: 'conflict' });
    release.open();
    await first;
    expect(await lock.holding(tenant, async () => 'ran')).toBe('ran');
  });

  // Regression test: every tenant's change held a PostgreSQL connection of its own, however many
  // tenants changed at once; their admins together could take all of the database's connections.
  it('holds at most CONFIG_CHANGES_AT_ONCE connections for all tenants; the rest wait their turn', async () => {
    const lock = createConfigChangeLock(db.pool, 1000, 2);
    const release = gate();
    const bothRunning = [gate(), gate()];
    const held = bothRunning.map((running) =>
      lock.holding(randomUUID(), async () => {
        running.open();
        await release.opened;
      }),
    );
    // On a loaded machine two connections can take longer than any fixed pause; wait for both.
    await Promise.all(bothRunning.map((running) => running.opened));
    const third = lock.holding(randomUUID(), async () => 'ran').catch((error: unknown) => error);
    // Its own tenant runs nothing: the answer says the process is busy, not that tenant.
    expect(await third).toMatchObject({ kind: 'conflict', retryAfterSeconds: 2 });
    expect(((await third) as Error).message).toMatch(
      /^the control plane is running as many config changes as it may at once \(2, of every tenant\)/,
    );

    const waiting = lock.holding(randomUUID(), async () => 'ran');
    await tick(50);
    release.open();
    await Promise.all(held);
    expect(await waiting).toBe('ran');
  });

  // Regression test: PostgreSQL releases a session's advisory lock when the session ends, and the change
  // holding it ran on regardless: killing the lock's backend let another process's apply of the same
  // tenant start while the first kept appending its steps, both planned from the same config.
  it('stops a change at its next step once its lock’s connection is lost, as another change takes the lock', async () => {
    const tenant = randomUUID();
    const order: string[] = [];
    const killed = gate();
    const held = gate();
    const first = createConfigChangeLock(db.pool).holding(tenant, async (lock) => {
      held.open();
      await killed.opened;
      await lock?.assertHeld();
      order.push('first: next step');
    });
    await held.opened;
    const { rows } = await otherPool.query<{ ended: boolean }>(
      `select pg_terminate_backend(pid, 5000) as ended from pg_locks
        where locktype = 'advisory' and granted and classid = $1::bigint::oid
          and database = (select oid from pg_database where datname = current_database())`,
      [0x5645_4343],
    );
    expect(rows.map((row) => row.ended)).toEqual([true]);
    const second = createConfigChangeLock(otherPool).holding(tenant, async () => {
      order.push('second: started');
    });
    await second;
    killed.open();
    const outcome = await first.then(
      () => 'finished',
      (error: unknown) => error,
    );
    expect(order).toEqual(['second: started']);
    expect(outcome).toBeInstanceOf(StoreUnavailableError);
  });
});
