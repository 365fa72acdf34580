import type { ChildProcess } from 'node:child_process';
import { isControlPlaneEvent } from '@vantageedge/shared/domain/events';
import { PostgresEventStore } from '@vantageedge/shared/event-store/postgres/postgres-event-store';
import { decodeSnapshotRecord } from '@vantageedge/shared/snapshot-bus/codec';
import type { SnapshotMessage } from '@vantageedge/shared/snapshot-bus/port';
import { TEST_INFRA } from '@vantageedge/shared/testing/infrastructure';
import { deleteTestTopics, uniqueTopic } from '@vantageedge/shared/testing/kafka';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exited, ProjectorProcesses } from '../read-models/testing/projector-processes.js';
import { appendWorkload } from '../read-models/testing/workload.js';
import { readCheckpoint } from '../runner/checkpoint.js';
import { foldSnapshotEvent, type SnapshotState, snapshotTenantOf } from './fold.js';
import { SNAPSHOT_PROJECTION } from './snapshot-state.js';
import { topicRecords } from './testing.js';

/**
 * SIGKILL of the real snapshot projector process (make run-snapshot-projector) at random moments, over
 * and over, while it folds a long log and publishes to Kafka: in the end every tenant's row and its last
 * record on the topic are what a fold of the whole log gives, and no tenant's record on the topic is
 * older than one written before it (compaction keeps the last written, and a replica started after it
 * would serve that).
 */
const KILLS = 10;

let database: TestDatabase;
let store: PostgresEventStore;
const topic = uniqueTopic('snapshot-crash');
const processes = new ProjectorProcesses();

beforeAll(async () => {
  database = await createTestDatabase();
  store = new PostgresEventStore({ pool: database.pool });
});

afterAll(async () => {
  processes.killAll();
  await store?.close();
  await database?.drop();
  await deleteTestTopics([topic]);
});

/** The real projector process, small batches, unpaced; resolves once it follows the log. */
async function startProjectorProcess(): Promise<ChildProcess> {
  const { child, lines } = processes.start('projections/src/snapshots/main.ts', {
    DATABASE_URL: database.url,
    EVENT_STORE: 'postgres',
    SNAPSHOT_BUS: 'kafka',
    KAFKA_BROKERS: TEST_INFRA.kafkaBrokers.join(','),
    SNAPSHOT_TOPIC: topic,
    SNAPSHOT_TOPIC_PARTITIONS: '1',
    SNAPSHOT_TOPIC_REPLICATION: '1',
    SNAPSHOT_PROJECTOR_BATCH_SIZE: '7',
    SNAPSHOT_TENANT_PUBLISH_BYTES_PER_SECOND: '0',
    SNAPSHOT_PROJECTOR_METRICS_PORT: '0',
    LOG_LEVEL: 'info',
  });
  let subscribed = false;
  for await (const line of lines) {
    subscribed = line.includes('"projector subscribing"');
    if (subscribed) break;
  }
  if (!subscribed) throw new Error('the snapshot projector ended before it subscribed (its log is above)');
  // The rest of its output is not needed, but must be read, or the process blocks writing it.
  child.stdout?.resume();
  return child;
}

async function killed(child: ChildProcess): Promise<void> {
  const exit = exited(child);
  child.kill('SIGKILL');
  await exit;
}

/** Every tenant's state, folded from the whole log at once. */
async function foldedFromScratch(): Promise<Map<string, SnapshotState>> {
  const states = new Map<string, SnapshotState>();
  for (const event of await store.readAll()) {
    if (!isControlPlaneEvent(event)) continue;
    const tenantId = snapshotTenantOf(event);
    if (tenantId === null) continue;
    const after = foldSnapshotEvent(states.get(tenantId), event);
    if (after) states.set(tenantId, after);
  }
  return states;
}

function messageOf(state: SnapshotState): SnapshotMessage {
  return state.status === 'live'
    ? {
        kind: 'snapshot',
        tenantId: state.snapshot.tenant_id,
        version: BigInt(state.snapshot.version),
        snapshot: state.snapshot,
      }
    : { kind: 'tombstone', tenantId: state.tenantId, version: state.version };
}

async function everySnapshotSettled(head: bigint): Promise<boolean> {
  if ((await readCheckpoint(database.pool, SNAPSHOT_PROJECTION)) < head) return false;
  const { rows } = await database.pool.query<{ unsettled: number }>(
    `select count(*)::int as unsettled from snapshot_state
      where published_version is distinct from version and failed_version is distinct from version`,
  );
  return rows[0]?.unsettled === 0;
}

describe('snapshot projector killed with SIGKILL at random moments', () => {
  // Its timeout: eleven starts of the projector, each loading its TypeScript through tsx, then the
  // catch-up take about a minute on an idle machine and three on two cores shared with other test files.
  it('ends with every tenant’s newest version last on the topic, equal to a fold of the whole log', async () => {
    const { position: head } = await appendWorkload(store, { events: 1000, seed: 29, maxBurst: 3 });
    let seed = 7;
    const killedAt: bigint[] = [];
    for (let kill = 0; kill < KILLS; kill++) {
      const before = killedAt.at(-1) ?? 0n;
      const child = await startProjectorProcess();
      seed = (seed * 1103515245 + 12345) % 2147483648;
      // Every third run dies just after subscribing (republishing what the last run left unacknowledged);
      // the others once their checkpoint passed a random point of what is left of the log, a few ms
      // later: kills land before, between and inside folds, commits, sends and acknowledgements, however
      // fast the machine folds.
      const target = kill % 3 === 0 ? before : before + ((head - before) * BigInt(seed % 60)) / 100n;
      const deadline = Date.now() + 120_000;
      while (child.exitCode === null && Date.now() < deadline) {
        if ((await readCheckpoint(database.pool, SNAPSHOT_PROJECTION)) >= target) break;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      await new Promise((resolve) => setTimeout(resolve, seed % 40));
      await killed(child);
      killedAt.push(await readCheckpoint(database.pool, SNAPSHOT_PROJECTION));
    }
    const last = await startProjectorProcess();
    while (!(await everySnapshotSettled(head))) {
      if (last.exitCode !== null) throw new Error(`the snapshot projector exited (${last.exitCode})`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await killed(last);
    // It really died mid-log, more than once.
    expect(killedAt.filter((checkpoint) => checkpoint > 0n && checkpoint < head).length).toBeGreaterThan(1);

    const truth = await foldedFromScratch();
    const records = await topicRecords(topic);
    const lastOnTopic = new Map<string, SnapshotMessage>();
    const wentBack: string[] = [];
    for (const record of records) {
      const decoded = decodeSnapshotRecord(record);
      if (!decoded.ok) throw new Error(decoded.reason);
      const { message } = decoded;
      const before = lastOnTopic.get(message.tenantId);
      if (before && before.version > message.version)
        wentBack.push(`${message.tenantId}: ${message.version} after ${before.version}`);
      lastOnTopic.set(message.tenantId, message);
    }
    expect(wentBack).toEqual([]);
    expect(new Set(lastOnTopic.keys())).toEqual(new Set(truth.keys()));
    for (const [tenantId, state] of truth) expect(lastOnTopic.get(tenantId)).toEqual(messageOf(state));

    const { rows } = await database.pool.query<{ tenant_id: string; version: string; status: string }>(
      'select tenant_id, version, status from snapshot_state',
    );
    expect(new Map(rows.map((row) => [row.tenant_id, `${row.status}@${row.version}`]))).toEqual(
      new Map(
        [...truth].map(([tenantId, state]) => [tenantId, `${state.status}@${messageOf(state).version}`]),
      ),
    );
  }, 480_000);
});
