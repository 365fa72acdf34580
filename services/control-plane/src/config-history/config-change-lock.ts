import {
  isConnectionError,
  onNewConnection,
  StoreUnavailableError,
} from '@vantageedge/shared/postgres/lost-connections';
import type pg from 'pg';
import { DomainError } from '../domain/errors.js';

/**
 * One config apply or rollback of a tenant at a time, across every control-plane process sharing the
 * database. A change plans from the tenant's config in the event store and counts its document against
 * the tenant's limits; its steps then skip the per-create checks (they may pass through more than both
 * ends). Two changes planned from the same config would each pass and, together, leave the tenant over
 * its limits; run one after the other, each plans from what the one before it left.
 *
 * The lock is a session-level PostgreSQL advisory lock on the tenant, held for the whole change on a
 * connection of its own: not the pool's, whose connections the change's own statements need (a pool
 * of N would deadlock with N tenants changing at once). A process that ends, or loses that connection,
 * releases the lock with it, and another process may then take it: so the work asks `assertHeld`
 * before each of its appends, which fails (503 `store_unavailable`) once the connection is gone, and a
 * change that lost its lock stops at its next step instead of running on beside the next holder.
 * Changes of one tenant in one process first queue here, so each process holds at most one such
 * connection per tenant.
 */
export interface ConfigChangeLock {
  /** Runs `work` holding the tenant's lock; 409 `conflict` when it is not free within the wait. */
  holding<T>(tenantId: string, work: (lock: HeldLock) => Promise<T>): Promise<T>;
}

/** The lock as its holder sees it. */
export interface HeldLock {
  /**
   * Throws StoreUnavailableError when the lock's connection is lost (PostgreSQL released the lock with
   * it, and another change may hold it now); call it before each append the lock protects.
   */
  assertHeld(): Promise<void>;
}

/** How long a change waits for the tenant's previous ones (a large apply takes seconds). */
export const CONFIG_CHANGE_WAIT_MS = 30_000;

/**
 * Changes one process runs at once, all tenants together: each holds a PostgreSQL connection of its
 * own, and the tenants' admins together must not take the database's connections from everyone else.
 */
export const CONFIG_CHANGES_AT_ONCE = 8;

/** The advisory lock's first key: arbitrary, constant ("vantageedge config change"); the second is the tenant's hash. */
export const LOCK_CLASS = 0x5645_4343;
const LOCK_NOT_AVAILABLE = '55P03';

export function createConfigChangeLock(
  pool: pg.Pool,
  waitMs = CONFIG_CHANGE_WAIT_MS,
  atOnce = CONFIG_CHANGES_AT_ONCE,
): ConfigChangeLock {
  const queue = new ProcessQueue();
  const connections = new Slots(atOnce, () => processBusy(atOnce));
  return {
    async holding(tenantId, work) {
      const deadline = Date.now() + waitMs;
      const release = await queue.enter(tenantId, deadline);
      let locked = false;
      let slotTaken = false;
      try {
        await connections.take(deadline);
        slotTaken = true;
        return await onNewConnection(pool, { readOnly: false }, async (client) => {
          const session = await sessionOf(client);
          await lock(client, tenantId, deadline);
          locked = true;
          try {
            return await work(heldOn(client));
          } finally {
            // Closing the connection would release it too, a little later. A connection lost only on
            // this side (a proxy dropped it) leaves its session holding the lock: end that session.
            await client
              .query('select pg_advisory_unlock($1, hashtext($2))', [LOCK_CLASS, tenantId])
              .catch(() => endSession(pool, session));
          }
        });
      } catch (error) {
        // The work's own errors are its own; only taking the lock is this module's.
        if (locked || error instanceof DomainError || !isConnectionError(error)) throw error;
        throw new StoreUnavailableError(`PostgreSQL unavailable: ${String(error)}`, { cause: error });
      } finally {
        if (slotTaken) connections.give();
        release();
      }
    },
  };
}

/** At most `size` holders; the others wait their turn, in order, until their deadline. */
class Slots {
  #free: number;
  readonly #waiting: Array<() => void> = [];
  readonly #refusal: () => Error;

  constructor(size: number, refusal: () => Error) {
    this.#free = size;
    this.#refusal = refusal;
  }

