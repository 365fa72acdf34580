import type { Admin, Kafka } from 'kafkajs';
import type { TopicRetention } from './port.js';

// kafkajs is CommonJS and Node's ESM loader cannot see this enum as a named export; its value is 2.
const TOPIC_RESOURCE = 2;

const UNKNOWN_TOPIC = 'UNKNOWN_TOPIC_OR_PARTITION';
/** How long a topic this process just created may take to get its partitions' leaders. */
const CREATED_TOPIC_LEADER_WAIT_MS = 10_000;
const LEADER_POLL_MS = 100;

export interface SnapshotTopicSettings {
  topic: string;
  partitions: number;
  /** Copies of each partition; undefined = as many as the cluster has brokers, at most 3. */
  replicationFactor?: number | undefined;
  /** The topic's max.message.bytes; the codec refuses snapshots that would not fit. */
  maxMessageBytes: number;
}

/** Brokers to copy each partition to when SNAPSHOT_TOPIC_REPLICATION is not set. */
export function defaultReplicationFactor(brokers: number): number {
  return Math.max(1, Math.min(3, brokers));
}

/**
 * In-sync copies a write needs (with acks=all) before it is acknowledged: a majority of the replicas,
 * but never all of them when there are two or more, so one broker down never stops publishing.
 * 1 → 1, 2 → 1, 3 → 2, 4 → 3, 5 → 3.
 */
export function minInsyncReplicas(replicationFactor: number): number {
  return Math.max(1, Math.min(replicationFactor - 1, Math.floor(replicationFactor / 2) + 1));
}

/** The explicit settings the snapshot topic is created with. */
export function snapshotTopicConfig(
  settings: SnapshotTopicSettings & { replicationFactor: number },
): Array<{ name: string; value: string }> {
  return [
    // Only the newest snapshot of each tenant must survive; tombstones remove deleted tenants.
    { name: 'cleanup.policy', value: 'compact' },
    { name: 'max.message.bytes', value: String(settings.maxMessageBytes) },
    // Keep tombstones a day so a replica that was offline for a while still sees the deletion.
    { name: 'delete.retention.ms', value: String(24 * 60 * 60 * 1000) },
    // Compact reasonably soon so a cold start reads about one message per tenant.
    { name: 'min.cleanable.dirty.ratio', value: '0.1' },
    { name: 'segment.ms', value: String(60 * 60 * 1000) },
    // With acks=all (the producer's setting) a snapshot is acknowledged once this many copies have it.
    { name: 'min.insync.replicas', value: String(minInsyncReplicas(settings.replicationFactor)) },
  ];
}

/**
 * Creates the compacted snapshot topic if it is missing: replicated to min(3, brokers) brokers unless
 * SNAPSHOT_TOPIC_REPLICATION says otherwise, with min.insync.replicas a majority of them. If it exists, checks that it is compacted and
 * that its max.message.bytes is at least ours: a topic with `delete` retention would lose tenants
 * whose config did not change for a week, so that is an error, not a warning — also beside `compact`
 * (`compact,delete`), unless neither retention.ms nor retention.bytes deletes anything (-1).
 */
export async function ensureSnapshotTopic(admin: Admin, settings: SnapshotTopicSettings): Promise<void> {
  const existing = await admin.listTopics();
  if (!existing.includes(settings.topic)) {
    const replicationFactor =
      settings.replicationFactor ?? defaultReplicationFactor((await admin.describeCluster()).brokers.length);
    try {
      await admin.createTopics({
        waitForLeaders: true,
        topics: [
          {
            topic: settings.topic,
            numPartitions: settings.partitions,
            replicationFactor,
            configEntries: snapshotTopicConfig({ ...settings, replicationFactor }),
          },
        ],
      });
      return;
    } catch (error) {
      const type = (error as { type?: string }).type;
      // kafkajs's wait for the new topic's leaders gives up when a broker does not know the topic yet,
      // though it was created. The same answer also comes when the creation did not take (a deletion of
      // the same name still under way): then the topic is not listed and the caller retries later.
      if (type === UNKNOWN_TOPIC && (await admin.listTopics()).includes(settings.topic)) {
        await waitForLeaders(admin, settings.topic);
        return;
      }
      // Another process created it between listTopics and createTopics: verify it below.
      if (type !== 'TOPIC_ALREADY_EXISTS') throw error;
    }
  }
  const value = await describeTopicConfig(admin, settings.topic);
  const { problem } = retentionOf(settings.topic, value);
  if (problem !== undefined) throw new Error(problem);
  const maxBytes = Number(value('max.message.bytes') ?? '0');
  if (maxBytes < settings.maxMessageBytes) {
    throw new Error(
      `Kafka topic ${settings.topic} has max.message.bytes=${maxBytes}, below SNAPSHOT_MAX_MESSAGE_BYTES=` +
        `${settings.maxMessageBytes}`,
    );
  }
}

