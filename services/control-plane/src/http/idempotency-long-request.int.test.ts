import type { EventStore } from '@vantageedge/shared/event-store/port';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ApiResponse,
  type ControlPlaneHarness,
  json,
  startControlPlane,
} from '../testing/control-plane-harness.js';

/**
 * Regression test: a request held its Idempotency-Key for a fixed lock (30 s) however long it ran. A
 * config apply of many steps (or one that first waited for its tenant's lock, or met a slow store) ran
 * past it; the client's retry took the key over, found the steps applied so far and answered 409
 * idempotency_answer_lost ("applied"), and the apply's remaining steps were refused: a half-applied
 * config that the CLI reported as applied. A running request now renews its lock.
 */
/** Renewed every second. */
const LOCK_SECONDS = 3;
let cp: ControlPlaneHarness;
/** Runs after the app appends an event of this type, before the append returns to the command. */
const afterAppend = new Map<string, () => Promise<void>>();
/** Lets a request held at a slow step go on (also when a test fails, so the control plane can close). */
let letOn = () => {};

beforeAll(async () => {
  cp = await startControlPlane({
    idempotencyLockSeconds: LOCK_SECONDS,
    wrapStore: (store: EventStore): EventStore => ({
      ...store,
      appendToStream: async (stream, events, options) => {
        const result = await store.appendToStream(stream, events, options);
        for (const event of events) {
          const hook = afterAppend.get(event.type);
          afterAppend.delete(event.type);
          await hook?.();
        }
        return result;
      },
      readStream: (stream, options) => store.readStream(stream, options),
      readAll: (options) => store.readAll(options),
      subscribeToAll: (options) => store.subscribeToAll(options),
      headPosition: () => store.headPosition(),
      reservationHolder: (value) => store.reservationHolder(value),
      close: () => store.close(),
    }),
  });
});
afterAll(async () => {
  letOn();
  await cp?.close();
});

const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  cp.request('POST', path, { body, headers });
const idOf = (response: ApiResponse) => json(response)['id'] as string;
const errorOf = (response: ApiResponse) => json(response)['error'] as { code: string };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves once PostgreSQL's clock is past `until` (a lock's end read from the key's row). */
async function pastInDatabase(until: Date): Promise<void> {
  for (;;) {
    const { rows } = await cp.db.pool.query<{ past: boolean }>('select now() > $1 as past', [until]);
    if (rows[0]?.past) return;
    await sleep(100);
  }
}

describe('Idempotency-Key of a request running longer than its lock', () => {
  it('a config apply slower than the lock: a retry meanwhile is told to come back, then gets the whole answer', async () => {
    const tenant = { name: 'Slow apply', subdomain: 'slow-apply' };
    const tenantId = idOf(await post('/api/v1/tenants', tenant));
    const document = {
      tenant,
      origins: [{ name: 'o', url: 'https://o.example.com' }],
      routes: ['/a/*', '/b/*', '/c/*'].map((path_pattern) => ({
        origin: 'o',
        path_pattern,
        auth_mode: 'public',
      })),
    };
    const apply = () =>
      post(`/api/v1/tenants/${tenantId}/config/apply`, document, { 'idempotency-key': 'slow-apply-1' });

    // The first route is created, then the store is slow: the apply stays there until the test lets it on.
    let reached!: () => void;
    const atSlowStep = new Promise<void>((resolve) => {
      reached = resolve;
    });
    const slowStep = new Promise<void>((resolve) => {
      letOn = resolve;
    });
    afterAppend.set('RouteCreated', async () => {
      reached();
      await slowStep;
    });
    const first = apply();
    await atSlowStep;

    // Well past the lock the claim took: a retry now must not take the key over.
    const { rows } = await cp.db.pool.query<{ locked_until: Date }>(
      'select locked_until from control_plane_idempotency_keys where key = $1',
      ['slow-apply-1'],
    );
    await pastInDatabase(new Date(rows[0]!.locked_until.getTime() + LOCK_SECONDS * 1000));
    const retry = await apply();
    expect(retry.status, JSON.stringify(retry.body)).toBe(409);
    expect(errorOf(retry).code).toBe('conflict');
    expect(Number(retry.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);

    letOn();
    const answered = await first;
    expect(answered.status, JSON.stringify(answered.body)).toBe(200);
    expect(json(answered)['changes']).toHaveLength(4);

    const later = await apply();
    expect(later.status, JSON.stringify(later.body)).toBe(200);
    expect(later.headers.get('idempotent-replayed')).toBe('true');
    expect(later.body).toEqual(answered.body);
    // Nothing half-applied: every route of the document is there, and planning it again changes nothing.
    const created = (await cp.allEvents()).filter(
      (event) => event.type === 'RouteCreated' && event.metadata.tenant_id === tenantId,
    );
    expect(created).toHaveLength(3);
    const plan = await post(`/api/v1/tenants/${tenantId}/config/plan`, document);
    expect(plan.status, JSON.stringify(plan.body)).toBe(200);
    expect(json(plan)['changes']).toEqual([]);
  }, 60_000);
});