  async take(deadline: number): Promise<void> {
    if (this.#free > 0) {
      this.#free -= 1;
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    let turn!: () => void;
    const given = await new Promise<boolean>((resolve) => {
      turn = () => resolve(true);
      this.#waiting.push(turn);
      timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()));
    });
    clearTimeout(timer);
    if (given) return;
    const at = this.#waiting.indexOf(turn);
    if (at >= 0) this.#waiting.splice(at, 1);
    else this.give(); // handed over as the wait ended: pass it on
    throw this.#refusal();
  }

  give(): void {
    const next = this.#waiting.shift();
    if (next === undefined) this.#free += 1;
    else next();
  }
}

interface Session {
  pid: number;
  started: string;
}

async function sessionOf(client: pg.Client): Promise<Session> {
  const { rows } = await client.query<Session>(
    `select pid, backend_start::text as started from pg_stat_activity where pid = pg_backend_pid()`,
  );
  const session = rows[0];
  if (!session) throw new Error('this connection has no server session in pg_stat_activity');
  return session;
}

/** Ends the session (a pid and its start name one), so its locks go with it; best effort. */
async function endSession(pool: pg.Pool, session: Session): Promise<void> {
  await pool
    .query(
      `select pg_terminate_backend(pid, 5000) from pg_stat_activity
        where pid = $1 and backend_start::text = $2`,
      [session.pid, session.started],
    )
    .catch(() => {});
}

/** The lock held on `client`'s session: it is held while that session lives. */
function heldOn(client: pg.Client): HeldLock {
  let lost = false;
  const lose = () => {
    lost = true;
  };
  client.on('error', lose);
  client.on('end', lose);
  const gone = (cause?: unknown) =>
    new StoreUnavailableError(
      "the connection holding the tenant's config change lock was lost, so another change may run now: " +
        'this one stopped before its next step (the steps before it stay; run it again to finish)',
      cause === undefined ? {} : { cause },
    );
  return {
    async assertHeld() {
      if (lost) throw gone();
      // The 'error' event of a session ended a moment ago may not have arrived yet: ask the session.
      try {
        await client.query('select 1');
      } catch (error) {
        lost = true;
        throw gone(error);
      }
    },
  };
}

async function lock(client: pg.Client, tenantId: string, deadline: number): Promise<void> {
  const waitMs = Math.max(1, deadline - Date.now());
  await client.query("select set_config('lock_timeout', $1, false)", [`${waitMs}ms`]);
  try {
    await client.query('select pg_advisory_lock($1, hashtext($2))', [LOCK_CLASS, tenantId]);
  } catch (error) {
    if ((error as { code?: unknown }).code === LOCK_NOT_AVAILABLE) throw busy();
    throw error;
  }
}

/** Other tenants' changes hold every connection the process gives changes: this tenant runs none. */
function processBusy(atOnce: number): DomainError {
  return new DomainError(
    'conflict',
    `the control plane is running as many config changes as it may at once (${atOnce}, of every tenant); retry in a moment`,
    undefined,
    { retryAfterSeconds: 2 },
  );
}

function busy(): DomainError {
  return new DomainError(
    'conflict',
    'another config apply or rollback of this tenant is still running; retry once it has finished (the next one plans from the config it leaves)',
    undefined,
    { retryAfterSeconds: 2 },
  );
}

/** This process's changes of each tenant, in arrival order. */
class ProcessQueue {
  readonly #tails = new Map<string, Promise<void>>();

  /** Waits for the tenant's earlier changes in this process (until `deadline`); returns this one's release. */
  async enter(tenantId: string, deadline: number): Promise<() => void> {
    const before = this.#tails.get(tenantId) ?? Promise.resolve();
    let finish!: () => void;
    const mine = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const tail = before.then(() => mine);
    this.#tails.set(tenantId, tail);
    const release = () => {
      finish();
      if (this.#tails.get(tenantId) === tail) this.#tails.delete(tenantId);
    };
    let timer: NodeJS.Timeout | undefined;
    const turn = await Promise.race([
      before.then(() => true),
      new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()));
      }),
    ]);
    clearTimeout(timer);
    if (!turn) {
      // Those queued after this one now wait only for the ones before it.
      release();
      throw busy();
    }
    return release;
  }
}
