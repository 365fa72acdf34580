import {
  createTestKafka,
  TEST_PRODUCER_CONFIG,
  uniqueGroupId,
  uniqueTopic,
} from '@vantageedge/shared/testing/kafka';
import type { Admin, Consumer, EachMessagePayload, Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * Proof that the broker `make infra-up` starts works with kafkajs 2.2.4 for everything the design needs:
 * compacted topics created explicitly, an idempotent producer, consumer groups with committed offsets,
 * a fresh consumer reading a compacted topic from the beginning (how gateways load tenant snapshots),
 * and high-water marks. Kafka 4.x removed old protocol versions, so each of these is a separate API.
 */

interface Received {
  key: string;
  value: string;
  offset: string;
}

/** Runs `consumer` until `done(received)` is true; resolves with everything received. */
async function consumeUntil(
  consumer: Consumer,
  done: (received: Received[]) => boolean,
  { autoCommit = true }: { autoCommit?: boolean } = {},
): Promise<Received[]> {
  const received: Received[] = [];
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  await consumer.run({
    autoCommit,
    eachMessage: async ({ message }: EachMessagePayload) => {
      received.push({
        key: message.key?.toString() ?? '',
        value: message.value?.toString() ?? '',
        offset: message.offset,
      });
      if (done(received)) finish();
    },
  });
  await finished;
  return received;
}

async function readWholeTopic(kafka: Kafka, topic: string, expectedAtLeast: number): Promise<Received[]> {
  const consumer = kafka.consumer({ groupId: uniqueGroupId('reader') });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    const admin = kafka.admin();
    await admin.connect();
    const [partition] = await admin.fetchTopicOffsets(topic);
    await admin.disconnect();
    const lastOffset = BigInt(partition?.high ?? '0') - 1n;
    // Read up to the high-water mark: on a compacted topic offsets have gaps, so count is not enough.
    return await consumeUntil(
      consumer,
      (received) =>
        received.length >= expectedAtLeast && BigInt(received.at(-1)?.offset ?? '-1') >= lastOffset,
      { autoCommit: false },
    );
  } finally {
    await consumer.disconnect();
  }
}

