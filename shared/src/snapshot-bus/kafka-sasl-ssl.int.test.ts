import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSettings } from '../settings/load-settings.js';
import { TEST_INFRA } from '../testing/infrastructure.js';
import { deleteTestTopics, uniqueTopic } from '../testing/kafka.js';
import { createTestCa } from '../testing/test-certificates.js';
import type { SnapshotBus } from './port.js';
import { snapshotBusFromSettings, snapshotBusSettings } from './settings.js';
import { eventually, recordSubscription, sampleSnapshot, snapshotMessage } from './testing.js';

/**
 * The snapshot bus over the local broker's SASL_SSL listener (SCRAM-SHA-512 over TLS, infra/kafka.sh),
 * built from the services' own settings: what a projector and a gateway configured for an
 * authenticated, encrypted Kafka do.
 */
const { brokers, caFile, username, password } = TEST_INFRA.kafkaSaslSsl;
const WRONG_PASSWORD = `wrong-${randomUUID()}`;
const topics: string[] = [];
const buses: SnapshotBus[] = [];
let otherCaFile: string;
let folder: string;

beforeAll(async () => {
  folder = await mkdtemp(path.join(tmpdir(), 've-kafka-tls-'));
  otherCaFile = path.join(folder, 'other-ca.crt');
  await writeFile(otherCaFile, (await createTestCa('Not the broker’s CA')).certificatePem);
});

afterAll(async () => {
  await Promise.all(buses.map((bus) => bus.close().catch(() => {})));
  await deleteTestTopics(topics);
  await rm(folder, { recursive: true, force: true });
});

function bus(topic: string, env: Record<string, string>): SnapshotBus {
  const settings = parseSettings(snapshotBusSettings, {
    KAFKA_BROKERS: brokers.join(','),
    SNAPSHOT_TOPIC: topic,
    SNAPSHOT_TOPIC_PARTITIONS: '1',
    SNAPSHOT_TOPIC_REPLICATION: '1',
    ...env,
  });
  const created = snapshotBusFromSettings(settings, {
    clientId: `ve-test-${randomUUID()}`,
    groupIdPrefix: 've-test-sasl',
  });
  buses.push(created);
  return created;
}

const scram = (secret: string) => ({
  KAFKA_SASL_MECHANISM: 'scram-sha-512',
  KAFKA_SASL_USERNAME: username,
  KAFKA_SASL_PASSWORD: secret,
});

describe('snapshot bus over SASL_SSL', () => {
  it('publishes a snapshot and another replica reads it, authenticated with SCRAM over TLS', async () => {
    const topic = uniqueTopic('sasl-ssl');
    topics.push(topic);
    const snapshot = sampleSnapshot(randomUUID(), 3n);
    const published = await bus(topic, { ...scram(password), KAFKA_TLS_CA_FILE: caFile }).publish([
      snapshotMessage(snapshot),
    ]);
    expect(published.failed).toEqual([]);

    const reader = await recordSubscription(bus(topic, { ...scram(password), KAFKA_TLS_CA_FILE: caFile }));
    await eventually('the snapshot read over SASL_SSL', () => reader.caughtUpAfter() !== undefined);
    expect(reader.versionsOf(snapshot.tenant_id)).toEqual([3n]);
  });

  it('with a wrong password refuses to publish or read, naming the authentication and not the password', async () => {
    const topic = uniqueTopic('sasl-ssl-wrong-password');
    topics.push(topic);
    const wrong = { ...scram(WRONG_PASSWORD), KAFKA_TLS_CA_FILE: caFile };
    const failure = await bus(topic, wrong)
      .publish([snapshotMessage(sampleSnapshot(randomUUID(), 1n))])
      .then(
        () => undefined,
        (error: Error) => error,
      );
    expect(failure?.message).toMatch(/SASL SCRAM SHA512 authentication failed.*invalid credentials/);
    expect(failure?.message).not.toContain(WRONG_PASSWORD);

    const reader = await recordSubscription(bus(topic, wrong));
    await eventually('the subscription reporting the broker unreachable', () => reader.health.length > 0);
    expect(reader.health[0]).toEqual({
      connected: false,
      error: expect.stringMatching(/authentication failed/),
    });
    expect(JSON.stringify(reader.health)).not.toContain(WRONG_PASSWORD);
    expect(reader.caughtUpAfter()).toBeUndefined();
    await reader.subscription.close();
  });

  it.each([
    ['a CA that did not sign the broker’s certificate', () => ({ KAFKA_TLS_CA_FILE: otherCaFile })],
    ['the system CAs', () => ({ KAFKA_TLS: 'true' })],
  ])('refuses the broker’s certificate when trusting %s', async (_trusting, tls) => {
    const topic = uniqueTopic('sasl-ssl-other-ca');
    topics.push(topic);
    const failure = await bus(topic, { ...scram(password), ...tls() })
      .publish([snapshotMessage(sampleSnapshot(randomUUID(), 1n))])
      .then(
        () => undefined,
        (error: Error) => error,
      );
    expect(failure?.message).toMatch(/self-signed certificate in certificate chain|unable to verify/);
  });
});
