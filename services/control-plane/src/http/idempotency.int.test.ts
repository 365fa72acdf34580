import type { EventMetadata, EventStore } from '@vantageedge/shared/event-store/port';
import { PostgresEventStore } from '@vantageedge/shared/event-store/postgres/postgres-event-store';
import { withConnectionRetry } from '@vantageedge/shared/postgres/lost-connections';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type IdempotencyClaim, IdempotencyStore } from './idempotency.js';
import { SealedJson } from './sealed-json.js';

/**
 * The key store on its own: which attempt holds a key, what a takeover finds, and that only the holder
 * stores an answer or an event.
 */
let database: TestDatabase;
let store: PostgresEventStore;
/** `failScans`: the next scans of the event log fail (as when PostgreSQL goes away mid-scan). */
let failScans = 0;
/** Runs once, after the next scan of the event log read its batch. */
let afterScan: (() => Promise<void>) | null = null;
/** The next takeover commits, and its answer is lost with the connection (it is sent again). */
let loseTakeoverAnswer = false;
let keys: IdempotencyStore;
const CALLER = 'user_a';
const metadata = (overrides: Partial<EventMetadata>): EventMetadata => ({
  actor: CALLER,
  tenant_id: null,
  correlation_id: 'test',
  causation_id: null,
  occurred_at: new Date().toISOString(),
  schema_version: 1,
  ...overrides,
});
const guard = { tenantId: null, platformAdminOnly: false };

