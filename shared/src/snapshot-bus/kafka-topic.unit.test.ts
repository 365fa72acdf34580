import { describe, expect, it } from 'vitest';
import { defaultReplicationFactor, minInsyncReplicas, snapshotTopicConfig } from './kafka-topic.js';

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
