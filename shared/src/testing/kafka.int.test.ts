import { afterAll, describe, expect, it } from 'vitest';
import { createTestKafka, TEST_PRODUCER_CONFIG, uniqueGroupId, uniqueTopic } from './kafka.js';

describe('test harness: Kafka', () => {
  const kafka = createTestKafka();
  const admin = kafka.admin();
  const topic = uniqueTopic('harness');

  afterAll(async () => {
    await admin.deleteTopics({ topics: [topic] }).catch(() => {});
    await admin.disconnect();
  });

  it('gives unique topic and group names', () => {
    expect(uniqueTopic('harness')).not.toBe(topic);
    expect(topic).toMatch(/^ve-test-harness-[a-z0-9]+$/);
    expect(uniqueGroupId('harness')).not.toBe(uniqueGroupId('harness'));
  });

  it('writes a message and reads it back', async () => {
    await admin.connect();
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 1 }] });
    const producer = kafka.producer(TEST_PRODUCER_CONFIG);
    await producer.connect();
    await producer.send({ topic, messages: [{ key: 'tenant-1', value: '{"hello":"kafka"}' }] });
    await producer.disconnect();

    const consumer = kafka.consumer({ groupId: uniqueGroupId('harness') });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const received = await new Promise<{ key: string; value: string }>((resolve) => {
      void consumer.run({
        eachMessage: async ({ message }) => {
          resolve({ key: message.key?.toString() ?? '', value: message.value?.toString() ?? '' });
        },
      });
    });
    await consumer.disconnect();
    expect(received).toEqual({ key: 'tenant-1', value: '{"hello":"kafka"}' });
  });
});
