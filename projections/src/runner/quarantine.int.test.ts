import { randomBytes, randomUUID } from 'node:crypto';
import type { RecordedEvent } from '@vantageedge/shared/event-store/port';
import { PostgresEventStore } from '@vantageedge/shared/event-store/postgres/postgres-event-store';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCheckpoint } from './checkpoint.js';
import { type ProjectorOptions, startProjector } from './projector.js';
import { createProjectorMetrics } from './projector-metrics.js';

/**
 * The poison-event policy of the projector runner, on a projection of its own: an event its handler
 * cannot apply (not a transient error) used to be retried forever, and no tenant's events moved on.
 * Now it is parked after 3 attempts, with every later event of its tenant, and every other tenant
 * goes on; transient errors are still retried and never parked.
 */
let database: TestDatabase;
let store: PostgresEventStore;

beforeAll(async () => {
  database = await createTestDatabase();
  store = new PostgresEventStore({ pool: database.pool });
  await database.pool.query('create table applied (projection text, position bigint, tenant text)');
});

afterAll(async () => {
  await store.close();
  await database.drop();
});

interface TestData {
  tenant_id?: string;
  /** The handler throws a plain Error for it (a bug, an event it cannot fold). */
  poison?: boolean;
  /** The handler throws this many transient errors (SQLSTATE 57P01) for it, then applies it. */
  transient?: number;
  /** The handler's connection is terminated by the server (pg_terminate_backend) the first time. */
  killConnection?: boolean;
}

async function append(tenantId: string | null, data: TestData = {}): Promise<bigint> {
  const stream = tenantId ? `test-${tenantId}` : `test-platform-${randomUUID()}`;
  const written = await store.appendToStream(stream, [
    {
      type: 'TestHappened',
      data: tenantId ? { tenant_id: tenantId, ...data } : data,
      metadata: {
        actor: 'user_test',
        tenant_id: tenantId,
        correlation_id: randomUUID(),
        causation_id: null,
        occurred_at: new Date().toISOString(),
        schema_version: 1,
      },
    },
  ]);
  return written.position;
}

