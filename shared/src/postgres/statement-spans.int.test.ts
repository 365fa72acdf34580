import { setImmediate } from 'node:timers/promises';
import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../testing/postgres.js';
import { childrenOf, recordSpans } from '../testing/recorded-spans.js';
import { createLivePool } from './connection-liveness.js';
import { withConnectionRetry } from './lost-connections.js';
import { onPooledConnection } from './pooled-connection.js';

/**
 * Every pool the services make (createLivePool) makes a CLIENT span per statement sent while a
 * recording span is active (an admin request's SERVER span, a projector's batch): PostgreSQL's time
 * in a slow command becomes visible. Regression test: no statement was ever traced.
 */

const { telemetry, exporter, underSpan, finished } = recordSpans('statement-spans-test');

/** A request the sampler left out: its statements make no span. */
const unsampled = trace.wrapSpanContext({
  traceId: '0af7651916cd43dd8448eb211c80319c',
  spanId: 'b7ad6b7169203331',
  traceFlags: 0,
});

let database: TestDatabase;
let pool: pg.Pool;

beforeAll(async () => {
  database = await createTestDatabase();
  pool = withConnectionRetry(createLivePool({ connectionString: database.url, max: 1 }));
  await pool.query('create table traced_things (id int primary key, secret text)');
});

afterAll(async () => {
  await pool?.end();
  await database?.drop();
  await telemetry.shutdown();
});

describe('PostgreSQL statement spans', () => {
  it("makes a CLIENT span per statement under the active span, without the statement's values", async () => {
    exporter.reset();
    const parent = await underSpan('admin request', async () => {
      await pool.query('insert into traced_things (id, secret) values ($1, $2)', [1, 'hunter2-value']);
      await onPooledConnection(pool, (client) =>
        client.query("select secret from traced_things where secret = 'hunter2-literal'"),
      );
    });
    const statements = childrenOf(await finished(), parent);
    expect(statements.map((span) => span.name)).toEqual(['INSERT traced_things', 'SELECT traced_things']);
    const [insert] = statements;
    expect(insert?.kind).toBe(SpanKind.CLIENT);
    expect(insert?.attributes).toMatchObject({
      'db.system.name': 'postgresql',
      'db.operation.name': 'INSERT',
      'db.collection.name': 'traced_things',
      'db.query.summary': 'INSERT traced_things',
      'db.namespace': database.name,
      'server.address': '127.0.0.1',
    });
    const recorded = JSON.stringify(statements.map((span) => [span.name, span.attributes, span.events]));
    expect(recorded).not.toContain('hunter2');
  });

  it('records a failed statement with its SQLSTATE as error.type, and nothing of its message', async () => {
    exporter.reset();
    const parent = await underSpan('admin request', () =>
      pool.query('insert into traced_things (id, secret) values ($1, $2)', [1, 'duplicate-value']),
    );
    const [failed] = childrenOf(await finished(), parent);
    expect(failed?.name).toBe('INSERT traced_things');
    expect(failed?.status.code).toBe(SpanStatusCode.ERROR);
    expect(failed?.attributes['error.type']).toBe('23505');
    expect(failed?.attributes['db.response.status_code']).toBe('23505');
    expect(JSON.stringify([failed?.attributes, failed?.events, failed?.status])).not.toContain('duplicate');
  });

  it('makes no span for a statement sent with no span active, or under one that is not sampled', async () => {
    exporter.reset();
    await pool.query('select count(*) from traced_things');
    await context.with(trace.setSpan(context.active(), unsampled), () =>
      pool.query('select count(*) from traced_things'),
    );
    expect(await finished()).toEqual([]);
  });

  it("puts a statement that waited for a busy pool's connection under its own request, not the one before", async () => {
    exporter.reset();
    let releaseFirst: () => void = () => undefined;
    const firstHolds = new Promise<void>((resolve) => {
      releaseFirst = resolve;
    });
    // The pool's one connection is held by the first request; the second's pool.query waits for it and
    // gets it when the first request releases it.
    const first = underSpan('first request', () =>
      onPooledConnection(pool, async (client) => {
        await client.query('select 1 as one');
        await firstHolds;
      }),
    );
    const second = underSpan('second request', () => pool.query('select count(*) from traced_things'));
    while (pool.waitingCount === 0) await setImmediate();
    releaseFirst();
    const [firstId, secondId] = await Promise.all([first, second]);
    const spans = await finished();
    expect(childrenOf(spans, firstId).map((span) => span.name)).toEqual(['SELECT']);
    expect(childrenOf(spans, secondId).map((span) => span.name)).toEqual(['SELECT traced_things']);
  });

  it('traces no statement that waited for a busy pool outside any recording span under the request that released it', async () => {
    exporter.reset();
    let releaseFirst: () => void = () => undefined;
    const firstHolds = new Promise<void>((resolve) => {
      releaseFirst = resolve;
    });
    const first = underSpan('first request', () =>
      onPooledConnection(pool, async (client) => {
        await client.query('select 1 as one');
        await firstHolds;
      }),
    );
    // A projector polling (no span) and a request that was not sampled wait for the held connection.
    const untraced = context.with(ROOT_CONTEXT, () => pool.query('select count(*) from traced_things'));
    const notSampled = context.with(trace.setSpan(ROOT_CONTEXT, unsampled), () =>
      pool.query('select id from traced_things'),
    );
    while (pool.waitingCount < 2) await setImmediate();
    releaseFirst();
    const [firstId] = await Promise.all([first, untraced, notSampled]);
    const spans = await finished();
    expect(childrenOf(spans, firstId).map((span) => span.name)).toEqual(['SELECT']);
    expect(spans.map((span) => span.name).sort()).toEqual(['SELECT', 'first request']);
  });
});
