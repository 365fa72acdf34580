import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { logLevel } from 'kafkajs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { TEST_INFRA } from '../testing/infrastructure.js';
import { createTestKafka, deleteTestTopics, uniqueTopic } from '../testing/kafka.js';
import { HEADER_VERSION } from './codec.js';
import { createKafkaSnapshotBus } from './kafka-snapshot-bus.js';
import type { SnapshotBus, SnapshotSubscription } from './port.js';
import {
  createSnapshotSigner,
  createSnapshotVerifier,
  HEADER_KEY_ID,
  HEADER_SIGNATURE,
} from './record-signature.js';
import { eventually, sampleSnapshot, snapshotMessage } from './testing.js';

const MAX_MESSAGE_BYTES = 1024 * 1024;
const topics: string[] = [];
const closing: Array<SnapshotBus | SnapshotSubscription> = [];
afterEach(async () => {
  await Promise.all(closing.splice(0).map((open) => open.close()));
});
afterAll(() => deleteTestTopics(topics));

/**
 * A verifying subscription's checks of what a topic writer produced. Each record that names an
 * accepted key with a signature of the right length costs an Ed25519 verification (~0.15 ms), and a
 * fetch holds thousands of small ones (many more compressed): the gateway serves requests on the same
 * event loop.
 */
describe('a verifying snapshot subscription', () => {
  it('lets the event loop run while it checks a batch of forged records, live and in its catch-up', async () => {
    const topic = uniqueTopic('verified-turns');
    topics.push(topic);
    const keys = generateKeyPairSync('ed25519');
    const signer = createSnapshotSigner(keys.privateKey);
    const bus = (options: { signer?: typeof signer; verify?: boolean }) => {
      const created = createKafkaSnapshotBus({
        brokers: TEST_INFRA.kafkaBrokers,
        clientId: `ve-test-${randomUUID()}`,
        topic,
        partitions: 1,
        replicationFactor: 1,
        maxMessageBytes: MAX_MESSAGE_BYTES,
        kafkaLogLevel: logLevel.NOTHING,
        groupIdPrefix: 've-test-verified-turns',
        ...(options.signer ? { signer: options.signer } : {}),
        ...(options.verify ? { verifier: createSnapshotVerifier([keys.publicKey]) } : {}),
      });
      closing.push(created);
      return created;
    };
    expect(
      (await bus({ signer }).publish([snapshotMessage(sampleSnapshot(randomUUID(), 1n))])).failed,
    ).toEqual([]);

    /** Subscribes; `refused()` is how many records were refused so far, `caughtUp()` whether it is. */
    const subscribe = async () => {
      let refused = 0;
      let caughtUp = false;
      closing.push(
        await bus({ verify: true }).subscribe({
          onMessage: () => {},
          onCaughtUp: () => {
            caughtUp = true;
          },
          onHealth: () => {},
          onUnverifiedMessage: () => {
            refused += 1;
          },
        }),
      );
      return { refused: () => refused, caughtUp: () => caughtUp };
    };
    /** The refused counts seen each time the event loop got a turn, until `count` were refused. */
    const turnsUntil = (refused: () => number, count: number) =>
      new Promise<number[]>((resolve) => {
        const seen: number[] = [];
        const sample = () => {
          seen.push(refused());
          if (refused() >= count) resolve(seen);
          else setImmediate(sample);
        };
        setImmediate(sample);
      });

    const live = await subscribe();
    await eventually('caught up', live.caughtUp);
    // Forged as any topic writer can: the accepted key's id and a signature of the right length.
    const count = 2000;
    const forged = Array.from({ length: count }, () => ({
      key: randomUUID(),
      value: Buffer.from('{}'),
      headers: {
        [HEADER_VERSION]: '9',
        [HEADER_KEY_ID]: signer.keyId,
        [HEADER_SIGNATURE]: Buffer.alloc(64, 7).toString('base64'),
      },
    }));
    const liveTurns = turnsUntil(live.refused, count);
    const producer = createTestKafka().producer();
    await producer.connect();
    try {
      await producer.send({ topic, acks: -1, messages: forged });
    } finally {
      await producer.disconnect();
    }
    // Turns while the batch was being checked, not only before and after it.
    expect((await liveTurns).some((refused) => refused > 0 && refused < count)).toBe(true);

    const starting = await subscribe();
    const startTurns = await turnsUntil(starting.refused, count);
    expect(startTurns.some((refused) => refused > 0 && refused < count)).toBe(true);
    await eventually('caught up', starting.caughtUp);
  }, 60_000);
});
