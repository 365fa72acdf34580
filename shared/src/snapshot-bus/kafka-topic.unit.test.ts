import type { Admin } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import {
  defaultReplicationFactor,
  ensureSnapshotTopic,
  minInsyncReplicas,
  snapshotTopicConfig,
} from './kafka-topic.js';

describe('snapshot topic replication', () => {
  it('copies each partition to as many brokers as there are, at most three', () => {
    expect([1, 2, 3, 4, 9].map(defaultReplicationFactor)).toEqual([1, 2, 3, 3, 3]);
  });

  it('needs a majority of the copies in sync, but never all of two or more (one broker may be down)', () => {
    expect([1, 2, 3, 4, 5].map(minInsyncReplicas)).toEqual([1, 1, 2, 3, 3]);
    const config = snapshotTopicConfig({
      topic: 't',
      partitions: 6,
      replicationFactor: 3,
      maxMessageBytes: 1 << 20,
    });
    expect(config).toContainEqual({ name: 'min.insync.replicas', value: '2' });
  });
});

describe('creating the snapshot topic', () => {
  const settings = { topic: 'snapshots', partitions: 1, replicationFactor: 1, maxMessageBytes: 1 << 20 };
  const kafkaError = (type: string) => Object.assign(new Error(type), { type });

  it('waits for the leaders itself when the broker does not know the topic it has just created', async () => {
    let metadataCalls = 0;
    let listed: string[] = [];
    const admin = {
      listTopics: async () => listed,
      // kafkajs gives up waiting for the leaders on this answer, though the topic was created.
      createTopics: async () => {
        listed = ['snapshots'];
        throw kafkaError('UNKNOWN_TOPIC_OR_PARTITION');
      },
      fetchTopicMetadata: async () => {
        metadataCalls += 1;
        if (metadataCalls === 1) throw kafkaError('UNKNOWN_TOPIC_OR_PARTITION');
        const leader = metadataCalls === 2 ? -1 : 0;
        return { topics: [{ name: 'snapshots', partitions: [{ partitionId: 0, leader }] }] };
      },
    } as unknown as Admin;
    await expect(ensureSnapshotTopic(admin, settings)).resolves.toBeUndefined();
    expect(metadataCalls).toBe(3);
  });

  it('fails at once, for its caller to retry, when the creation did not take', async () => {
    let metadataCalls = 0;
    const admin = {
      // A deletion of the same name still under way: the topic is not there after the creation.
      listTopics: async () => [],
      createTopics: async () => {
        throw kafkaError('UNKNOWN_TOPIC_OR_PARTITION');
      },
      fetchTopicMetadata: async () => {
        metadataCalls += 1;
        throw kafkaError('UNKNOWN_TOPIC_OR_PARTITION');
      },
    } as unknown as Admin;
    await expect(ensureSnapshotTopic(admin, settings)).rejects.toThrow('UNKNOWN_TOPIC_OR_PARTITION');
    expect(metadataCalls).toBe(0);
  });

  it('still fails on any other error of the creation', async () => {
    const admin = {
      listTopics: async () => [],
      createTopics: async () => {
        throw kafkaError('POLICY_VIOLATION');
      },
    } as unknown as Admin;
    await expect(ensureSnapshotTopic(admin, settings)).rejects.toThrow('POLICY_VIOLATION');
  });
});
