import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CONTRACT_MAX_MESSAGE_BYTES, snapshotBusContract } from './contract.js';
import {
  createInMemorySnapshotBus,
  InMemorySnapshotLog,
  SnapshotBusUnavailableError,
} from './in-memory-snapshot-bus.js';
import { eventually, recordSubscription, sampleSnapshot, snapshotMessage } from './testing.js';

snapshotBusContract('in-memory', async () => {
  const log = new InMemorySnapshotLog();
  return {
    bus: createInMemorySnapshotBus({ log, maxMessageBytes: CONTRACT_MAX_MESSAGE_BYTES }),
    connectAnother: () => createInMemorySnapshotBus({ log, maxMessageBytes: CONTRACT_MAX_MESSAGE_BYTES }),
  };
});

describe('in-memory snapshot log outage simulation', () => {
  it('refuses publishes and reports subscribers disconnected while unavailable, then delivers the backlog', async () => {
    const bus = createInMemorySnapshotBus();
    const subscriber = await recordSubscription(bus);
    await eventually('caught up', () => subscriber.caughtUpAfter() !== undefined);
    bus.log.setAvailable(false);
    await expect(bus.publish([snapshotMessage(sampleSnapshot(randomUUID(), 1n))])).rejects.toBeInstanceOf(
      SnapshotBusUnavailableError,
    );
    await eventually('disconnected', () => subscriber.health.at(-1)?.connected === false);
    bus.log.setAvailable(true);
    await bus.publish([snapshotMessage(sampleSnapshot(randomUUID(), 2n))]);
    await eventually('reconnected and delivered', () => subscriber.messages.length === 1);
    expect(subscriber.health.at(-1)?.connected).toBe(true);
    expect(subscriber.messages[0]?.version).toBe(2n);
    await bus.close();
  });

  it('keeps only the newest record per tenant after compaction', async () => {
    const bus = createInMemorySnapshotBus();
    const tenantId = randomUUID();
    await bus.publish([1n, 2n, 3n].map((version) => snapshotMessage(sampleSnapshot(tenantId, version))));
    bus.log.compact();
    const subscriber = await recordSubscription(bus);
    await eventually('caught up', () => subscriber.caughtUpAfter() !== undefined);
    expect(subscriber.versionsOf(tenantId)).toEqual([3n]);
    await bus.close();
  });

  // Regression: nothing but tests called compact(), so make dev kept every version of every tenant
  // it ever published (Kafka's log cleaner compacts the topic in the background).
  it('holds about one record per tenant however many versions are published, and still serves the newest', async () => {
    const bus = createInMemorySnapshotBus();
    const [churner, quiet] = [randomUUID(), randomUUID()];
    await bus.publish([snapshotMessage(sampleSnapshot(quiet, 1n))]);
    for (let version = 1n; version <= 1_000n; version++)
      await bus.publish([snapshotMessage(sampleSnapshot(churner, version))]);
    expect(bus.log.records.length).toBeLessThanOrEqual(4);
    const subscriber = await recordSubscription(bus);
    await eventually('caught up', () => subscriber.caughtUpAfter() !== undefined);
    expect(subscriber.versionsOf(churner)).toEqual([1_000n]);
    expect(subscriber.versionsOf(quiet)).toEqual([1n]);
    await bus.close();
  });
});
