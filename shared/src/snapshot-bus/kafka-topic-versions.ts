import { randomUUID } from 'node:crypto';
import type { IHeaders, Kafka } from 'kafkajs';
import { HEADER_VERSION } from './codec.js';
import { deleteConsumerGroup, partitionHighWaterMarks, snapshotFetchSizes } from './kafka-topic.js';
import { noteHighestVersion } from './newest-per-tenant.js';
import type { SnapshotVerifier } from './record-signature.js';

/**
 * Each tenant's highest version on the topic, from the records' version headers (the values are
 * fetched, as by any consumer, but never inflated or parsed). Reads every partition up to its
 * high-water mark at the call, with a consumer group of its own that is deleted afterwards. A topic that
 * does not exist, or holds no record, gives an empty map. With `verifier`, a record it refuses is left out.
 */
export async function readTopicVersions(
  kafka: Kafka,
  options: {
    topic: string;
    maxMessageBytes: number;
    groupIdPrefix?: string | undefined;
    verifier?: SnapshotVerifier | undefined;
  },
): Promise<Map<string, bigint>> {
  const versions = new Map<string, bigint>();
  const admin = kafka.admin();
  await admin.connect();
  let marks: Map<number, bigint>;
  try {
    if (!(await admin.listTopics()).includes(options.topic)) return versions;
    marks = await partitionHighWaterMarks(admin, options.topic);
  } finally {
    await admin.disconnect();
  }
  if (marks.size === 0) return versions;

  const groupId = `${options.groupIdPrefix ?? 've-snapshot-versions'}-${randomUUID()}`;
  const consumer = kafka.consumer({
    groupId,
    maxWaitTimeInMs: 500,
    ...snapshotFetchSizes(options.maxMessageBytes),
  });
  try {
    await consumer.connect();
    await consumer.subscribe({ topic: options.topic, fromBeginning: true });
    const remaining = new Set(marks.keys());
    await new Promise<void>((resolve, reject) => {
      consumer.on(consumer.events.CRASH, (event) => {
        if (!event.payload.restart) reject(event.payload.error);
      });
      consumer
        .run({
          autoCommit: false,
          eachBatch: async ({ batch }) => {
            for (const message of batch.messages) {
              if (BigInt(message.offset) >= (marks.get(batch.partition) ?? 0n)) break;
              const key = message.key ? message.key.toString('utf8') : null;
              if (options.verifier) {
                const record = { key, value: message.value, headers: headerText(message.headers) };
                if (options.verifier.refusal(record) === undefined) noteHighestVersion(versions, record);
                continue;
              }
              const header = message.headers?.[HEADER_VERSION];
              const version = Array.isArray(header) ? header[0] : header;
              noteHighestVersion(versions, { key, headers: { [HEADER_VERSION]: version?.toString() } });
            }
            const next = BigInt(batch.lastOffset()) + 1n;
            if (next >= (marks.get(batch.partition) ?? 0n)) remaining.delete(batch.partition);
            if (remaining.size === 0) resolve();
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect().catch(() => {});
    await deleteConsumerGroup(kafka, groupId);
  }
  return versions;
}

/**
 * A record's headers as text (the first value of a repeated one). A header without a value (Kafka's
 * record format allows a null one, which kafkajs hands over as null) reads as absent.
 */
export function headerText(headers: IHeaders | undefined): Record<string, string | undefined> {
  const result: Record<string, string | undefined> = {};
  for (const [name, raw] of Object.entries(headers ?? {})) {
    const value: unknown = Array.isArray(raw) ? raw[0] : raw;
    result[name] = value === undefined || value === null ? undefined : String(value);
  }
  return result;
}
