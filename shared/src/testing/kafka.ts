import { Kafka, logLevel, Partitioners, type ProducerConfig } from 'kafkajs';
import { CONTRACT_MAX_MESSAGE_BYTES } from '../snapshot-bus/contract.js';
import { createKafkaSnapshotBus } from '../snapshot-bus/kafka-snapshot-bus.js';
import { stopIdleRequestQueueChecks } from '../snapshot-bus/kafkajs-idle-checks.js';
import type { SnapshotBus } from '../snapshot-bus/port.js';
import { TEST_INFRA, uniqueSuffix } from './infrastructure.js';

/**
 * A kafkajs client for the local broker started by `make infra-up` (TEST_INFRA.kafkaBrokers), or for
 * `brokers`. Quiet by default: kafkajs logs every reconnect at INFO, which drowns test output.
 */
export function createTestKafka({
  clientId = `ve-test-${uniqueSuffix()}`,
  level = logLevel.ERROR,
  brokers = TEST_INFRA.kafkaBrokers,
}: {
  clientId?: string;
  level?: logLevel;
  brokers?: readonly string[];
} = {}): Kafka {
  // As the services' own clients: no idle connection checking its empty queue every millisecond.
  stopIdleRequestQueueChecks();
  return new Kafka({
    clientId,
    brokers: [...brokers],
    logLevel: level,
    retry: { retries: 5 },
  });
}

/**
 * Producer settings for tests and services: the v2 default partitioner spelled out (silences
 * kafkajs' partitioner warning), idempotent so retries never duplicate a message.
 */
export const TEST_PRODUCER_CONFIG: ProducerConfig = {
  createPartitioner: Partitioners.DefaultPartitioner,
  idempotent: true,
  maxInFlightRequests: 1,
};

/** A topic name no other test file (or parallel engineer) uses, e.g. `ve-test-snapshots-lx3k9a2b`. */
export function uniqueTopic(purpose: string): string {
  return `ve-test-${purpose}-${uniqueSuffix()}`;
}

/**
 * A quiet snapshot bus on a one-partition test topic, its message limit the contract suite's, added to
 * `buses` for the test to close; its consumer group's session `sessionTimeoutMs` (default the bus's own).
 */
export function createTestSnapshotBus(
  topic: string,
  groupIdPrefix: string,
  buses: SnapshotBus[],
  sessionTimeoutMs?: number,
): SnapshotBus {
  const bus = createKafkaSnapshotBus({
    brokers: TEST_INFRA.kafkaBrokers,
    clientId: `ve-test-${uniqueSuffix()}`,
    topic,
    partitions: 1,
    replicationFactor: 1,
    maxMessageBytes: CONTRACT_MAX_MESSAGE_BYTES,
    groupIdPrefix,
    kafkaLogLevel: logLevel.NOTHING,
    ...(sessionTimeoutMs === undefined ? {} : { sessionTimeoutMs }),
  });
  buses.push(bus);
  return bus;
}

/** A consumer group id no other test uses. */
export function uniqueGroupId(purpose: string): string {
  return `ve-test-${purpose}-group-${uniqueSuffix()}`;
}

/** Deletes topics a test or benchmark made on the local broker (what is already gone is ignored). */
export async function deleteTestTopics(topics: string[]): Promise<void> {
  const admin = createTestKafka({
    clientId: `ve-test-cleanup-${uniqueSuffix()}`,
    level: logLevel.NOTHING,
  }).admin();
  await admin.connect();
  try {
    await admin.deleteTopics({ topics }).catch(() => {});
  } finally {
    await admin.disconnect();
  }
}

/**
 * Deletes a topic and waits until the broker no longer lists it, as when a topic is lost (its data
 * wiped or the topic deleted by hand); fails when it is still listed after about ten seconds.
 */
export async function deleteTopicUntilGone(topic: string): Promise<void> {
  const admin = createTestKafka({ level: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    await admin.deleteTopics({ topics: [topic] });
    for (let attempt = 0; (await admin.listTopics()).includes(topic); attempt += 1) {
      if (attempt >= 100) throw new Error(`Kafka topic ${topic} is still listed after its deletion`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    await admin.disconnect();
  }
}

/** A record to produce whose headers may have no value (Kafka's null header value). */
export interface RecordWithNullableHeaders {
  key: string;
  value: Buffer | null;
  headers: Record<string, string | null>;
}

/**
 * Produces records as a client other than kafkajs may: a header with a null value is valid in Kafka's
 * record format (the Java client's `new RecordHeader(name, null)`), and kafkajs writes one, but it
 * measures each header value's size first and throws on null; that measurement alone counts null as
 * empty while the records are encoded.
 */
export async function produceWithNullHeaderValues(
  topic: string,
  records: readonly RecordWithNullableHeaders[],
): Promise<void> {
  const producer = createTestKafka().producer();
  await producer.connect();
  const byteLength = Buffer.byteLength;
  Buffer.byteLength = ((value: Parameters<typeof byteLength>[0], encoding?: BufferEncoding) =>
    value === null ? 0 : byteLength(value, encoding)) as typeof byteLength;
  try {
    await producer.send({
      topic,
      acks: -1,
      messages: records.map((record) => ({
        key: record.key,
        value: record.value,
        headers: record.headers as Record<string, string>,
      })),
    });
  } finally {
    Buffer.byteLength = byteLength;
    await producer.disconnect();
  }
}
