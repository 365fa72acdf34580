import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../testing/postgres.js';
import { metadata } from '../contract.js';
import type { RecordedEvent } from '../port.js';
import { PostgresEventStore } from './postgres-event-store.js';

const WRITERS = 16;
const EVENTS_PER_WRITER = 1_250; // 20,000 events in all

/**
 * The global-position guarantee under real concurrency: 16 connections append single events while
 * a reader follows with readAll from its last position, and a subscription follows too. Any
 * position that became visible after a larger one would be skipped by both; any duplicate or
 * reordering would show in the sequence they collected.
 */
describe('PostgreSQL readAll under 16 concurrent writers', () => {
  let database: TestDatabase;
  let pool: pg.Pool;
  let store: PostgresEventStore;

  beforeAll(async () => {
    database = await createTestDatabase();
    pool = new pg.Pool({ connectionString: database.url, max: WRITERS + 4 });
    store = new PostgresEventStore({ pool });
  });
  afterAll(async () => {
    await store?.close();
    await pool?.end();
    await database?.drop();
  });

  it('a following reader and a subscription see every event exactly once, in position order', async () => {
    const total = WRITERS * EVENTS_PER_WRITER;
    let writersDone = false;

    const writers = Array.from({ length: WRITERS }, async (_, writer) => {
      const stream = `writer-${writer}`;
      for (let seq = 0; seq < EVENTS_PER_WRITER; seq++) {
        await store.appendToStream(
          stream,
          [{ type: 'Written', data: { writer, seq }, metadata: metadata() }],
          {
            expectedRevision: seq === 0 ? 'no_stream' : BigInt(seq - 1),
          },
        );
      }
    });

    const followed: RecordedEvent[] = [];
    const follower = (async () => {
      let checkpoint = 0n;
      let readsWhileWriting = 0;
      for (;;) {
        const finished = writersDone; // read after the writers finished to be sure to see the tail
        const batch = await store.readAll({ fromPosition: checkpoint, maxCount: 200 });
        if (!finished) readsWhileWriting += 1;
        for (const event of batch) {
          followed.push(event);
          checkpoint = event.position;
        }
        if (finished && batch.length === 0) return readsWhileWriting;
      }
    })();

    const subscribed: RecordedEvent[] = [];
    const subscription = store.subscribeToAll();
    const subscriber = (async () => {
      for await (const event of subscription) {
        subscribed.push(event);
        if (subscribed.length === total) break;
      }
    })();

    await Promise.all(writers);
    writersDone = true;
    const readsWhileWriting = await follower;
    await subscriber;

    // The reader really did interleave with the writers rather than reading everything at the end.
    expect(readsWhileWriting).toBeGreaterThan(10);
    for (const seen of [followed, subscribed]) {
      expect(seen).toHaveLength(total);
      // positions 1..total exactly once, in order: no gap, duplicate or reordering
      const gaps = seen.filter((event, index) => event.position !== BigInt(index + 1));
      expect(gaps).toEqual([]);
      // and every writer's events in its own order
      const nextSeq = new Array<number>(WRITERS).fill(0);
      for (const event of seen) {
        const { writer, seq } = event.data as { writer: number; seq: number };
        expect(seq).toBe(nextSeq[writer]);
        expect(event.revision).toBe(BigInt(seq));
        nextSeq[writer] = seq + 1;
      }
      expect(nextSeq).toEqual(new Array<number>(WRITERS).fill(EVENTS_PER_WRITER));
    }
    expect(await store.headPosition()).toBe(BigInt(total));
  }, 300_000);
});
