import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { logLevel } from 'kafkajs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { TEST_INFRA } from '../testing/infrastructure.js';
import {
  createTestKafka,
  deleteTestTopics,
  produceWithNullHeaderValues,
  uniqueTopic,
} from '../testing/kafka.js';
import { encodeSnapshotMessage } from './codec.js';
import { createKafkaSnapshotBus } from './kafka-snapshot-bus.js';
import type { SnapshotBus } from './port.js';
import { createSnapshotSigner, HEADER_SIGNATURE } from './record-signature.js';
import { sampleSnapshot, snapshotMessage } from './testing.js';

const MAX_MESSAGE_BYTES = 1024 * 1024;
const topics: string[] = [];
const buses: SnapshotBus[] = [];
afterEach(async () => {
  await Promise.all(buses.splice(0).map((bus) => bus.close()));
});
afterAll(() => deleteTestTopics(topics));

/**
 * The snapshot projector compares the topic with its store at start, and a version on the topic above
 * the event store's head stops all its publishing (docs/deployment.md, the restore runbook). A
 * projector that signs its records takes its own alone into account: any other topic writer could
 * otherwise stop every tenant's changes with one record.
 */
function signingBus(topic: string): SnapshotBus {
  const bus = createKafkaSnapshotBus({
    brokers: TEST_INFRA.kafkaBrokers,
    clientId: `ve-test-${randomUUID()}`,
    topic,
    partitions: 1,
    replicationFactor: 1,
    maxMessageBytes: MAX_MESSAGE_BYTES,
    kafkaLogLevel: logLevel.NOTHING,
    signer: createSnapshotSigner(generateKeyPairSync('ed25519').privateKey),
  });
  buses.push(bus);
  return bus;
}

describe('the topic versions a signing snapshot projector reads at start', () => {
  it('leave out records its own key did not sign', async () => {
    const topic = uniqueTopic('signed-versions');
    topics.push(topic);
    const bus = signingBus(topic);
    const [tenant, forgedOnly] = [randomUUID(), randomUUID()];
    expect((await bus.publish([snapshotMessage(sampleSnapshot(tenant, 7n))])).failed).toEqual([]);

    const foreign = createSnapshotSigner(generateKeyPairSync('ed25519').privateKey);
    const unsigned = encodeSnapshotMessage(
      snapshotMessage(sampleSnapshot(tenant, 9_000_000n)),
      MAX_MESSAGE_BYTES,
    );
    const otherKey = encodeSnapshotMessage(
      { kind: 'tombstone', tenantId: forgedOnly, version: 9_000_001n },
      MAX_MESSAGE_BYTES,
    );
    foreign.sign(otherKey);
    const producer = createTestKafka().producer();
    await producer.connect();
    try {
      await producer.send({ topic, acks: -1, messages: [unsigned, otherKey] });
    } finally {
      await producer.disconnect();
    }

    expect(await bus.readNewestVersions?.()).toEqual(new Map([[tenant, 7n]]));
  }, 60_000);

  it('leave out a record with a header without a value, and read on', async () => {
    const topic = uniqueTopic('signed-versions-null-header');
    topics.push(topic);
    const bus = signingBus(topic);
    const tenant = randomUUID();
    expect((await bus.publish([snapshotMessage(sampleSnapshot(tenant, 7n))])).failed).toEqual([]);
    const forged = encodeSnapshotMessage(snapshotMessage(sampleSnapshot(tenant, 9n)), MAX_MESSAGE_BYTES);
    await produceWithNullHeaderValues(topic, [
      { ...forged, headers: { ...forged.headers, [HEADER_SIGNATURE]: null } },
    ]);

    expect(await bus.readNewestVersions?.()).toEqual(new Map([[tenant, 7n]]));
  }, 60_000);
});
