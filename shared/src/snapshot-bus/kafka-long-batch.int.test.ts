import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createTestSnapshotBus, deleteTestTopics, uniqueTopic } from '../testing/kafka.js';
import type { BusHealth, SnapshotBus, SnapshotMessage } from './port.js';
import { eventually, sampleSnapshot, snapshotMessage } from './testing.js';

const topics: string[] = [];
const buses: SnapshotBus[] = [];

/** The group session (Kafka's floor), six heartbeat intervals. */
const SESSION_TIMEOUT_MS = 6_000;
/** A large tenant's apply: five of them in one batch last 1.5 sessions. */
const LARGE_TENANT_APPLY_MS = 1_800;

const busOn = (topic: string): SnapshotBus =>
  createTestSnapshotBus(topic, 've-test-long-batch', buses, SESSION_TIMEOUT_MS);

afterEach(async () => {
  await Promise.all(buses.splice(0).map((bus) => bus.close()));
});

afterAll(() => deleteTestTopics(topics));

/**
 * Large tenants' versions arriving together at a caught-up replica (published while it could not reach
 * Kafka, a republish of every tenant) are one fetched batch, each applied in slices of the event loop:
 * on a loaded replica the batch lasts longer than the consumer group's session.
 */
describe('a caught-up replica applying a batch longer than its group session', () => {
  it('applies each version once and goes on with the next ones', { timeout: 120_000 }, async () => {
    const topic = uniqueTopic('long-batch');
    topics.push(topic);
    const publisher = busOn(topic);
    const delivered: SnapshotMessage[] = [];
    const health: BusHealth[] = [];
    let caughtUp = false;
    const slow = new Set<string>();
    await busOn(topic).subscribe({
      async onMessage(message) {
        delivered.push(message);
        // A large tenant's decode and apply, in slices, on a replica whose cores are busy.
        if (slow.has(message.tenantId))
          await new Promise((resolve) => setTimeout(resolve, LARGE_TENANT_APPLY_MS));
      },
      onCaughtUp: () => {
        caughtUp = true;
      },
      onHealth: (value) => health.push(value),
    });
    await eventually('caught up', () => caughtUp, 30_000);

    const large = Array.from({ length: 5 }, () => randomUUID());
    for (const tenantId of large) slow.add(tenantId);
    const sent = await publisher.publish(
      large.map((tenantId) => snapshotMessage(sampleSnapshot(tenantId, 1n))),
    );
    expect(sent.failed).toEqual([]);
    await eventually(
      'the large tenants',
      () => large.every((id) => delivered.some((m) => m.tenantId === id)),
      60_000,
    );

    const after = randomUUID();
    await publisher.publish([snapshotMessage(sampleSnapshot(after, 2n))]);
    await eventually('the next version', () => delivered.some((m) => m.tenantId === after), 60_000);

    // Each version once: none decoded and applied again because the batch outlived the session.
    expect(delivered.map((message) => message.tenantId)).toEqual([...large, after]);
    expect(health.filter((value) => !value.connected)).toEqual([]);
  });
});
