import { randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  createTestKafka,
  createTestSnapshotBus,
  deleteTestTopics,
  TEST_PRODUCER_CONFIG,
  uniqueTopic,
} from '../testing/kafka.js';
import { HEADER_ENCODING, HEADER_VERSION } from './codec.js';
import type { SnapshotBus } from './port.js';
import { eventually, recordSubscription, sampleSnapshot, snapshotMessage } from './testing.js';

const topics: string[] = [];
const buses: SnapshotBus[] = [];

/** Its fetches (one message limit a partition) hold a few records each. */
const busOn = (topic: string): SnapshotBus => createTestSnapshotBus(topic, 've-test-catch-up', buses);

/** About 80 KB gzipped: three of them fill a fetch. */
function churnedSnapshot(tenantId: string, version: bigint) {
  return sampleSnapshot(tenantId, version, { routes: 1000, randomPaths: true, name: `v${version}` });
}

async function publishHistory(bus: SnapshotBus, tenantId: string, versions: number): Promise<void> {
  for (let version = 1n; version <= BigInt(versions); version++) {
    const result = await bus.publish([snapshotMessage(churnedSnapshot(tenantId, version))]);
    expect(result.failed).toEqual([]);
  }
}

afterEach(async () => {
  await Promise.all(buses.splice(0).map((bus) => bus.close()));
});

afterAll(() => deleteTestTopics(topics));

describe('a replica starting behind a churning tenant', () => {
  it('decodes the tenant once, at its newest version, however many fetches its history fills', async () => {
    const topic = uniqueTopic('catch-up');
    topics.push(topic);
    const churning = randomUUID();
    const quiet = randomUUID();
    const publisher = busOn(topic);
    await publisher.publish([snapshotMessage(sampleSnapshot(quiet, 1n))]);
    await publishHistory(publisher, churning, 12);

    const replica = await recordSubscription(busOn(topic));
    await eventually('caught up', () => replica.caughtUpAfter() !== undefined);

    expect(replica.versionsOf(churning)).toEqual([12n]);
    expect(replica.versionsOf(quiet)).toEqual([1n]);
    expect(replica.caughtUpAfter()).toBe(2);
    const newest = replica.messages.find((message) => message.tenantId === churning);
    expect(newest?.kind === 'snapshot' && newest.snapshot.tenant.name).toBe('v12');

    // Caught up, it delivers each later version as it comes.
    await publisher.publish([snapshotMessage(churnedSnapshot(churning, 13n))]);
    await eventually('live version', () => replica.versionsOf(churning).length === 2);
    expect(replica.versionsOf(churning)).toEqual([12n, 13n]);
  });

  it('falls back to the tenant’s previous version when its newest record cannot be decoded', async () => {
    const topic = uniqueTopic('catch-up-corrupt');
    topics.push(topic);
    const tenantId = randomUUID();
    const publisher = busOn(topic);
    await publishHistory(publisher, tenantId, 6);
    // A newest record that inflates to something that is not a snapshot.
    const producer = createTestKafka().producer(TEST_PRODUCER_CONFIG);
    await producer.connect();
    try {
      await producer.send({
        topic,
        messages: [
          {
            key: tenantId,
            value: gzipSync(Buffer.from('{"not":"a snapshot"}'.repeat(2000))),
            headers: { [HEADER_VERSION]: '7', [HEADER_ENCODING]: 'gzip' },
          },
        ],
      });
    } finally {
      await producer.disconnect();
    }

    const replica = await recordSubscription(busOn(topic));
    await eventually('caught up', () => replica.caughtUpAfter() !== undefined);

    expect(replica.versionsOf(tenantId)).toEqual([6n]);
    expect(replica.invalid).toHaveLength(1);
  });
});
