import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { TEST_INFRA } from '../testing/infrastructure.js';
import { createTestKafka, deleteTestTopics, uniqueTopic } from '../testing/kafka.js';
import { CONTRACT_MAX_MESSAGE_BYTES, snapshotBusContract } from './contract.js';
import { createKafkaSnapshotBus, type KafkaSnapshotBusOptions } from './kafka-snapshot-bus.js';
import { ensureSnapshotTopic } from './kafka-topic.js';

const topics: string[] = [];

function options(topic: string): KafkaSnapshotBusOptions {
  return {
    brokers: TEST_INFRA.kafkaBrokers,
    clientId: `ve-test-${randomUUID()}`,
    topic,
    partitions: 3,
    replicationFactor: 1,
    maxMessageBytes: CONTRACT_MAX_MESSAGE_BYTES,
    groupIdPrefix: 've-test-snapshots',
    kafkaLogLevel: logLevel.NOTHING,
  };
}

afterAll(() => deleteTestTopics(topics));

snapshotBusContract('kafka', async () => {
  const topic = uniqueTopic('snapshots');
  topics.push(topic);
  return {
    bus: createKafkaSnapshotBus(options(topic)),
    connectAnother: () => createKafkaSnapshotBus(options(topic)),
  };
});

describe('kafka snapshot topic', () => {
  it('is created compacted with an explicit max.message.bytes', async () => {
    const topic = uniqueTopic('snapshots');
    topics.push(topic);
    const admin = createTestKafka().admin();
    await admin.connect();
    try {
      await ensureSnapshotTopic(admin, {
        topic,
        partitions: 2,
        replicationFactor: 1,
        maxMessageBytes: 2_000_000,
      });
      const described = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: 2, name: topic, configNames: ['cleanup.policy', 'max.message.bytes'] }],
      });
      const entries = Object.fromEntries(
        (described.resources[0]?.configEntries ?? []).map((entry) => [entry.configName, entry.configValue]),
      );
      expect(entries).toEqual({ 'cleanup.policy': 'compact', 'max.message.bytes': '2000000' });
      // Idempotent: a second call (another projector or gateway starting) accepts the topic.
      await ensureSnapshotTopic(admin, {
        topic,
        partitions: 2,
        replicationFactor: 1,
        maxMessageBytes: 2_000_000,
      });
    } finally {
      await admin.disconnect();
    }
  });

  it('has one replica and min.insync.replicas=1 on a one-broker cluster when no replication factor is set', async () => {
    const topic = uniqueTopic('snapshots-default-replication');
    topics.push(topic);
    const admin = createTestKafka().admin();
    await admin.connect();
    try {
      await ensureSnapshotTopic(admin, { topic, partitions: 2, maxMessageBytes: 1_000_000 });
      const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
      expect(metadata.topics[0]?.partitions.map((p) => p.replicas.length)).toEqual([1, 1]);
      const described = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: 2, name: topic, configNames: ['min.insync.replicas'] }],
      });
      expect(described.resources[0]?.configEntries[0]?.configValue).toBe('1');
    } finally {
      await admin.disconnect();
    }
  });

  it('refuses to use an existing topic that is not compacted', async () => {
    const topic = uniqueTopic('snapshots-delete');
    topics.push(topic);
    const admin = createTestKafka().admin();
    await admin.connect();
    try {
      await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1 }] });
      await expect(
        ensureSnapshotTopic(admin, {
          topic,
          partitions: 1,
          replicationFactor: 1,
          maxMessageBytes: 1_000_000,
        }),
      ).rejects.toThrow(/cleanup.policy=delete; the snapshot topic must be compacted/);
    } finally {
      await admin.disconnect();
    }
  });
});

