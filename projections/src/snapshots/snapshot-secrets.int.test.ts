import { randomUUID } from 'node:crypto';
import { streamName } from '@vantageedge/shared/domain/events';
import { InMemoryEventStore } from '@vantageedge/shared/event-store/in-memory/in-memory-event-store';
import type { SnapshotBus } from '@vantageedge/shared/snapshot-bus/port';
import { eventually, recordSubscription } from '@vantageedge/shared/snapshot-bus/testing';
import { createTestSnapshotBus, deleteTestTopics, uniqueTopic } from '@vantageedge/shared/testing/kafka';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSnapshotProjector } from './snapshot-projector.js';
import { apiKeyIssued, newEvent, originState, tenantCreated } from './testing.js';

/**
 * What the snapshot topic carries, as anyone who may read it (every replica, Kafka's operators) reads
 * it: earlier releases recorded origin target URLs with user information and a query
 * (`https://user:password@host/v1?api_key=…`) and an OIDC jwks_url with user information. No gateway
 * sends those parts (it connects to the scheme, host and port and prefixes the path; a key set is
 * fetched without them), so they never leave the event log: neither the topic nor the projector's
 * stored state holds them. API keys travel as their keyed hashes only.
 */

const USER = 'legacy-topic-user';
const PASSWORD = 'legacy-topic-password-0123456789';
const QUERY_KEY = 'legacy-topic-query-key-abcdef';
const JWKS_PASSWORD = 'legacy-topic-jwks-password-42';
const LEGACY_TARGET = `https://${USER}:${PASSWORD}@legacy.example.com/v1?api_key=${QUERY_KEY}&region=eu`;
const LEGACY_JWKS = `https://kid:${JWKS_PASSWORD}@idp.example.com/.well-known/jwks.json?tenant=acme`;

let db: TestDatabase;
const topic = uniqueTopic('snapshot-secrets');
const buses: SnapshotBus[] = [];
const kafkaBus = () => createTestSnapshotBus(topic, 've-test-snapshot-secrets', buses);

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await Promise.all(buses.map((bus) => bus.close()));
  await deleteTestTopics([topic]);
  await db?.drop();
});

describe('the snapshot topic (real Kafka)', () => {
  it('carries no credential an earlier release recorded in an origin URL or a jwks_url', async () => {
    const store = new InMemoryEventStore();
    const projector = startSnapshotProjector({
      store,
      pool: db.pool,
      bus: kafkaBus(),
      name: `t_${randomUUID()}`,
      publishPollMs: 100,
    });
    const subscriber = await recordSubscription(kafkaBus());
    try {
      const tenantId = randomUUID();
      const created = tenantCreated(tenantId);
      const settings = {
        ...(created.data as { settings: object }).settings,
        oidc: { issuer: 'https://idp.example.com', audience: 'acme', jwks_url: LEGACY_JWKS },
      };
      const origin = {
        ...originState(tenantId),
        targets: [
          { url: LEGACY_TARGET, weight: 1 },
          { url: 'http://127.0.0.1:9/base', weight: 2 },
        ],
      };
      await store.appendToStream(streamName.tenant(tenantId), [
        { ...created, data: { ...(created.data as object), settings } } as typeof created,
      ]);
      await store.appendToStream(streamName.origin(origin.origin_id), [newEvent('OriginCreated', origin)]);
      const last = await store.appendToStream(streamName.apiKey(randomUUID()), [apiKeyIssued(tenantId)]);
      await eventually('published', () => subscriber.versionsOf(tenantId).includes(last.position), 60_000);

      const published = subscriber.messages.filter((message) => message.tenantId === tenantId);
      const stored = await db.pool.query<{ snapshot: unknown }>(
        'select snapshot from snapshot_state where tenant_id = $1',
        [tenantId],
      );
      for (const [label, text] of [
        [
          'topic',
          JSON.stringify(published.map((message) => message.kind === 'snapshot' && message.snapshot)),
        ],
        ['snapshot_state', JSON.stringify(stored.rows)],
      ] as const) {
        for (const secret of [USER, PASSWORD, QUERY_KEY, JWKS_PASSWORD]) {
          expect(text, `${label} holds ${secret}`).not.toContain(secret);
        }
      }

      // What the gateways use is all there: each target's scheme, host, port and path, the key set's
      // URL with its query, the key's hash.
      const newest = published.at(-1);
      if (newest?.kind !== 'snapshot') throw new Error('no snapshot');
      const snapshot = newest.snapshot;
      expect(
        snapshot.origins[0]?.targets.map((target) => [
          new URL(target.url).origin,
          new URL(target.url).pathname,
          target.weight,
        ]),
      ).toEqual([
        ['https://legacy.example.com', '/v1', 1],
        ['http://127.0.0.1:9', '/base', 2],
      ]);
      expect(snapshot.tenant.settings.oidc?.jwks_url).toBe(
        'https://idp.example.com/.well-known/jwks.json?tenant=acme',
      );
      expect(snapshot.api_keys.map((key) => key.key_hash)).toEqual(['a'.repeat(64)]);
    } finally {
      await projector.stop();
    }
  }, 90_000);
});
