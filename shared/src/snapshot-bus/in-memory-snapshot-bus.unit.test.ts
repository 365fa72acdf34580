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
});
