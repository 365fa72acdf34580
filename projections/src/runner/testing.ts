import { InMemoryEventStore } from '@vantageedge/shared/event-store/in-memory/in-memory-event-store';
import type { ReadAllOptions, RecordedEvent } from '@vantageedge/shared/event-store/port';
import type pg from 'pg';

/**
 * The in-memory event store with reads that take a round trip, as PostgreSQL's do, and that tell which
 * positions a subscription has read (the in-memory store's reads finish before the next macrotask, so
 * a consumer batching what is available never sees a read in flight).
 */
export class RoundTripEventStore extends InMemoryEventStore {
  readonly #positionsRead = new Set<bigint>();

  override async readAll(options: ReadAllOptions = {}): Promise<RecordedEvent[]> {
    await new Promise((resolve) => setTimeout(resolve, 1));
    const events = await super.readAll(options);
    for (const event of events) this.#positionsRead.add(event.position);
    return events;
  }

  /** Resolves once a read has returned the event at `position`. */
  async untilRead(position: bigint): Promise<void> {
    while (!this.#positionsRead.has(position)) await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/**
 * Holds the projection's checkpoint row locked (as another writer's batch does), so the projector's next
 * batch waits in PostgreSQL on its first statement: a batch in flight, as long as the test wants.
 */
export async function holdCheckpoint(
  pool: pg.Pool,
  name: string,
): Promise<{ batchesWaiting(): Promise<number>; release(): Promise<void> }> {
  const client = await pool.connect();
  await client.query('begin');
  await client.query(
    'insert into projection_checkpoints (name, position) values ($1, 0) on conflict (name) do nothing',
    [name],
  );
  await client.query('select position from projection_checkpoints where name = $1 for update', [name]);
  return {
    async batchesWaiting() {
      const { rows } = await pool.query<{ waiting: number }>(
        `select count(*)::int as waiting from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock'
            and query like 'select position from projection_checkpoints%for update'`,
      );
      return rows[0]?.waiting ?? 0;
    },
    async release() {
      await client.query('commit');
      client.release();
    },
  };
}
