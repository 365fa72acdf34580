import { randomUUID } from 'node:crypto';
import { SpanKind } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { streamName } from '@vantageedge/shared/domain/events';
import { InMemoryEventStore } from '@vantageedge/shared/event-store/in-memory/in-memory-event-store';
import { createLivePool } from '@vantageedge/shared/postgres/connection-liveness';
import { eventually } from '@vantageedge/shared/snapshot-bus/testing';
import { deleteTestTopics, uniqueTopic } from '@vantageedge/shared/testing/kafka';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { recordSpans } from '@vantageedge/shared/testing/recorded-spans';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSnapshotProjector } from './snapshot-projector.js';
import { onePartitionTestBus, tenantCreated } from './testing.js';

/**
 * With tracing on, the snapshot projector's own calls are CLIENT spans: its PostgreSQL statements under
 * its batch span, its Kafka sends under its publish span. Regression test: neither was traced, so a slow
 * batch or publication did not show whether PostgreSQL or Kafka took the time.
 */

const { telemetry, finished } = recordSpans('snapshot-tracing-test');
const topic = uniqueTopic('snapshot-tracing');

let database: TestDatabase;
let pool: pg.Pool;
beforeAll(async () => {
  database = await createTestDatabase();
  // As the projector's main: a pool of createLivePool's.
  pool = createLivePool({ connectionString: database.url, max: 4 });
});
afterAll(async () => {
  await pool?.end();
  await database?.drop();
  await deleteTestTopics([topic]);
  await telemetry.shutdown();
});

function parentOf(span: ReadableSpan, spans: readonly ReadableSpan[]): ReadableSpan | undefined {
  return spans.find((candidate) => candidate.spanContext().spanId === span.parentSpanContext?.spanId);
}

describe('snapshot projector tracing', () => {
  it("shows the batch's PostgreSQL statements and the publication's Kafka send as CLIENT spans", async () => {
    const store = new InMemoryEventStore();
    const bus = onePartitionTestBus(topic, 'snapshot-tracing');
    const name = `t_${randomUUID().replaceAll('-', '')}`;
    const projector = startSnapshotProjector({ store, pool, bus, name });
    try {
      const tenantId = randomUUID();
      const written = await store.appendToStream(streamName.tenant(tenantId), [tenantCreated(tenantId)]);
      await eventually('the tenant is projected', () => projector.checkpoint() === written.position);
      await projector.idle();
      const spans = await finished();

      const sends = spans.filter((span) => span.name === `send ${topic}`);
      expect(sends.length).toBeGreaterThanOrEqual(1);
      const [send] = sends;
      expect(send?.kind).toBe(SpanKind.CLIENT);
      expect(send?.attributes).toMatchObject({
        'messaging.system': 'kafka',
        'messaging.operation.type': 'send',
        'messaging.operation.name': 'send',
        'messaging.destination.name': topic,
        'messaging.batch.message_count': 1,
      });
      expect(send && parentOf(send, spans)?.name).toBe('gateway_snapshots publish');

      const batch = spans.find((span) => span.name === `${name} batch`);
      expect(batch).toBeDefined();
      const statements = spans.filter(
        (span) => span.parentSpanContext?.spanId === batch?.spanContext().spanId,
      );
      expect(statements.length).toBeGreaterThan(0);
      for (const statement of statements) {
        expect(statement.kind).toBe(SpanKind.CLIENT);
        expect(statement.attributes['db.system.name']).toBe('postgresql');
      }
      expect(statements.map((span) => span.name)).toContain('BEGIN');
      expect(statements.map((span) => span.name)).toContain('COMMIT');
    } finally {
      await projector.stop();
      await bus.close();
    }
  });
});