beforeAll(async () => {
  database = await createTestDatabase();
  store = new PostgresEventStore({ pool: database.pool });
  const log: Pick<EventStore, 'headPosition' | 'readAll'> = {
    headPosition: () => store.headPosition(),
    readAll: (options) => {
      if (failScans > 0) {
        failScans--;
        return Promise.reject(new Error('PostgreSQL went away'));
      }
      const run = afterScan;
      afterScan = null;
      return store.readAll(options).then(async (batch) => {
        await run?.();
        return batch;
      });
    },
  };
  const query = async (...args: unknown[]) => {
    const result = await (database.pool.query.bind(database.pool) as (...a: unknown[]) => Promise<unknown>)(
      ...args,
    );
    const text = String((args[0] as { text?: unknown } | null)?.text ?? args[0]);
    if (loseTakeoverAnswer && /update control_plane_idempotency_keys\s+set locked_until/.test(text)) {
      loseTakeoverAnswer = false;
      throw new Error('Connection terminated unexpectedly');
    }
    return result;
  };
  const losing = new Proxy(database.pool, {
    get(target, property) {
      if (property === 'query') return query;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  // As the app has it: a statement meeting a lost connection is sent again (repeatable ones as they are).
  keys = new IdempotencyStore(
    withConnectionRetry(losing),
    new SealedJson('test-pepper-0123456789abcdef0123456789'),
    log,
  );
});
afterAll(async () => {
  await store?.close();
  await database?.drop();
});

const lockRunsOut = (key: string) =>
  database.pool.query(
    `update control_plane_idempotency_keys set locked_until = now() - interval '1 second' where key = $1`,
    [key],
  );

function attemptOf(claim: IdempotencyClaim): string {
  if (claim.kind !== 'claimed') throw new Error(`expected a claim, got ${JSON.stringify(claim)}`);
  return claim.attempt;
}

/** An event the caller's command appends under an attempt. */
const appendUnder = (attempt: string, stream: string) =>
  store.appendToStream(stream, [
    { type: 'Numbered', data: {}, metadata: metadata({ actor: CALLER, idempotency_attempt: attempt }) },
  ]);

describe('Idempotency-Key attempts', () => {
  it('an answer sealed before API_KEY_PEPPER changed: 409 idempotency_answer_lost, never a 500', async () => {
    const attempt = attemptOf(await keys.claim(CALLER, 'pepper-rotated', 'h'));
    const issued = { status: 201, headers: {}, body: { key: 'plaintext API key' } };
    await keys.complete(CALLER, 'pepper-rotated', attempt, issued, guard);
    const afterRotation = new IdempotencyStore(
      database.pool,
      new SealedJson('the-new-pepper-0123456789abcdef012345'),
      store,
    );
    const retry = await afterRotation.claim(CALLER, 'pepper-rotated', 'h').catch((error: unknown) => error);
    expect(retry).toMatchObject({
      status: 409,
      code: 'idempotency_answer_lost',
      details: [{ field: 'idempotency-key' }],
    });
  });

  it('an attempt taken over stores no answer: the holder’s is the one replayed', async () => {
    const first = attemptOf(await keys.claim(CALLER, 'slow', 'h'));
    await lockRunsOut('slow');
    const second = attemptOf(await keys.claim(CALLER, 'slow', 'h'));
    await keys.complete(CALLER, 'slow', first, { status: 201, headers: {}, body: { from: 'first' } }, guard);
    const early = await keys.claim(CALLER, 'slow', 'h').catch((error: unknown) => error);
    expect(early).toMatchObject({ status: 409, code: 'conflict' }); // still the second's, in progress
    await keys.complete(
      CALLER,
      'slow',
      second,
      { status: 201, headers: {}, body: { from: 'second' } },
      guard,
    );
    expect(await keys.claim(CALLER, 'slow', 'h')).toMatchObject({
      kind: 'replay',
      response: { body: { from: 'second' } },
    });
  });

  it('an event of an attempt that no longer holds its key is refused (VE423); the holder’s is stored', async () => {
    const first = attemptOf(await keys.claim(CALLER, 'fenced', 'h'));
    await lockRunsOut('fenced');
    const second = attemptOf(await keys.claim(CALLER, 'fenced', 'h'));
    expect(await appendUnder(first, 'fenced-1').catch((error: unknown) => error)).toMatchObject({
      code: 'VE423',
    });
    await expect(appendUnder(second, 'fenced-2')).resolves.toMatchObject({ nextExpectedRevision: 0n });
    await keys.complete(CALLER, 'fenced', second, { status: 204, headers: {}, body: null }, guard);
    // Completed: no attempt of the key may store anything any more.
    expect(await appendUnder(second, 'fenced-3').catch((error: unknown) => error)).toMatchObject({
      code: 'VE423',
    });
    expect(await store.readStream('fenced-1')).toHaveLength(0);
    expect(await store.readStream('fenced-3')).toHaveLength(0);
  });

  it('a takeover that stopped before it looked: the next one still finds the first attempt’s events', async () => {
    const first = attemptOf(await keys.claim(CALLER, 'interrupted', 'h'));
    const stored = await appendUnder(first, 'interrupted-1');
    await lockRunsOut('interrupted');
    // The second request takes the key over, then cannot read the log: it answers an error.
    failScans = 1;
    await expect(keys.claim(CALLER, 'interrupted', 'h')).rejects.toThrow(/went away/);
    await lockRunsOut('interrupted');
    expect(await keys.claim(CALLER, 'interrupted', 'h')).toMatchObject({
      kind: 'replay',
      response: {
        status: 409,
        headers: { 'X-Event-Position': stored.position.toString() },
        body: { error: { code: 'idempotency_answer_lost' } },
      },
    });
  });

  it('a takeover whose answer was lost is sent again: it still finds the first attempt’s events', async () => {
    const first = attemptOf(await keys.claim(CALLER, 'resent', 'h'));
    const stored = await appendUnder(first, 'resent-1');
    await lockRunsOut('resent');
    loseTakeoverAnswer = true;
    expect(await keys.claim(CALLER, 'resent', 'h')).toMatchObject({
      kind: 'replay',
      response: { status: 409, headers: { 'X-Event-Position': stored.position.toString() } },
    });
    expect(loseTakeoverAnswer).toBe(false);
  });

  /** The caller's event undoing an attempt's events (a failed rotation revoking the key it issued). */
  const undo = (attempt: string, stream: string) =>
    store.appendToStream(stream, [
      { type: 'Undone', data: {}, metadata: metadata({ actor: CALLER, idempotency_undoes: attempt }) },
    ]);

  it('an attempt whose events were undone left nothing applied: the request taking the key over runs', async () => {
    const first = attemptOf(await keys.claim(CALLER, 'undone', 'h'));
    await appendUnder(first, 'undone-1');
    await undo(first, 'undone-1');
    await lockRunsOut('undone');
    expect((await keys.claim(CALLER, 'undone', 'h')).kind).toBe('claimed');
  });

  it('an undo stored while the takeover looked: the takeover sees it once its answer is stored, and runs', async () => {
    const first = attemptOf(await keys.claim(CALLER, 'undone-late', 'h'));
    await appendUnder(first, 'undone-late-1');
    await lockRunsOut('undone-late');
    afterScan = async () => {
      await undo(first, 'undone-late-1');
    };
    expect((await keys.claim(CALLER, 'undone-late', 'h')).kind).toBe('claimed');
    expect(afterScan).toBeNull();
  });

  it('an undo of another caller, or of another attempt, leaves the answer lost', async () => {
    const first = attemptOf(await keys.claim(CALLER, 'not-undone', 'h'));
    const stored = await appendUnder(first, 'not-undone-1');
    await store.appendToStream('not-undone-1', [
      { type: 'Undone', data: {}, metadata: metadata({ actor: 'user_b', idempotency_undoes: first }) },
    ]);
    await undo('another-attempt', 'not-undone-1');
    await lockRunsOut('not-undone');
    expect(await keys.claim(CALLER, 'not-undone', 'h')).toMatchObject({
      kind: 'replay',
      response: { status: 409, headers: { 'X-Event-Position': stored.position.toString() } },
    });
  });

  it('another caller’s events under the same attempt id are not taken for the attempt’s', async () => {
    const first = attemptOf(await keys.claim(CALLER, 'other-caller', 'h'));
    await store.appendToStream('not-mine', [
      { type: 'Numbered', data: {}, metadata: metadata({ actor: 'user_b', idempotency_attempt: first }) },
    ]);
    await lockRunsOut('other-caller');
    expect((await keys.claim(CALLER, 'other-caller', 'h')).kind).toBe('claimed');
  });
});

// The two cases hold keys of their own and spend their time waiting for locks: they run side by side.
describe.concurrent('Idempotency-Key lock renewal', () => {
  /** Renewed every second. */
  const SHORT_LOCK_SECONDS = 3;
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  const lockEnd = async (key: string) => {
    const { rows } = await database.pool.query<{ locked_until: Date }>(
      'select locked_until from control_plane_idempotency_keys where key = $1',
      [key],
    );
    return rows[0]!.locked_until;
  };
  /** Resolves once PostgreSQL's clock is past `until`. */
  const pastInDatabase = async (until: Date) => {
    for (;;) {
      const { rows } = await database.pool.query<{ past: boolean }>('select now() > $1 as past', [until]);
      if (rows[0]?.past) return;
      await sleep(100);
    }
  };

  it('a running request keeps its key past its lock; once its renewals stop (its process died) the next request takes the key over and finds its events', async () => {
    const short = new IdempotencyStore(
      database.pool,
      new SealedJson('test-pepper-0123456789abcdef0123456789'),
      store,
      SHORT_LOCK_SECONDS,
    );
    const first = attemptOf(await short.claim(CALLER, 'renewed', 'h'));
    const held = short.hold(CALLER, 'renewed', first);
    const stored = await appendUnder(first, 'renewed-1');
    await pastInDatabase(new Date((await lockEnd('renewed')).getTime() + SHORT_LOCK_SECONDS * 1000));
    expect(await short.claim(CALLER, 'renewed', 'h').catch((error: unknown) => error)).toMatchObject({
      status: 409,
      code: 'conflict',
      headers: { 'Retry-After': expect.stringMatching(/^[1-9]\d*$/) },
    });

    // The process dies: no more renewals, and no answer.
    held.stop();
    await sleep(1000); // a renewal already sent lands
    await pastInDatabase(await lockEnd('renewed'));
    expect(await short.claim(CALLER, 'renewed', 'h')).toMatchObject({
      kind: 'replay',
      response: {
        status: 409,
        headers: { 'X-Event-Position': stored.position.toString() },
        body: { error: { code: 'idempotency_answer_lost' } },
      },
    });
  });

  it('renewals change nothing once the request answered: its answer stays, with its lock', async () => {
    const short = new IdempotencyStore(
      database.pool,
      new SealedJson('test-pepper-0123456789abcdef0123456789'),
      store,
      SHORT_LOCK_SECONDS,
    );
    const attempt = attemptOf(await short.claim(CALLER, 'answered', 'h'));
    const held = short.hold(CALLER, 'answered', attempt);
    await short.complete(CALLER, 'answered', attempt, { status: 201, headers: {}, body: { n: 1 } }, guard);
    const answeredUntil = await lockEnd('answered');
    await sleep(SHORT_LOCK_SECONDS * 1000);
    held.stop();
    expect(await lockEnd('answered')).toEqual(answeredUntil);
    expect(await short.claim(CALLER, 'answered', 'h')).toMatchObject({
      kind: 'replay',
      response: { body: { n: 1 } },
    });
  });
});

describe('Idempotency-Key retention', () => {
  /**
   * Regression: records past their 24 h were only ever overwritten by the same caller reusing the same
   * key, so every key ever used stayed — sealed API key plaintexts included — and the table grew by one
   * row per command for good.
   */
  it('records past 24 hours are deleted by later claims, whoever makes them', async () => {
    const issued = attemptOf(await keys.claim('user_old', 'issue-key', 'h'));
    const answer = { status: 201, headers: {}, body: { key: 've_live_secret' } };
    await keys.complete('user_old', 'issue-key', issued, answer, guard);
    await database.pool.query(
      `update control_plane_idempotency_keys set created_at = now() - interval '25 hours' where caller = $1`,
      ['user_old'],
    );
    const kept = attemptOf(await keys.claim('user_new', 'recent', 'h'));
    await keys.complete('user_new', 'recent', kept, answer, guard);

    await keys.claim(CALLER, 'sweeps', 'h');
    const { rows } = await database.pool.query<{ caller: string }>(
      `select caller from control_plane_idempotency_keys where caller in ('user_old', 'user_new')`,
    );
    expect(rows.map((row) => row.caller)).toEqual(['user_new']);
  });
});