/** A projection that records each event it applies in `applied`, and fails as its data says. */
function testProjector(name: string, options: Partial<ProjectorOptions<RecordedEvent>> = {}) {
  const calls: Array<readonly bigint[]> = [];
  const transientThrown = new Map<bigint, number>();
  const killed = new Set<bigint>();
  const errors: Array<{ message: string; fields: Record<string, unknown> | undefined }> = [];
  const registry = new Registry();
  const projector = startProjector({
    projection: {
      name,
      async handle(events, { client }) {
        calls.push(events.map((event) => event.position));
        for (const event of events) {
          await client.query('insert into applied (projection, position, tenant) values ($1, $2, $3)', [
            name,
            event.position.toString(),
            event.metadata.tenant_id,
          ]);
        }
        for (const event of events) {
          const data = event.data as TestData;
          if (data.poison) throw new TypeError(`cannot fold event ${event.position}`);
          const thrown = transientThrown.get(event.position) ?? 0;
          if (thrown < (data.transient ?? 0)) {
            transientThrown.set(event.position, thrown + 1);
            throw Object.assign(new Error('terminating connection due to administrator command'), {
              code: '57P01',
            });
          }
          if (data.killConnection && !killed.has(event.position)) {
            killed.add(event.position);
            await client.query('select pg_terminate_backend(pg_backend_pid())');
          }
        }
      },
    },
    store,
    pool: database.pool,
    retryDelayMs: 5,
    logger: { info() {}, warn() {}, error: (message, fields) => errors.push({ message, fields }) },
    metrics: createProjectorMetrics(registry, name),
    ...options,
  });
  return { projector, calls, errors, registry };
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 25_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const reaches = (name: string, position: bigint) => () =>
  until(`checkpoint ${position}`, async () => (await readCheckpoint(database.pool, name)) >= position);

/** What the projection applied after `after` (each test's projection also reads the earlier tests' log). */
async function appliedPositions(name: string, after: bigint): Promise<bigint[]> {
  const { rows } = await database.pool.query<{ position: string }>(
    'select position from applied where projection = $1 and position > $2 order by position',
    [name, after.toString()],
  );
  return rows.map((row) => BigInt(row.position));
}

async function parkedRows(name: string, after: bigint) {
  const { rows } = await database.pool.query<{
    position: string;
    stream: string;
    tenant_id: string | null;
    event_type: string;
    reason: string;
    error: string;
  }>(
    `select position, stream, tenant_id, event_type, reason, error from projection_parked_events
      where projection = $1 and position > $2 order by position`,
    [name, after.toString()],
  );
  return rows.map((row) => ({ ...row, position: BigInt(row.position) }));
}

async function metricValue(registry: Registry, metric: string): Promise<number | undefined> {
  const found = (await registry.getMetricsAsJSON()).find((entry) => entry.name === metric);
  return found?.values[0]?.value;
}

describe('poison events in the projector runner', () => {
  it('parks a failing event and every later event of its tenant; every other tenant goes on', async () => {
    const name = `poison_${randomUUID().slice(0, 8)}`;
    const [a, b] = [randomUUID(), randomUUID()];
    const start = await store.headPosition();
    const a1 = await append(a);
    const b1 = await append(b);
    const bad = await append(a, { poison: true });
    const b2 = await append(b);
    const a2 = await append(a);
    const orphan = await append(null, { poison: true });
    const platform = await append(null);
    const b3 = await append(b);

    let run = testProjector(name);
    let a3 = 0n;
    let b4 = 0n;
    try {
      await reaches(name, b3)();
      expect(await appliedPositions(name, start)).toEqual([a1, b1, b2, platform, b3]);
      const parked = await parkedRows(name, start);
      expect(
        parked.map(({ position, tenant_id, event_type, reason }) => ({
          position,
          tenant_id,
          event_type,
          reason,
        })),
      ).toEqual([
        { position: bad, tenant_id: a, event_type: 'TestHappened', reason: 'failed' },
        { position: a2, tenant_id: a, event_type: 'TestHappened', reason: 'quarantined' },
        { position: orphan, tenant_id: null, event_type: 'TestHappened', reason: 'failed' },
      ]);
      expect(parked[0]?.stream).toBe(`test-${a}`);
      expect(parked[0]?.error).toContain(`cannot fold event ${bad}`);
      expect(parked[1]?.error).toContain(`quarantined since position ${bad}`);
      expect(parked[2]?.error).toContain(`cannot fold event ${orphan}`);
      // Alone, the bad event was tried 3 times before it was parked.
      expect(run.calls.filter((call) => call.length === 1 && call[0] === bad)).toHaveLength(3);
      const lines = run.errors.filter((line) => line.message === 'projector parked an event');
      expect(lines.map((line) => line.fields)).toEqual([
        expect.objectContaining({
          projection: name,
          position: bad.toString(),
          tenant_id: a,
          event_type: 'TestHappened',
        }),
        expect.objectContaining({ projection: name, position: a2.toString(), tenant_id: a }),
        expect.objectContaining({ projection: name, position: orphan.toString(), tenant_id: null }),
      ]);
      expect(lines[0]?.fields?.['error']).toContain('cannot fold');
      expect(await metricValue(run.registry, 'vantageedge_projector_parked_events_total')).toBe(3);
      expect(await metricValue(run.registry, 'vantageedge_projector_quarantined_tenants')).toBe(1);

      // Live: the quarantined tenant's new events are parked, the others applied.
      a3 = await append(a);
      b4 = await append(b);
      await reaches(name, b4)();
      expect((await appliedPositions(name, start)).slice(-1)).toEqual([b4]);
      expect((await parkedRows(name, start)).map((row) => row.position)).toEqual([bad, a2, orphan, a3]);
    } finally {
      await run.projector.stop();
    }

    // A restarted projector knows the quarantine from the table.
    const a4 = await append(a);
    const b5 = await append(b);
    run = testProjector(name);
    try {
      await reaches(name, b5)();
      expect((await appliedPositions(name, start)).slice(-2)).toEqual([b4, b5]);
      expect((await parkedRows(name, start)).map((row) => row.position)).toEqual([bad, a2, orphan, a3, a4]);
      expect(await metricValue(run.registry, 'vantageedge_projector_quarantined_tenants')).toBe(1);
    } finally {
      await run.projector.stop();
    }
  });

  it('finds a poison event among many without applying every other event of its batch on its own', async () => {
    // One tenant's poison event next to another tenant's burst: each handler call of the snapshot
    // projection loads and saves the whole snapshot of every tenant it touches, so applying the burst
    // one event at a time cost the big tenant's snapshot once per event, stalling every tenant.
    const name = `bisect_${randomUUID().slice(0, 8)}`;
    const [big, poisoner] = [randomUUID(), randomUUID()];
    const start = await store.headPosition();
    const burst = async () => {
      const written = await store.appendToStream(
        `test-${big}`,
        Array.from({ length: 100 }, () => ({
          type: 'TestHappened',
          data: { tenant_id: big },
          metadata: {
            actor: 'user_test',
            tenant_id: big,
            correlation_id: randomUUID(),
            causation_id: null,
            occurred_at: new Date().toISOString(),
            schema_version: 1,
          },
        })),
      );
      return written.position;
    };
    await burst();
    const bad = await append(poisoner, { poison: true });
    const last = await burst();
    // From here on: the earlier tests' poison events are not this test's.
    await database.pool.query('insert into projection_checkpoints (name, position) values ($1, $2)', [
      name,
      start.toString(),
    ]);

    const run = testProjector(name);
    try {
      await reaches(name, last)();
      expect(await appliedPositions(name, start)).toHaveLength(200);
      expect((await parkedRows(name, start)).map((row) => row.position)).toEqual([bad]);
      // Three attempts at the poison event, each finding it by halving its batch: a few dozen calls.
      expect(run.calls.length).toBeLessThanOrEqual(40);
    } finally {
      await run.projector.stop();
    }
  });

  it('parks alone a failing event whose tenant id is thousands of characters long; every tenant goes on', async () => {
    // A malformed event may name anything as its tenant. Parked under a tenant id PostgreSQL cannot
    // index (projection_parked_events_quarantines), it failed the very batch that parked it, and the
    // projection retried that batch for ever: no tenant's events moved on.
    const name = `long_tenant_${randomUUID().slice(0, 8)}`;
    const good = randomUUID();
    const start = await store.headPosition();
    const malformedTenant = randomBytes(3_000).toString('base64');
    const written = await store.appendToStream(`test-malformed-${randomUUID()}`, [
      {
        type: 'TestHappened',
        data: { tenant_id: malformedTenant, poison: true },
        metadata: {
          actor: 'user_test',
          tenant_id: malformedTenant,
          correlation_id: randomUUID(),
          causation_id: null,
          occurred_at: new Date().toISOString(),
          schema_version: 1,
        },
      },
    ]);
    const bad = written.position;
    const after = await append(good);
    await database.pool.query('insert into projection_checkpoints (name, position) values ($1, $2)', [
      name,
      start.toString(),
    ]);

    const run = testProjector(name);
    try {
      await reaches(name, after)();
      expect(await appliedPositions(name, start)).toEqual([after]);
      expect(
        (await parkedRows(name, start)).map(({ position, tenant_id, reason }) => ({
          position,
          tenant_id,
          reason,
        })),
      ).toEqual([{ position: bad, tenant_id: null, reason: 'failed' }]);
    } finally {
      await run.projector.stop();
    }
  });

  it('retries transient errors (SQLSTATE 57P01, a killed connection) without parking, next to a poison event', async () => {
    const name = `transient_${randomUUID().slice(0, 8)}`;
    const [c, d] = [randomUUID(), randomUUID()];
    const start = await store.headPosition();
    const bad = await append(c, { poison: true });
    const flaky = await append(d, { transient: 4 });
    const killed = await append(d, { killConnection: true });
    const after = await append(d);
    // From here: replaying every earlier test's poison events first (each parked after its retries) is
    // not what this test is about, and made it slower with each test written before it.
    await database.pool.query('insert into projection_checkpoints (name, position) values ($1, $2)', [
      name,
      start.toString(),
    ]);

    const run = testProjector(name);
    try {
      await reaches(name, after)();
      expect(await appliedPositions(name, start)).toEqual([flaky, killed, after]);
      expect((await parkedRows(name, start)).map((row) => [row.position, row.tenant_id])).toEqual([[bad, c]]);
      expect(
        run.errors.some((line) => String(line.fields?.['error']).includes('administrator command')),
      ).toBe(true);
    } finally {
      await run.projector.stop();
    }
  });
});
