import { randomUUID } from 'node:crypto';
import { logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { createClusterKafka, killKafkaBroker, restoreClusters, TEST_CLUSTER } from '../testing/cluster.js';
import { uniqueTopic } from '../testing/kafka.js';
import { decodeSnapshotRecord } from './codec.js';
import { CONTRACT_MAX_MESSAGE_BYTES, snapshotBusContract } from './contract.js';
import { createKafkaSnapshotBus, type KafkaSnapshotBusOptions } from './kafka-snapshot-bus.js';
import type { SnapshotMessage } from './port.js';
import { sampleSnapshot, snapshotMessage } from './testing.js';

/**
 * The snapshot bus on the three-broker Kafka (infra/kafka-cluster.sh): the contract suite, the topic's
 * replication as created without SNAPSHOT_TOPIC_REPLICATION, and the projector's idempotent producer
 * (acks=all) across a partition leader killed mid-stream.
 */
const topics: string[] = [];

function options(topic: string, partitions = 3): KafkaSnapshotBusOptions {
  return {
    brokers: TEST_CLUSTER.kafkaBrokers,
    clientId: `ve-test-${randomUUID()}`,
    topic,
    partitions,
    maxMessageBytes: CONTRACT_MAX_MESSAGE_BYTES,
    groupIdPrefix: 've-test-snapshots',
    kafkaLogLevel: logLevel.NOTHING,
  };
}

afterAll(async () => {
  await restoreClusters();
  const admin = createClusterKafka().admin();
  await admin.connect();
  await admin.deleteTopics({ topics }).catch(() => {});
  await admin.disconnect();
}, 240_000);

snapshotBusContract('kafka cluster', async () => {
  const topic = uniqueTopic('snapshots');
  topics.push(topic);
  return {
    bus: createKafkaSnapshotBus(options(topic)),
    connectAnother: () => createKafkaSnapshotBus(options(topic)),
  };
});

describe('the snapshot topic on a three-broker cluster', () => {
  it('is created with three replicas and min.insync.replicas=2 when no replication factor is set', async () => {
    const topic = uniqueTopic('snapshots-replicated');
    topics.push(topic);
    const bus = createKafkaSnapshotBus(options(topic));
    const tenant = randomUUID();
    expect((await bus.publish([snapshotMessage(sampleSnapshot(tenant, 1n))])).published).toHaveLength(1);
    await bus.close();
    const admin = createClusterKafka().admin();
    await admin.connect();
    try {
      const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
      const partitions = metadata.topics[0]?.partitions ?? [];
      expect(partitions).toHaveLength(3);
      for (const partition of partitions) {
        expect(partition.replicas).toHaveLength(3);
        expect(partition.isr).toHaveLength(3);
      }
      // Leaders spread over the brokers.
      expect(new Set(partitions.map((p) => p.leader)).size).toBe(3);
      const described = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: 2, name: topic, configNames: ['min.insync.replicas', 'cleanup.policy'] }],
      });
      const entries = Object.fromEntries(
        (described.resources[0]?.configEntries ?? []).map((entry) => [entry.configName, entry.configValue]),
      );
      expect(entries).toEqual({ 'min.insync.replicas': '2', 'cleanup.policy': 'compact' });
    } finally {
      await admin.disconnect();
    }
  });

  it('keeps every snapshot, once and in order, when the partition leader is killed mid-stream', async () => {
    // One partition, so every message goes to one leader: the one that is killed.
    const topic = uniqueTopic('snapshots-leader-kill');
    topics.push(topic);
    const bus = createKafkaSnapshotBus(options(topic, 1));
    const tenants = Array.from({ length: 5 }, () => randomUUID());
    const admin = createClusterKafka().admin();
    await admin.connect();
    const leaderOf = async () =>
      (await admin.fetchTopicMetadata({ topics: [topic] })).topics[0]?.partitions[0]?.leader ?? -1;
    const VERSIONS = 60;
    let rejected = 0;
    let killed = -1;
    let leaderAfter = -1;
    try {
      for (let version = 1n; version <= BigInt(VERSIONS); version++) {
        // A batch per version, every tenant in it, as the projector publishes a batch of changes.
        const batch: SnapshotMessage[] = tenants.map((tenant) =>
          snapshotMessage(sampleSnapshot(tenant, version)),
        );
        if (version === 20n) {
          killed = await leaderOf();
          await killKafkaBroker(killed);
        }
        // The projector publishes a batch again until it is acknowledged (its checkpoint only moves then).
        for (;;) {
          try {
            const result = await bus.publish(batch);
            expect(result.failed).toEqual([]);
            break;
          } catch {
            rejected++;
            await new Promise((resolve) => setTimeout(resolve, 200));
          }
        }
      }
      leaderAfter = await leaderOf();
      await bus.close();

      // Read the whole partition back with a plain consumer.
      const consumer = createClusterKafka().consumer({ groupId: `ve-test-read-${randomUUID()}` });
      const seen = new Map<string, bigint[]>();
      let total = 0;
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ message }) => {
          const decoded = decodeSnapshotRecord({
            key: message.key?.toString('utf8') ?? null,
            value: message.value,
            headers: Object.fromEntries(
              Object.entries(message.headers ?? {}).map(([k, v]) => [k, v?.toString()]),
            ),
          });
          if (!decoded.ok) throw new Error(decoded.reason);
          seen.set(decoded.message.tenantId, [
            ...(seen.get(decoded.message.tenantId) ?? []),
            decoded.message.version,
          ]);
          total++;
        },
      });
      for (let i = 0; i < 600 && total < tenants.length * VERSIONS; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await consumer.disconnect();
      console.info(
        `[leader change] leader ${killed} killed at version 20, new leader ${leaderAfter}; ` +
          `${tenants.length * VERSIONS} snapshots published, ${total} in the log, publish calls rejected ` +
          `(and repeated) during the change: ${rejected}`,
      );
      expect(leaderAfter).not.toBe(killed);
      const expected = Array.from({ length: VERSIONS }, (_, i) => BigInt(i + 1));
      for (const tenant of tenants) {
        const versions = seen.get(tenant) ?? [];
        // Nothing lost, nothing reordered; a batch repeated after a rejection may only repeat itself.
        expect([...new Set(versions)]).toEqual(expected);
        for (let i = 1; i < versions.length; i++) expect(versions[i]! >= versions[i - 1]!).toBe(true);
      }
      // The idempotent producer's own retries never duplicate: only whole repeated publish calls may.
      expect(total - tenants.length * VERSIONS).toBeLessThanOrEqual(rejected * tenants.length);
    } finally {
      await admin.disconnect().catch(() => {});
      await restoreClusters();
    }
  }, 180_000);
});