describe('a snapshot topic that also deletes old segments (cleanup.policy=compact,delete)', () => {
  // Compaction keeps each tenant's last record, but `delete` removes whole segments past retention.ms
  // (the broker's log.retention.hours, 7 days by default): a tenant whose config did not change for that long vanishes from the topic,
  // and a gateway replica started then answers 404 tenant_not_found for it.
  async function ensureOn(configEntries: Array<{ name: string; value: string }>): Promise<void> {
    const topic = uniqueTopic('snapshots-compact-delete');
    topics.push(topic);
    const admin = createTestKafka().admin();
    await admin.connect();
    try {
      await admin.createTopics({
        topics: [{ topic, numPartitions: 1, replicationFactor: 1, configEntries }],
      });
      await ensureSnapshotTopic(admin, {
        topic,
        partitions: 1,
        replicationFactor: 1,
        maxMessageBytes: 1_000_000,
      });
    } finally {
      await admin.disconnect();
    }
  }

  it('is refused while segments are deleted by age', async () => {
    await expect(
      ensureOn([
        { name: 'cleanup.policy', value: 'compact,delete' },
        { name: 'max.message.bytes', value: '1000000' },
      ]),
    ).rejects.toThrow(/cleanup.policy=compact,delete and retention.ms=\d+: tenants whose config/);
  });

  it('is refused while segments are deleted by size', async () => {
    await expect(
      ensureOn([
        { name: 'cleanup.policy', value: 'compact,delete' },
        { name: 'max.message.bytes', value: '1000000' },
        { name: 'retention.ms', value: '-1' },
        { name: 'retention.bytes', value: '1000000000' },
      ]),
    ).rejects.toThrow(/retention.bytes=1000000000/);
  });

  it('is accepted when neither its age nor its size deletes anything', async () => {
    await ensureOn([
      { name: 'cleanup.policy', value: 'compact,delete' },
      { name: 'max.message.bytes', value: '1000000' },
      { name: 'retention.ms', value: '-1' },
    ]);
  });
});

describe('a snapshot topic whose settings change while it is in use', () => {
  it('reports a switch to compact,delete with a finite retention, and its retention', async () => {
    const topic = uniqueTopic('snapshots-retention');
    topics.push(topic);
    const bus = createKafkaSnapshotBus(options(topic));
    const admin = createTestKafka().admin();
    await admin.connect();
    try {
      await ensureSnapshotTopic(admin, {
        topic,
        partitions: 1,
        replicationFactor: 1,
        maxMessageBytes: CONTRACT_MAX_MESSAGE_BYTES,
      });
      expect(await bus.readTopicRetention?.()).toEqual({ problem: undefined, retentionMs: undefined });

      await admin.alterConfigs({
        validateOnly: false,
        resources: [
          {
            type: 2,
            name: topic,
            configEntries: [
              { name: 'cleanup.policy', value: 'compact,delete' },
              { name: 'retention.ms', value: '3600000' },
            ],
          },
        ],
      });
      const retention = await bus.readTopicRetention?.();
      expect(retention?.retentionMs).toBe(3_600_000);
      expect(retention?.problem).toMatch(/cleanup.policy=compact,delete and retention.ms=3600000/);
    } finally {
      await admin.disconnect();
      await bus.close();
    }
  });
});

describe('an idle subscription', () => {
  // Regression: kafkajs re-armed each connection's pending-request check every millisecond while
  // nothing was pending (kafkajs#1704): an idle replica's subscription cost 3.8% of a core.
  it('does not keep checking empty request queues', async () => {
    const topic = uniqueTopic('idle');
    topics.push(topic);
    const bus = createKafkaSnapshotBus(options(topic));
    const queue = createRequire(import.meta.url)('kafkajs/src/network/requestQueue/index.js') as {
      prototype: { checkPendingRequests(): void };
    };
    const check = queue.prototype.checkPendingRequests;
    let checks = 0;
    queue.prototype.checkPendingRequests = function counted(this: unknown) {
      checks++;
      check.call(this);
    };
    try {
      let caughtUp!: () => void;
      const ready = new Promise<void>((resolve) => {
        caughtUp = resolve;
      });
      const subscription = await bus.subscribe({
        onMessage: () => {},
        onCaughtUp: () => caughtUp(),
        onHealth: () => {},
      });
      await ready;
      const before = checks;
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      // A connection's queue is checked when a request completes: fetches and heartbeats, a few a second.
      expect(checks - before).toBeLessThan(100);
      await subscription.close();
    } finally {
      queue.prototype.checkPendingRequests = check;
      await bus.close();
    }
  });
});