/**
 * Whether the topic's settings now let it delete a tenant's newest record, as ensureSnapshotTopic
 * refuses at start: an operator may change them on a running cluster.
 */
export async function describeSnapshotTopicRetention(admin: Admin, topic: string): Promise<TopicRetention> {
  return retentionOf(topic, await describeTopicConfig(admin, topic));
}

type TopicConfigValue = (name: string) => string | undefined;

async function describeTopicConfig(admin: Admin, topic: string): Promise<TopicConfigValue> {
  const described = await admin.describeConfigs({
    includeSynonyms: false,
    resources: [
      {
        type: TOPIC_RESOURCE,
        name: topic,
        configNames: ['cleanup.policy', 'max.message.bytes', 'retention.ms', 'retention.bytes'],
      },
    ],
  });
  const entries = described.resources[0]?.configEntries ?? [];
  return (name) => entries.find((entry) => entry.configName === name)?.configValue;
}

/**
 * A topic must be compacted; `delete` beside `compact` removes whole segments past retention.ms or
 * retention.bytes, and with them tenants whose config did not change for that long — unless both are -1.
 */
function retentionOf(topic: string, value: TopicConfigValue): TopicRetention {
  const cleanup = value('cleanup.policy') ?? '';
  const policies = cleanup.split(',');
  const retentionMs = value('retention.ms');
  const deletesByAge = policies.includes('delete') && retentionMs !== undefined && retentionMs !== '-1';
  const byAge = deletesByAge ? Number(retentionMs) : undefined;
  if (!policies.includes('compact')) {
    return {
      problem: `Kafka topic ${topic} has cleanup.policy=${cleanup}; the snapshot topic must be compacted`,
      retentionMs: byAge,
    };
  }
  const deletes = [
    ['retention.ms', retentionMs],
    ['retention.bytes', value('retention.bytes')],
  ].filter(([, setting]) => setting !== undefined && setting !== '-1');
  if (!policies.includes('delete') || deletes.length === 0)
    return { problem: undefined, retentionMs: undefined };
  return {
    problem:
      `Kafka topic ${topic} has cleanup.policy=${cleanup} and ` +
      `${deletes.map(([name, setting]) => `${name}=${setting}`).join(', ')}: tenants whose config does not ` +
      'change for that long would vanish from the snapshot topic; set cleanup.policy=compact',
    retentionMs: byAge,
  };
}

/**
 * The high-water mark of each partition that holds a record, from `admin.fetchTopicOffsets`: a reader
 * that stops there has seen every record the topic held at the call.
 */
export async function partitionHighWaterMarks(admin: Admin, topic: string): Promise<Map<number, bigint>> {
  const offsets = await admin.fetchTopicOffsets(topic);
  return new Map(
    offsets
      .filter((entry) => BigInt(entry.high) > BigInt(entry.low))
      .map((entry) => [entry.partition, BigInt(entry.high)]),
  );
}

/** A snapshot consumer's fetch sizes: one record of the topic's largest size always fits. */
export function snapshotFetchSizes(maxMessageBytes: number): {
  maxBytesPerPartition: number;
  maxBytes: number;
} {
  return { maxBytesPerPartition: maxMessageBytes, maxBytes: Math.max(maxMessageBytes * 2, 10 * 1024 * 1024) };
}

/** Waits until every partition of a topic just created has a leader, or fails after a while. */
async function waitForLeaders(admin: Admin, topic: string): Promise<void> {
  const deadline = Date.now() + CREATED_TOPIC_LEADER_WAIT_MS;
  for (;;) {
    try {
      const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
      const partitions = topics[0]?.partitions ?? [];
      if (partitions.length > 0 && partitions.every((partition) => partition.leader >= 0)) return;
      if (Date.now() >= deadline) throw new Error(`Kafka topic ${topic} has partitions without a leader`);
    } catch (error) {
      const type = (error as { type?: string }).type;
      if ((type !== UNKNOWN_TOPIC && type !== 'LEADER_NOT_AVAILABLE') || Date.now() >= deadline) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, LEADER_POLL_MS));
  }
}

/**
 * Deletes a consumer group that was one reader's alone (a subscription, a read of the topic), so none is
 * left behind in the broker; best effort: a failure leaves it to the broker's offsets retention.
 */
export async function deleteConsumerGroup(kafka: Kafka, groupId: string): Promise<void> {
  const admin = kafka.admin();
  await admin
    .connect()
    .then(() => admin.deleteGroups([groupId]))
    .catch(() => {})
    .finally(() => admin.disconnect().catch(() => {}));
}
