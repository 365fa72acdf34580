import { Kafka, logLevel, Partitioners, type ProducerConfig } from 'kafkajs';
import { stopIdleRequestQueueChecks } from '../snapshot-bus/kafkajs-idle-checks.js';
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