describe('local Kafka broker with kafkajs 2.2.4', () => {
  const kafka = createTestKafka();
  let admin: Admin;
  const topics: string[] = [];

  beforeAll(async () => {
    admin = kafka.admin();
    await admin.connect();
  });

  afterAll(async () => {
    if (topics.length > 0) await admin.deleteTopics({ topics }).catch(() => {});
    await admin.disconnect();
  });

  it('creates a compacted topic explicitly and reports its cleanup policy', async () => {
    const topic = uniqueTopic('compacted');
    topics.push(topic);
    const created = await admin.createTopics({
      waitForLeaders: true,
      topics: [{ topic, numPartitions: 1, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }],
    });
    expect(created).toBe(true);

    const { resources } = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: 2 /* ConfigResourceTypes.TOPIC */, name: topic, configNames: ['cleanup.policy'] }],
    });
    expect(resources[0]?.configEntries.find((e) => e.configName === 'cleanup.policy')?.configValue).toBe(
      'compact',
    );
    expect(await admin.listTopics()).toContain(topic);
  });

  it('does not auto-create a topic that nobody created', async () => {
    const producer = kafka.producer({ ...TEST_PRODUCER_CONFIG, retry: { retries: 1 } });
    await producer.connect();
    try {
      await expect(
        producer.send({ topic: uniqueTopic('never-created'), messages: [{ key: 'k', value: 'v' }] }),
      ).rejects.toThrow(/does not host this topic-partition|UNKNOWN_TOPIC_OR_PARTITION|topic/i);
    } finally {
      await producer.disconnect();
    }
  });

  it('writes keyed messages with an idempotent producer and reports the high-water mark', async () => {
    const topic = uniqueTopic('events');
    topics.push(topic);
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 2 }] });

    const producer = kafka.producer(TEST_PRODUCER_CONFIG);
    await producer.connect();
    try {
      const results = await producer.send({
        topic,
        messages: Array.from({ length: 10 }, (_, i) => ({ key: `tenant-${i % 3}`, value: `event-${i}` })),
      });
      expect(results.every((r) => r.errorCode === 0)).toBe(true);
    } finally {
      await producer.disconnect();
    }

    const offsets = await admin.fetchTopicOffsets(topic);
    expect(offsets).toHaveLength(2);
    expect(offsets.reduce((sum, p) => sum + Number(p.high), 0)).toBe(10);
    expect(offsets.every((p) => p.low === '0')).toBe(true);
  });

  it('consumes with a consumer group and resumes after its committed offset', async () => {
    const topic = uniqueTopic('group');
    const groupId = uniqueGroupId('resume');
    topics.push(topic);
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 1 }] });
    const producer = kafka.producer(TEST_PRODUCER_CONFIG);
    await producer.connect();
    await producer.send({ topic, messages: ['a', 'b', 'c'].map((v) => ({ key: v, value: v })) });

    const first = kafka.consumer({ groupId });
    await first.connect();
    await first.subscribe({ topic, fromBeginning: true });
    const firstBatch = await consumeUntil(first, (received) => received.length >= 3);
    await first.disconnect(); // commits the consumed offsets on the way out
    expect(firstBatch.map((m) => m.value)).toEqual(['a', 'b', 'c']);

    const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
    expect(committed?.partitions[0]?.offset).toBe('3');

    await producer.send({ topic, messages: [{ key: 'd', value: 'd' }] });
    await producer.disconnect();

    const second = kafka.consumer({ groupId });
    await second.connect();
    await second.subscribe({ topic, fromBeginning: true });
    const secondBatch = await consumeUntil(second, (received) => received.length >= 1);
    await second.disconnect();
    expect(secondBatch.map((m) => m.value)).toEqual(['d']);
  });

  it('lets a fresh consumer read a compacted topic from the beginning, latest value per key', async () => {
    const topic = uniqueTopic('snapshots');
    topics.push(topic);
    // Aggressive cleaning so compaction really happens during the test.
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        {
          topic,
          numPartitions: 1,
          configEntries: [
            { name: 'cleanup.policy', value: 'compact' },
            { name: 'segment.ms', value: '100' },
            { name: 'min.cleanable.dirty.ratio', value: '0.01' },
            { name: 'min.compaction.lag.ms', value: '0' },
            { name: 'delete.retention.ms', value: '100' },
          ],
        },
      ],
    });
    const producer = kafka.producer(TEST_PRODUCER_CONFIG);
    await producer.connect();
    try {
      for (let version = 1; version <= 3; version++) {
        await producer.send({
          topic,
          messages: ['acme', 'globex'].map((tenant) => ({ key: tenant, value: `${tenant}-v${version}` })),
        });
      }

      // Before the cleaner runs, a reader sees the whole history.
      const history = await readWholeTopic(kafka, topic, 6);
      expect(history.map((m) => m.value).slice(0, 6)).toEqual([
        'acme-v1',
        'globex-v1',
        'acme-v2',
        'globex-v2',
        'acme-v3',
        'globex-v3',
      ]);

      // The active segment is never cleaned: keep appending a filler key so segments roll, and
      // read again until the cleaner has removed the superseded values.
      let latest: Map<string, string> = new Map();
      let compacted = false;
      for (let attempt = 0; attempt < 120 && !compacted; attempt++) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        await producer.send({ topic, messages: [{ key: 'filler', value: `filler-${attempt}` }] });
        const seen = await readWholeTopic(kafka, topic, 1);
        const tenantValues = seen.filter((m) => m.key !== 'filler');
        latest = new Map(tenantValues.map((m) => [m.key, m.value]));
        compacted = tenantValues.length === 2;
      }
      expect(compacted).toBe(true);
      expect(Object.fromEntries(latest)).toEqual({ acme: 'acme-v3', globex: 'globex-v3' });

      const [partition] = await admin.fetchTopicOffsets(topic);
      // Offsets are never reused: the high-water mark counts every message ever written.
      expect(Number(partition?.high)).toBeGreaterThan(6);
    } finally {
      await producer.disconnect();
    }
  });
});
